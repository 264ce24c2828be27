"""How a shifted decode drifts from its clean twin (same model, prompt, settings and seed).

Pure functions of two `Trace`s: where the canvases first differ at each step, the edit distance
of the committed text per step, a step x position map of the differences, which `<slack>`
tokens absorbed the move, and a one-line summary. The app's cascade view draws these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .stats import edit_distance
from .trace import Trace


def committed_text_ids(canvas: Sequence[int], trace: Trace) -> list[int]:
    """The committed tokens of a canvas as text: masks, <slack> and EOS removed."""
    drop = {trace.mask_id, trace.slack_id, trace.eos_id} - {None}
    return [t for t in canvas if t not in drop]


def differing_positions(a: Sequence[int], b: Sequence[int]) -> list[int]:
    return [p for p, (x, y) in enumerate(zip(a, b)) if x != y]


@dataclass
class Divergence:
    """How a shifted decode differs from its clean twin (same model, prompt, settings, seed)."""

    first_difference: list[int | None]  # per step: first position where the canvases differ
    edit_distance: list[int]  # per step: edit distance between the committed texts
    final_differences: list[int]  # positions whose final token differs
    absorbing_slack: list[int]  # positions holding <slack> in the shifted output but not in the clean one
    final_edit_distance: int  # between the answers (slack stripped, cut at EOS)


def divergence(clean: Trace, shifted: Trace) -> Divergence:
    steps = min(len(clean.steps), len(shifted.steps))
    first, dist = [], []
    for s in range(steps):
        a, b = clean.canvas_at(s), shifted.canvas_at(s)
        diff = differing_positions(a, b)
        first.append(diff[0] if diff else None)
        dist.append(edit_distance(committed_text_ids(a, clean), committed_text_ids(b, shifted)))
    slack = shifted.slack_id
    absorbing = [] if slack is None else [p for p, (a, b) in enumerate(zip(clean.final, shifted.final))
                                          if b == slack and a != slack]
    return Divergence(first_difference=first, edit_distance=dist,
                      final_differences=differing_positions(clean.final, shifted.final),
                      absorbing_slack=absorbing,
                      final_edit_distance=edit_distance(clean.response(), shifted.response()))


def divergence_summary(div: Divergence) -> str:
    """One line of Markdown: where the runs part, how far apart they end, which slack absorbed it."""
    first = next((f for f in div.first_difference if f is not None), None)
    if first is None:
        return "identical to the run without the shift"
    parts = [f"first differs at position {first}",
             f"{len(div.final_differences)} final position(s) differ",
             f"answer edit distance {div.final_edit_distance}"]
    if div.absorbing_slack:
        parts.append(f"<slack> absorbed it at position(s) {', '.join(map(str, div.absorbing_slack))}")
    return " · ".join(parts)


def difference_map(clean: Trace, shifted: Trace) -> list[list[bool]]:
    """[steps][positions]: True where the two canvases differ after that step (the cascade)."""
    steps = min(len(clean.steps), len(shifted.steps))
    return [[a != b for a, b in zip(clean.canvas_at(s), shifted.canvas_at(s))] for s in range(steps)]


def first_divergence(clean: Trace, shifted: Trace) -> tuple[int, int] | None:
    """(step, position) where the two runs first differ, or None if they never do."""
    for s, row in enumerate(difference_map(clean, shifted)):
        if any(row):
            return s, row.index(True)
    return None
