"""A faster forward pass for decoding on a CPU: the native model's forward as a frozen TorchScript graph.

Why: the embedded models are tiny, so an eager forward pass is mostly Python, and Python holds the
interpreter lock, so the app's per-model worker threads cannot run two models' passes at once. A
traced graph runs in C++ and releases the lock: `python bench/bench_inference.py` measures the
traced pass against the eager one, alone and from two threads at once. Its logits are bit-identical
to the eager model's (tests/test_inference.py), so every decode and trace stays exactly the same.

`for_inference(model)` returns a `TracedLM` where this applies (the native LLaDA class, float32 on
a CPU, in eval mode) and the model itself elsewhere (a GPU, bfloat16 or 4-bit, LoRA, hub classes).
"""

from __future__ import annotations

import logging
import warnings

import torch
from transformers.modeling_outputs import MaskedLMOutput

log = logging.getLogger(__name__)


class _Logits(torch.nn.Module):
    """The inner model's logits for ids [B, L] (every row attended to in full)."""

    def __init__(self, core: torch.nn.Module):
        super().__init__()
        self.core = core

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.core(input_ids)[0]


class _MaskedLogits(_Logits):
    """The same with a key padding mask [B, L] (left-padded batches)."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.core(input_ids, attention_mask)[0]


def _trace(module: torch.nn.Module, *example: torch.Tensor):
    with warnings.catch_warnings():  # the length check below the trace is a Python branch: TracerWarning
        warnings.simplefilter("ignore")
        return torch.jit.freeze(torch.jit.trace(module.eval(), example, check_trace=False))


class TracedLM:
    """A native LLaDA model whose plain inference calls (`model(ids, attention_mask=...)`) run as
    frozen TorchScript graphs; anything else (other arguments, gradients) goes to the eager model,
    as does every attribute (`config`, `parameters()`, embeddings)."""

    def __init__(self, model):
        self.eager = model
        core = model.model
        ids = torch.full((2, 8), int(model.config.mask_token_id or 0), dtype=torch.long)
        padded = torch.ones_like(ids, dtype=torch.bool)
        padded[0, 0] = False  # traced through the key-mask branch
        with torch.no_grad():  # not inference_mode: the rope tables cached now must serve autograd later
            self.plain = _trace(_Logits(core), ids)
            self.masked = _trace(_MaskedLogits(core), ids, padded)

    def __getattr__(self, name):  # only reached for what TracedLM itself lacks
        return getattr(self.eager, name)

    def __call__(self, input_ids=None, attention_mask=None, **kwargs):
        if kwargs or input_ids is None or torch.is_grad_enabled():
            return self.eager(input_ids, attention_mask=attention_mask, **kwargs)
        limit = self.eager.config.max_sequence_length
        if input_ids.shape[1] > limit:
            return self.eager(input_ids, attention_mask=attention_mask)  # its error names the limit
        # The eager model skips the key mask when every position is attended to: so does this.
        if attention_mask is None or bool(attention_mask.all()):
            logits = self.plain(input_ids)
        else:
            logits = self.masked(input_ids, attention_mask.bool())
        return MaskedLMOutput(logits=logits)


def load_for_inference(ref, **kwargs):
    """`load_checkpoint(ref)` in float32 with its model `for_inference` (evaluation, the app)."""
    from .checkpoint import load_checkpoint

    ck = load_checkpoint(ref, dtype=torch.float32, **kwargs)
    ck.model = for_inference(ck.model)
    return ck


def for_inference(model):
    """`TracedLM(model)` when it applies (see the module docstring), else `model` unchanged."""
    from .modeling_llada import LLaDAModelLM

    if type(model) is not LLaDAModelLM or model.training:
        return model
    weights = next(model.parameters())
    if weights.device.type != "cpu" or weights.dtype != torch.float32:
        return model
    try:
        return TracedLM(model)
    except Exception as err:  # noqa: BLE001 - a model tracing refuses still decodes, eagerly
        log.warning("decoding %s eagerly: tracing its forward failed (%s)", type(model).__name__, err)
        return model
