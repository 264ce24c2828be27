"""Why position-wise CE punishes a one-position shift while CTC with `<slack>` does not.

A teaching computation with no model: a near-one-hot prediction that is right except that
everything from one position on landed one place to the right, scored by per-position CE and by
the CTC sum over alignments under both collapse maps (see `shift_losses`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .ctc import COLLAPSE_MAPS, slack_ctc_loss


def split_units(text: str) -> list[str]:
    """Units of a teaching example: words when the text has spaces, else characters ("100" -> 1 0 0)."""
    text = text.strip()
    return text.split() if any(c.isspace() for c in text) else list(text)


def shifted_prediction(n_units: int, position: int, fill: str = "slack") -> list[int]:
    """Indices into the target (-1 = <slack>) of a prediction where the token at `position` and
    everything after it landed one position to the right; the vacated place holds <slack>
    (fill="slack", what a CTC model writes) or a copy of the moved token (fill="repeat")."""
    if not 0 <= position < n_units:
        raise ValueError(f"shift position {position} must be in 0..{n_units - 1}")
    if fill not in ("slack", "repeat"):
        raise ValueError(f"fill must be 'slack' or 'repeat', got {fill!r}")
    idx = list(range(n_units))
    return idx[:position] + [-1 if fill == "slack" else position] + idx[position:]


@dataclass
class ShiftLosses:
    units: list[str]  # the target, U units
    prediction: list[str]  # the shifted prediction, U + 1 positions
    reference: list[str]  # what position-wise CE compares against: the target, then EOS
    ce_per_position: list[float]  # -log q_t(reference_t), nats
    ctc: dict[str, float | None]  # collapse map -> -log p(target) over all alignments (None: impossible)
    epsilon: float

    @property
    def ce_total(self) -> float:
        return sum(self.ce_per_position)


def near_one_hot_log_probs(pred_ids: Sequence[int], vocab: int, epsilon: float) -> torch.Tensor:
    """[T, V] log-probabilities: 1 - epsilon on the predicted id, epsilon spread over the rest."""
    lp = torch.full((len(pred_ids), vocab), math.log(epsilon / (vocab - 1)), dtype=torch.float64)
    lp[torch.arange(len(pred_ids)), torch.tensor(pred_ids)] = math.log(1 - epsilon)
    return lp


def shift_losses(units: Sequence[str], position: int, *, fill: str = "slack", epsilon: float = 0.1) -> ShiftLosses:
    """Per-position CE and sequence CTC of a one-position shift of `units` at `position`.

    The prediction is near-one-hot (probability 1 - epsilon on its token, epsilon spread over a
    vocabulary of the distinct units + <slack> + EOS), so the numbers depend on the shift alone,
    not on any model. CE compares position t with the target padded by EOS (LLaDA's SFT counts the
    padding as response): everything after the shift is wrong. CTC sums over every alignment that
    collapses to the target: with the `slack` map, <slack> in the hole spells the target exactly;
    the `standard` map merges repeats first, so "1 <slack> 0 0" spells "1 0" and "100" is lost.
    """
    units = list(units)
    if not units:
        raise ValueError("the target is empty: type a few characters or words")
    if not 0 < epsilon < 1:
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon}")
    vocab_units = list(dict.fromkeys(units))
    slack_id, eos_id = len(vocab_units), len(vocab_units) + 1
    vocab = len(vocab_units) + 2
    target_ids = [vocab_units.index(u) for u in units]
    pred_ids = [slack_id if i < 0 else target_ids[i] for i in shifted_prediction(len(units), position, fill)]
    reference = target_ids + [eos_id]
    lp = near_one_hot_log_probs(pred_ids, vocab, epsilon)
    ce = [-float(lp[t, r]) for t, r in enumerate(reference)]
    ctc = {}
    for collapse in COLLAPSE_MAPS:
        loss, ok = slack_ctc_loss(lp[None], torch.tensor([target_ids]), [len(pred_ids)], [len(units)],
                                  slack_id=slack_id, collapse=collapse, reduction="sum", return_feasible=True)
        ctc[collapse] = float(loss) if bool(ok[0]) else None
    name = {slack_id: "<slack>", eos_id: "EOS"}
    return ShiftLosses(units=units, prediction=[name.get(i) or vocab_units[i] for i in pred_ids],
                       reference=[name.get(i) or vocab_units[i] for i in reference], ce_per_position=ce, ctc=ctc,
                       epsilon=epsilon)
