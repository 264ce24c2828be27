"""Test oracle: the LLaDA forward pass, re-derived from LLaDA's hub remote code.

This module re-expresses, as plain functions over a checkpoint-style state
dict, what ``modeling_llada.py`` (the ``trust_remote_code`` file shipped with
GSAI-ML/LLaDA-8B-Instruct, version with attention-mask support, hub update of
2025-10-21) computes when ``LLaDAModelLM(...).eval()(input_ids,
attention_mask=...)`` is called.  It exists only to cross-check the project's
own implementation; it is written independently of it and deliberately keeps
the reference's order of operations and dtype casts.

Reference classes/functions are named in brackets.  Details that change
numbers:

* Embedding [LLaDAModel.forward]: ``wte(input_ids)`` (table has
  ``embedding_size`` rows); multiplied by ``sqrt(d_model)`` only if
  ``input_emb_norm`` (False for LLaDA-8B).  No positional embedding (RoPE).
  Dropouts are inactive in eval mode.
* Block [LLaDALlamaBlock.forward], pre-norm, two residuals::

      h = attn_norm(x); q, k, v = q_proj(h), k_proj(h), v_proj(h)
      x = x + attn_out(attention(q, k, v))
      h = ff_norm(x)
      x = x + ff_out(act(ff_proj(h)) * up_proj(h))

  So **ff_proj is the gated branch** (the one passed through the activation)
  and **up_proj is the linear branch**.  ``act`` is built from
  ``activation_type`` [Activation.build]; LLaDA-8B uses ``"silu"`` (plain
  ``nn.SiLU``), *not* the OLMo ``"swiglu"`` activation (which would chunk its
  input in two).  No biases (``include_bias = include_qkv_bias = False``).
* RMSNorm [RMSLayerNorm.forward]: with autocast disabled, cast x to float32,
  ``x * rsqrt(mean(x**2, -1) + eps)``, cast back to the input dtype, **then**
  ``weight * x`` (the multiply happens in the model dtype, after the
  down-cast).  eps = ``rms_norm_eps`` (1e-5).  Used for attn_norm, ff_norm and
  ln_f.  (``gemma_rms`` variant: ``x * (1 + weight)``.)
* RoPE [RotaryEmbedding]: head_dim = d_model // n_heads;
  ``inv_freq = 1 / theta ** (arange(0, hd, 2, float32) / hd)``;
  ``freqs = outer(arange(T, float32), inv_freq)``; the table is
  ``cat((freqs, freqs), -1)`` -> sin/cos in float32 (the "concatenated halves"
  / rotate-half layout, not interleaved pairs).  The table is warmed once for
  ``max_sequence_length`` positions on the CPU (``LLaDAModelLM`` forces
  ``init_device = "cpu"``) and sliced; only longer inputs recompute it on the
  current device.  ``rotate_half(t) = cat((-t2, t1), -1)`` where t1/t2 are the
  first/second halves of the head dim.  With ``rope_full_precision`` (True for
  LLaDA-8B) q and k are cast to float32 before rotation, sin/cos are
  ``type_as`` the (float32) q, and the result is cast back to the q/k dtype
  before attention.  RoPE is applied after splitting heads, to q and k only.
* Attention [LLaDABlock.attention / _scaled_dot_product_attention]:
  ``F.scaled_dot_product_attention(q, k, v, attn_mask=bias, is_causal=False)``
  with the default scale 1/sqrt(head_dim); fully bidirectional (no causal
  mask).  GQA (``n_kv_heads < n_heads``): k and v heads are
  ``repeat_interleave``-d along the head axis (kv head j serves query heads
  j*g .. j*g+g-1).  LLaDA-8B has n_kv_heads == n_heads == 32.
* Padding mask [LLaDAModel.forward + LLaDABlock._cast_attn_bias]: only if
  the [B, L] mask contains a 0 (``0.0 in attention_mask``); an all-ones mask is
  dropped and SDPA runs with ``attn_mask=None``.  Otherwise the mask becomes an
  **additive float32 bias on keys only**: ``(1 - m) * finfo(float32).min`` of
  shape [B, 1, 1, L], added to a zero "bidirectional" bias [1, 1, L, L]
  [get_bidirectional_attention_bias] -> [B, 1, L, L]; -inf replaced by the
  dtype min [ensure_finite_].  Queries at padded positions are *not* masked
  (they still attend to the non-padded keys and produce ordinary logits).  In
  each block the bias is cast to the k dtype (e.g. bfloat16, where float32 min
  overflows to -inf and is then replaced by bfloat16 min).
* Output [LLaDAModel.forward]: ``ln_f`` then ``ff_out`` (separate matrix,
  ``weight_tying = False`` for LLaDA-8B; with tying ``F.linear(x, wte)``).  If
  ``scale_logits`` (False for LLaDA-8B) logits are multiplied by
  ``1/sqrt(d_model)``.  **Logits are NOT cropped** to ``vocab_size``: their
  width is ``embedding_size`` (equal to vocab_size = 126464 for LLaDA-8B, so it
  does not matter there).  ``crop_to_vocab=True`` is offered as a convenience
  and is not reference behaviour.

Config keys missing from ``config`` fall back to the reference
``ModelConfig`` dataclass defaults (which are GPT-2/OLMo style: rope False,
block_type "sequential", activation "swiglu", ...), exactly like
``LLaDAConfig`` does; unsupported combinations raise ``NotImplementedError``.
Use :data:`LLADA_8B_CONFIG` as a template.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "LLADA_8B_CONFIG",
    "reference_forward",
    "make_random_state_dict",
    "state_dict_shapes",
]

# config.json of GSAI-ML/LLaDA-8B-Instruct (auto_map/architectures omitted).
LLADA_8B_CONFIG: dict = {
    "activation_type": "silu",
    "alibi": False,
    "alibi_bias_max": 8.0,
    "attention_dropout": 0.0,
    "attention_layer_norm": False,
    "attention_layer_norm_with_affine": True,
    "bias_for_layer_norm": False,
    "block_group_size": 1,
    "block_type": "llama",
    "d_model": 4096,
    "embedding_dropout": 0.0,
    "embedding_size": 126464,
    "eos_token_id": 126081,
    "flash_attention": False,
    "include_bias": False,
    "include_qkv_bias": False,
    "init_cutoff_factor": None,
    "init_device": "meta",
    "init_fn": "mitchell",
    "init_std": 0.02,
    "input_emb_norm": False,
    "layer_norm_type": "rms",
    "layer_norm_with_affine": True,
    "mask_token_id": 126336,
    "max_sequence_length": 4096,
    "mlp_hidden_size": 12288,
    "mlp_ratio": 4,
    "model_type": "llada",
    "multi_query_attention": None,
    "n_heads": 32,
    "n_kv_heads": 32,
    "n_layers": 32,
    "pad_token_id": 126081,
    "precision": "amp_bf16",
    "residual_dropout": 0.0,
    "rms_norm_eps": 1e-05,
    "rope": True,
    "rope_full_precision": True,
    "rope_theta": 500000.0,
    "scale_logits": False,
    "use_cache": False,
    "vocab_size": 126464,
    "weight_tying": False,
}

# Defaults of the reference ModelConfig dataclass (configuration_llada.py),
# used for keys absent from the given config dict.
_MODEL_CONFIG_DEFAULTS: dict = {
    "d_model": 768,
    "n_heads": 12,
    "n_kv_heads": None,
    "n_layers": 12,
    "mlp_ratio": 4,
    "mlp_hidden_size": None,
    "activation_type": "swiglu",
    "block_type": "sequential",
    "block_group_size": 1,
    "alibi": False,
    "rope": False,
    "rope_full_precision": True,
    "multi_query_attention": None,
    "attention_layer_norm": False,
    "input_emb_norm": False,
    "layer_norm_type": "default",
    "layer_norm_with_affine": True,
    "rms_norm_eps": 1e-05,
    "max_sequence_length": 1024,
    "rope_theta": 10000.0,
    "include_qkv_bias": False,
    "include_bias": False,
    "bias_for_layer_norm": None,
    "scale_logits": False,
    "vocab_size": 50257,
    "embedding_size": 50304,
    "weight_tying": True,
}


def _get(config: dict, key: str):
    return config[key] if key in config else _MODEL_CONFIG_DEFAULTS[key]


def _kv_heads(config: dict) -> int:
    """[ModelConfig.effective_n_kv_heads]"""
    n_heads = _get(config, "n_heads")
    n_kv = _get(config, "n_kv_heads")
    mqa = _get(config, "multi_query_attention")
    if n_kv is None:
        return 1 if mqa is True else n_heads
    if mqa is None:
        return n_kv
    expected = 1 if mqa else n_heads
    if n_kv != expected:
        raise ValueError("multi_query_attention and n_kv_heads disagree")
    return n_kv


def _check_supported(config: dict) -> None:
    problems = []
    if str(_get(config, "block_type")) != "llama":
        problems.append("block_type must be 'llama'")
    if not _get(config, "rope") or _get(config, "alibi"):
        problems.append("reference forward asserts rope=True and alibi=False")
    if str(_get(config, "activation_type")) not in ("silu", "gelu", "relu"):
        problems.append("llama block needs an elementwise activation (silu/gelu/relu)")
    if str(_get(config, "layer_norm_type")) not in ("rms", "gemma_rms"):
        problems.append("only rms / gemma_rms layer norms are reproduced")
    if not _get(config, "layer_norm_with_affine"):
        problems.append("layer norms without weights are not reproduced")
    if _get(config, "include_bias") or _get(config, "include_qkv_bias") or _get(config, "bias_for_layer_norm"):
        problems.append("biases are not reproduced (LLaDA-8B has none)")
    if _get(config, "attention_layer_norm"):
        problems.append("q/k layer norm is not reproduced (off for LLaDA-8B)")
    if _get(config, "block_group_size") != 1:
        problems.append("block_group_size must be 1 (checkpoint names differ otherwise)")
    if problems:
        raise NotImplementedError("; ".join(problems))


def _mlp_hidden(config: dict) -> int:
    h = _get(config, "mlp_hidden_size")
    return h if h is not None else _get(config, "mlp_ratio") * _get(config, "d_model")


def _prefix(state_dict: dict) -> str:
    for p in ("model.transformer.", "transformer."):
        if p + "wte.weight" in state_dict:
            return p
    raise KeyError("state dict has no model.transformer.wte.weight")


# --------------------------------------------------------------------------
# pieces
# --------------------------------------------------------------------------


def _norm(x: Tensor, weight: Tensor, eps: float, kind: str) -> Tensor:
    """[RMSLayerNorm.forward] / [GemmaRMSLayerNorm.forward]"""
    in_dtype = x.dtype
    y = x.to(torch.float32)
    y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + eps)
    y = y.to(in_dtype)
    if kind == "gemma_rms":
        return y * (1 + weight)
    return weight * y


def _rope_sin_cos(seq_len: int, head_dim: int, theta: float, max_len: int, device) -> tuple[Tensor, Tensor]:
    """[RotaryEmbedding.get_rotary_embedding]: float32 table, [1, 1, T, hd].

    Built for max(seq_len, max_sequence_length) positions; on the CPU when
    it fits the warm-up cache (what the reference does), else on ``device``.
    """
    build_len, build_dev = (max_len, torch.device("cpu")) if seq_len <= max_len else (seq_len, device)
    exponent = torch.arange(0, head_dim, 2, dtype=torch.float32, device=build_dev) / head_dim
    inv_freq = 1.0 / (theta ** exponent)
    positions = torch.arange(build_len, dtype=torch.float32, device=build_dev)
    angles = torch.einsum("i,j->ij", positions, inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    sin = angles.sin()[None, None, :seq_len, :].to(device)
    cos = angles.cos()[None, None, :seq_len, :].to(device)
    return sin, cos


def _rotate_half(t: Tensor) -> Tensor:
    """[RotaryEmbedding.rotate_half]"""
    half = t.shape[-1] // 2
    first, second = t[..., :half], t[..., half:]
    return torch.cat((-second, first), dim=-1)


def _apply_rope(q: Tensor, k: Tensor, sin: Tensor, cos: Tensor, full_precision: bool) -> tuple[Tensor, Tensor]:
    """[RotaryEmbedding.forward] for query_len == key_len (no KV cache)."""
    qr, kr = (q.float(), k.float()) if full_precision else (q, k)
    sin_q, cos_q = sin.type_as(qr), cos.type_as(qr)
    qr = ((qr * cos_q) + (_rotate_half(qr) * sin_q)).to(qr.dtype)
    kr = ((kr * cos_q) + (_rotate_half(kr) * sin_q)).to(kr.dtype)
    return qr.type_as(q), kr.type_as(k)


def _padding_bias(attention_mask: Optional[Tensor], batch: int, seq_len: int, device) -> Optional[Tensor]:
    """[LLaDAModel.forward] mask -> additive float32 bias [B, 1, L, L] or None."""
    if attention_mask is None or not bool((attention_mask == 0.0).any()):
        return None
    m = attention_mask.to(device=device, dtype=torch.float32).view(batch, -1)[:, None, None, :]
    m = (1.0 - m) * torch.finfo(torch.float32).min
    bias = torch.zeros((1, 1, seq_len, seq_len), dtype=torch.float32, device=device)
    bias = bias[:, :, : m.shape[-1], : m.shape[-1]].to(torch.float32) + m
    bias = bias.masked_fill(bias == float("-inf"), torch.finfo(bias.dtype).min)
    return bias


def _attention(q: Tensor, k: Tensor, v: Tensor, bias: Optional[Tensor], config: dict,
               sin: Tensor, cos: Tensor) -> Tensor:
    """[LLaDABlock.attention] without KV cache; returns [B, T, C] before attn_out."""
    B, T, C = q.shape
    n_heads = _get(config, "n_heads")
    n_kv = _kv_heads(config)
    hd = C // n_heads
    dtype = k.dtype
    q = q.view(B, T, n_heads, hd).transpose(1, 2)
    k = k.view(B, T, n_kv, hd).transpose(1, 2)
    v = v.view(B, T, n_kv, hd).transpose(1, 2)
    q, k = _apply_rope(q, k, sin, cos, bool(_get(config, "rope_full_precision")))
    if bias is not None:
        bias = bias[:, :, :T, :T]
        if bias.dtype != dtype:  # [LLaDABlock._cast_attn_bias] (no autocast)
            bias = bias.to(dtype)
            bias = bias.masked_fill(bias == float("-inf"), torch.finfo(dtype).min)
    if n_heads != n_kv:
        groups = n_heads // n_kv
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=0.0, is_causal=False)
    return out.transpose(1, 2).contiguous().view(B, T, C)


def _activation(x: Tensor, kind: str) -> Tensor:
    """[Activation.build]: silu -> nn.SiLU, gelu -> nn.GELU('none'), relu."""
    if kind == "silu":
        return F.silu(x)
    if kind == "gelu":
        return F.gelu(x)
    return F.relu(x)


# --------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------


@torch.no_grad()
def reference_forward(
    state_dict: dict[str, Tensor],
    config: dict,
    input_ids: Tensor,
    attention_mask: Optional[Tensor] = None,
    crop_to_vocab: bool = False,
) -> Tensor:
    """Logits [B, L, embedding_size] of LLaDAModelLM in eval mode.

    Computation runs in the dtype/device of the state-dict tensors.  See the
    module docstring for the reproduced details and their provenance.
    """
    _check_supported(config)
    p = _prefix(state_dict)
    wte = state_dict[p + "wte.weight"]
    device = wte.device
    input_ids = input_ids.to(device)
    B, L = input_ids.shape
    d_model = _get(config, "d_model")
    n_heads = _get(config, "n_heads")
    eps = float(_get(config, "rms_norm_eps"))
    norm_kind = str(_get(config, "layer_norm_type"))
    act_kind = str(_get(config, "activation_type"))

    x = F.embedding(input_ids, wte)
    if _get(config, "input_emb_norm"):
        x = x * (d_model ** 0.5)

    bias = _padding_bias(attention_mask, B, L, device)
    sin, cos = _rope_sin_cos(L, d_model // n_heads, float(_get(config, "rope_theta")),
                             int(_get(config, "max_sequence_length")), device)

    for i in range(_get(config, "n_layers")):
        b = f"{p}blocks.{i}."
        h = _norm(x, state_dict[b + "attn_norm.weight"], eps, norm_kind)
        q = F.linear(h, state_dict[b + "q_proj.weight"])
        k = F.linear(h, state_dict[b + "k_proj.weight"])
        v = F.linear(h, state_dict[b + "v_proj.weight"])
        att = _attention(q, k, v, bias, config, sin, cos)
        x = x + F.linear(att, state_dict[b + "attn_out.weight"])
        h = _norm(x, state_dict[b + "ff_norm.weight"], eps, norm_kind)
        gate = _activation(F.linear(h, state_dict[b + "ff_proj.weight"]), act_kind)
        up = F.linear(h, state_dict[b + "up_proj.weight"])
        x = x + F.linear(gate * up, state_dict[b + "ff_out.weight"])

    x = _norm(x, state_dict[p + "ln_f.weight"], eps, norm_kind)
    if _get(config, "weight_tying"):
        logits = F.linear(x, wte)
    else:
        logits = F.linear(x, state_dict[p + "ff_out.weight"])
    if _get(config, "scale_logits"):
        logits = logits * (1 / math.sqrt(d_model))
    if crop_to_vocab:
        logits = logits[..., : _get(config, "vocab_size")]
    return logits


def state_dict_shapes(config: dict, prefix: str = "model.transformer.") -> dict[str, tuple[int, ...]]:
    """Checkpoint tensor names and shapes implied by ``config`` (llama block)."""
    d = _get(config, "d_model")
    hd = d // _get(config, "n_heads")
    kv = _kv_heads(config) * hd
    hidden = _mlp_hidden(config)
    emb = _get(config, "embedding_size") or _get(config, "vocab_size")
    shapes: dict[str, tuple[int, ...]] = {prefix + "wte.weight": (emb, d)}
    for i in range(_get(config, "n_layers")):
        b = f"{prefix}blocks.{i}."
        shapes[b + "attn_norm.weight"] = (d,)
        shapes[b + "ff_norm.weight"] = (d,)
        shapes[b + "q_proj.weight"] = (d, d)
        shapes[b + "k_proj.weight"] = (kv, d)
        shapes[b + "v_proj.weight"] = (kv, d)
        shapes[b + "attn_out.weight"] = (d, d)
        shapes[b + "ff_proj.weight"] = (hidden, d)
        shapes[b + "up_proj.weight"] = (hidden, d)
        shapes[b + "ff_out.weight"] = (d, hidden)
    shapes[prefix + "ln_f.weight"] = (d,)
    if not _get(config, "weight_tying"):
        shapes[prefix + "ff_out.weight"] = (emb, d)
    return shapes


def make_random_state_dict(config: dict, seed: int = 0, dtype: torch.dtype = torch.float32,
                           std: float = 0.2) -> dict[str, Tensor]:
    """Random weights under the checkpoint names (test utility, not reference code).

    Norm weights are drawn around 1 so that a wrong norm formula is visible.
    """
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in state_dict_shapes(config).items():
        if name.endswith("norm.weight") or name.endswith("ln_f.weight"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            t = std * torch.randn(shape, generator=gen)
        out[name] = t.to(dtype)
    return out
