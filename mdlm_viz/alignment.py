"""What the CTC alignment view aligns: the target, how many positions, and the emissions.

The emissions are the model's distributions at each position at the step that committed it (the
one function here that runs the model); the rest are pure functions of a `Trace`.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .ctc import min_alignment_length
from .trace import Trace, clean_response


def alignment_length(trace: Trace, target_len_needed: int) -> int:
    """Positions to align: the response up to its first EOS, at least what the target needs."""
    final = trace.final
    end = final.index(trace.eos_id) if trace.eos_id is not None and trace.eos_id in final else len(final)
    return max(1, min(len(final), max(end, target_len_needed)))


def alignment_target(trace: Trace, typed_ids: Sequence[int] | None = None) -> list[int]:
    """The target to align: typed ids if given, else the model's own answer (slack stripped)."""
    return list(typed_ids) if typed_ids else clean_response(trace.final, trace.eos_id, trace.slack_id)


def needed_length(target_ids: Sequence[int], collapse: str) -> int:
    return min_alignment_length(list(target_ids), collapse)


@torch.inference_mode()
def emissions_at_commit(model, trace: Trace, chunk: int = 8) -> torch.Tensor:
    """[gen_length, V] float32 log-probabilities of each position at the step that committed it,
    computed on the canvas the model saw then (the prompt followed by the canvas after the step
    before). These are the distributions the sampler chose from, so the CTC alignment over them
    shows where the model meant each target token to go. CFG is not applied here."""
    commit_step = [s if s is not None else 0 for s in trace.commit_steps()]
    device = next(model.parameters()).device
    prompt = list(trace.prompt)
    inputs = sorted(set(commit_step))
    out = None
    for i in range(0, len(inputs), chunk):
        group = inputs[i:i + chunk]
        batch = torch.tensor([prompt + trace.canvas_at(s - 1) for s in group], device=device)
        lp = torch.log_softmax(model(batch).logits[:, len(prompt):].float(), -1).cpu()
        if out is None:
            out = torch.empty(trace.gen_length, lp.shape[-1])
        for row, s in enumerate(group):
            where = [p for p, c in enumerate(commit_step) if c == s]
            out[where] = lp[row, where]
    return out
