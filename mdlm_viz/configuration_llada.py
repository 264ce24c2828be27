"""Configuration of the LLaDA architecture, with LLaDA's own field names.

The field names are those of the `config.json` shipped with GSAI-ML/LLaDA-8B-Instruct, so that
file loads as it is. Options of the OLMo code base that LLaDA does not use (ALiBi, biases, q/k
norms, LayerNorm, GELU...) are accepted when they hold LLaDA's values and refused otherwise: a
config we cannot compute faithfully must fail loudly, not give silently different logits.
"""

from __future__ import annotations

from transformers import PreTrainedConfig

from .ctc import COLLAPSE_MAPS, DEFAULT_COLLAPSE

# Options of the reference code we do not implement, with the only value we accept for each.
_FIXED_OPTIONS = {
    "alibi": False,
    "attention_layer_norm": False,
    "block_type": "llama",
    "include_bias": False,
    "include_qkv_bias": False,
    "layer_norm_type": "rms",
    "activation_type": "silu",
    "input_emb_norm": False,
    "scale_logits": False,
    "rope": True,
    "multi_query_attention": None,
    "clip_qkv": None,
    "layer_norm_with_affine": True,
    "bias_for_layer_norm": False,
    "block_group_size": 1,
}


class LLaDAConfig(PreTrainedConfig):
    """Hyper-parameters of a LLaDA model. Defaults are those of LLaDA-8B-Instruct.

    Special-token ids live here too (`mask_token_id`, `eos_token_id`, `pad_token_id`, and for
    models fine-tuned with CTC `slack_token_id`), because the sampler needs them and they are
    properties of the trained weights, not of a tokenizer alone.
    """

    model_type = "llada"
    # transformers' generic code (resizing, device maps, peft) reads the standard names.
    attribute_map = {
        "hidden_size": "d_model",
        "num_hidden_layers": "n_layers",
        "num_attention_heads": "n_heads",
        "num_key_value_heads": "n_kv_heads",
        "max_position_embeddings": "max_sequence_length",
    }

    def __init__(
        self,
        d_model: int = 4096,
        n_layers: int = 32,
        n_heads: int = 32,
        n_kv_heads: int | None = None,
        mlp_hidden_size: int = 12288,
        mlp_ratio: int = 4,
        rope_theta: float = 500000.0,
        rope_full_precision: bool = True,
        rms_norm_eps: float = 1e-5,
        vocab_size: int = 126464,
        embedding_size: int | None = 126464,
        max_sequence_length: int = 4096,
        weight_tying: bool = False,
        init_std: float = 0.02,
        mask_token_id: int = 126336,
        eos_token_id: int = 126081,
        pad_token_id: int = 126081,
        bos_token_id: int | None = 126080,
        eot_token_id: int | None = 126348,
        slack_token_id: int | None = None,
        ctc_collapse: str | None = None,
        training_objective: str | None = None,
        attention_dropout: float = 0.0,
        residual_dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        **kwargs,
    ):
        for name, allowed in _FIXED_OPTIONS.items():
            value = kwargs.pop(name, allowed)
            if value != allowed:
                raise ValueError(
                    f"LLaDAConfig: {name}={value!r} is not supported by this implementation "
                    f"(LLaDA uses {name}={allowed!r}). Use a LLaDA-architecture checkpoint."
                )
            setattr(self, name, value)  # saved too, so our config.json reads like the hub's
        # The hub config names remote code; we are the local implementation, so drop it to keep
        # transformers from ever looking for `modeling_llada.py` next to a saved checkpoint.
        kwargs.pop("auto_map", None)
        kwargs.pop("tie_word_embeddings", None)
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        self.mlp_hidden_size = mlp_hidden_size
        self.mlp_ratio = mlp_ratio
        self.rope_theta = rope_theta
        self.rope_full_precision = rope_full_precision
        self.rms_norm_eps = rms_norm_eps
        self.vocab_size = vocab_size
        self.embedding_size = vocab_size if embedding_size is None else embedding_size
        self.max_sequence_length = max_sequence_length
        self.weight_tying = weight_tying
        self.init_std = init_std
        self.mask_token_id = mask_token_id
        self.eot_token_id = eot_token_id
        self.slack_token_id = slack_token_id
        # How the <slack> model was trained to collapse its output ("slack" or "standard"; None: no
        # <slack>, or a checkpoint saved before it was recorded) and with which objective ("pretrain",
        # "pretrain-ctc", "ce", "ctc"; None for LLaDA-8B, unknown): the app and the cards read them.
        if ctc_collapse not in (None, *COLLAPSE_MAPS):
            raise ValueError(f"LLaDAConfig: ctc_collapse={ctc_collapse!r}: use one of {', '.join(COLLAPSE_MAPS)}")
        self.ctc_collapse = ctc_collapse
        self.training_objective = training_objective
        self.attention_dropout = attention_dropout
        self.residual_dropout = residual_dropout
        self.embedding_dropout = embedding_dropout
        if d_model % n_heads or n_heads % self.n_kv_heads:
            raise ValueError(
                f"LLaDAConfig: d_model ({d_model}) must be divisible by n_heads ({n_heads}) and "
                f"n_heads by n_kv_heads ({self.n_kv_heads})."
            )
        if self.embedding_size < vocab_size:
            raise ValueError(
                f"LLaDAConfig: embedding_size ({self.embedding_size}) must be >= vocab_size ({vocab_size})."
            )
        super().__init__(
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            tie_word_embeddings=weight_tying,
            **kwargs,
        )

    @property
    def decode_collapse(self) -> str | None:
        """The collapse map decoding uses: the trained one, the default for a <slack> model that
        did not record it, None for a model without <slack>."""
        if self.slack_token_id is None:
            return None
        return self.ctc_collapse or DEFAULT_COLLAPSE

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @classmethod
    def small(cls, vocab_size: int = 512, **overrides) -> "LLaDAConfig":
        """A few-hundred-thousand-parameter LLaDA for tests and the embedded CPU models.

        Same architecture as LLaDA-8B, scaled down; any field can be overridden.
        """
        fields = dict(
            d_model=64,
            n_layers=2,
            n_heads=4,
            n_kv_heads=4,
            mlp_hidden_size=172,
            rope_theta=10000.0,
            vocab_size=vocab_size,
            embedding_size=vocab_size,
            max_sequence_length=512,
            mask_token_id=vocab_size - 1,
            eos_token_id=1,
            pad_token_id=1,
            bos_token_id=0,
            eot_token_id=2,
        )
        fields.update(overrides)
        return cls(**fields)
