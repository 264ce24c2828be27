"""LLaDA, the masked diffusion language model, as native transformers code.

One file, read top to bottom: RMSNorm, rotary embeddings, the Llama-style block with full
(bidirectional) attention, the model, and the `PreTrainedModel` wrapper whose parameter names are
exactly those of the GSAI-ML/LLaDA-8B checkpoints (`model.transformer.blocks.0.q_proj.weight`...),
so `LLaDAModelLM.from_pretrained("GSAI-ML/LLaDA-8B-Instruct")` loads the real weights with no
remote code. The numerics follow the reference implementation: norms in float32 with the weight
applied after casting back, rotary embeddings in float32, SDPA attention without a causal mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import MaskedLMOutput

from .configuration_llada import LLaDAConfig


class RMSNorm(nn.Module):
    """RMSNorm computed in float32; the weight multiplies after the cast back (as the reference)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rotary_tables(seq_len: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """sin, cos tables [seq_len, head_dim] in float32, frequencies concatenated twice.

    Computed on the CPU like the reference, so the tables are bit-identical on every device."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    angles = torch.cat([freqs, freqs], dim=-1)
    return angles.sin(), angles.cos()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x_bhld: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor, full_precision: bool) -> torch.Tensor:
    """Rotate queries or keys [B, H, L, D]; LLaDA does it in float32 (rope_full_precision)."""
    xr = x_bhld.float() if full_precision else x_bhld
    sin, cos = sin.to(xr.dtype), cos.to(xr.dtype)
    return (xr * cos + rotate_half(xr) * sin).to(x_bhld.dtype)


class LLaDABlock(GradientCheckpointingLayer):
    """Pre-norm block: x + attn_out(attention(attn_norm(x))), then x + ff_out(silu(ff_proj) * up_proj)."""

    def __init__(self, config: LLaDAConfig):
        super().__init__()
        self.config = config
        d, kv = config.d_model, config.n_kv_heads * config.head_dim
        self.attn_norm = RMSNorm(d, config.rms_norm_eps)
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, kv, bias=False)
        self.v_proj = nn.Linear(d, kv, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_norm = RMSNorm(d, config.rms_norm_eps)
        self.ff_proj = nn.Linear(d, config.mlp_hidden_size, bias=False)
        self.up_proj = nn.Linear(d, config.mlp_hidden_size, bias=False)
        self.ff_out = nn.Linear(config.mlp_hidden_size, d, bias=False)
        self.dropout = nn.Dropout(config.residual_dropout)  # on each branch before the residual add

    def attention(self, h: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], key_mask) -> torch.Tensor:
        cfg = self.config
        B, L, _ = h.shape
        q = self.q_proj(h).view(B, L, cfg.n_heads, cfg.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(B, L, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(B, L, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        sin, cos = rope
        q = apply_rotary(q, sin, cos, cfg.rope_full_precision)
        k = apply_rotary(k, sin, cos, cfg.rope_full_precision)
        out = F.scaled_dot_product_attention(
            q, k, v,
            attn_mask=key_mask,  # [B, 1, 1, L] True = may attend, or None
            dropout_p=cfg.attention_dropout if self.training else 0.0,
            is_causal=False,  # the whole point of a diffusion LM: every position sees every other
            enable_gqa=cfg.n_kv_heads != cfg.n_heads,
        )
        return self.attn_out(out.transpose(1, 2).reshape(B, L, cfg.d_model))

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], key_mask=None) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.attn_norm(x), rope, key_mask))
        h = self.ff_norm(x)
        return x + self.dropout(self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h)))


class LLaDAModel(nn.Module):
    """Embedding, blocks, final norm and LM head, under `transformer.*` as in the checkpoints."""

    def __init__(self, config: LLaDAConfig):
        super().__init__()
        self.config = config
        modules = dict(
            wte=nn.Embedding(config.embedding_size, config.d_model),
            blocks=nn.ModuleList(LLaDABlock(config) for _ in range(config.n_layers)),
            ln_f=RMSNorm(config.d_model, config.rms_norm_eps),
        )
        if not config.weight_tying:
            modules["ff_out"] = nn.Linear(config.d_model, config.embedding_size, bias=False)
        self.transformer = nn.ModuleDict(modules)
        self.emb_drop = nn.Dropout(config.embedding_dropout)
        self._rope: dict = {}  # device -> (sin, cos) for max_sequence_length positions; not saved

    def rope(self, seq_len: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._rope:
            sin, cos = rotary_tables(self.config.max_sequence_length, self.config.head_dim, self.config.rope_theta)
            self._rope[device] = (sin.to(device), cos.to(device))
        sin, cos = self._rope[device]
        return sin[:seq_len], cos[:seq_len]

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, output_hidden_states=False):
        x = self.emb_drop(self.transformer.wte(input_ids) if inputs_embeds is None else inputs_embeds)
        B, L, _ = x.shape
        if L > self.config.max_sequence_length:
            raise ValueError(
                f"Sequence of {L} tokens exceeds max_sequence_length={self.config.max_sequence_length}; "
                "shorten the prompt or the generation length."
            )
        rope = self.rope(L, x.device)
        # Padding mask on keys only: a padded position never informs a real one. Rows need no mask.
        key_mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            key_mask = attention_mask.bool()[:, None, None, :]
        hidden = [x] if output_hidden_states else None
        for block in self.transformer.blocks:
            x = block(x, rope, key_mask)
            if output_hidden_states:
                hidden.append(x)
        x = self.transformer.ln_f(x)
        head = self.transformer.wte.weight if self.config.weight_tying else self.transformer.ff_out.weight
        logits = F.linear(x, head)
        return logits, (tuple(hidden) if output_hidden_states else None)


class LLaDAPreTrainedModel(PreTrainedModel):
    config_class = LLaDAConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LLaDABlock"]
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module):
        std = self.config.init_std
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)


class LLaDAModelLM(LLaDAPreTrainedModel):
    """LLaDA mask predictor: `model(input_ids).logits` is [B, L, vocab] for every position.

    There is no causal mask and no KV cache: a diffusion LM re-reads the whole canvas each step.
    """

    def __init__(self, config: LLaDAConfig):
        super().__init__(config)
        self.model = LLaDAModel(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.transformer.wte

    def set_input_embeddings(self, value):
        self.model.transformer.wte = value

    def get_output_embeddings(self):
        return None if self.config.weight_tying else self.model.transformer.ff_out

    def set_output_embeddings(self, value):
        self.model.transformer.ff_out = value

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        emb = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        # LLaDA keeps the embedding row count in `embedding_size` as well as `vocab_size`.
        self.config.embedding_size = emb.weight.shape[0]
        self.config.vocab_size = max(self.config.vocab_size, new_num_tokens or 0)
        return emb

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        **kwargs,
    ) -> MaskedLMOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        unknown = {k for k, v in kwargs.items() if v is not None and v is not False} - {"use_cache", "output_attentions"}
        if unknown:
            # A diffusion LM has no causal-LM loss: silently ignoring `labels` would train nothing.
            raise ValueError(f"LLaDAModelLM.forward got unsupported arguments {sorted(unknown)}; losses live in train/")
        logits, hidden = self.model(input_ids, attention_mask, inputs_embeds, output_hidden_states)
        if not return_dict:
            return (logits,) if hidden is None else (logits, hidden)
        return MaskedLMOutput(logits=logits, hidden_states=hidden)


AutoConfig.register("llada", LLaDAConfig, exist_ok=True)
AutoModel.register(LLaDAConfig, LLaDAModelLM, exist_ok=True)
AutoModelForMaskedLM.register(LLaDAConfig, LLaDAModelLM, exist_ok=True)
# The hub's auto_map names AutoModelForCausalLM; keep that habit working (LLaDA is not causal).
AutoModelForCausalLM.register(LLaDAConfig, LLaDAModelLM, exist_ok=True)
