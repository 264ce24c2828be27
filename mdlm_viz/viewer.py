"""What the app shows, as pure functions of a `Trace` (no Gradio here, so all of it is testable).

- `canvas_html`: the response canvas after a step, one `<span data-pos=...>` per position. Every
  token state differs in its text *and* its colour (Okabe-Ito palette, colour-blind safe): still
  masked `░`, committed this step (bold, underlined, shaded by the committed token's probability),
  committed earlier, `‹slack›`, `EOS`, moved by an intervention (`→tok` / `tok←`), and, when
  compared with another run, different from it (`≠`). The hover text gives the commit step, its
  confidence and the top-k candidates the model considered at that step.
- `divergence`: how a shifted decode drifts from its clean twin, step by step.
- `response_text` / `raw_canvas_text`: the answer with `<slack>` stripped beside the raw canvas.
- `shift_losses`: why position-wise CE punishes a one-position shift while CTC with `<slack>`
  does not, computed on a near-one-hot prediction (see its docstring).
- `emissions_at_commit`: the model's log-probabilities at each position at the step that decided
  it, the emissions the CTC alignment view aligns (needs the model; everything else here does not).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .ctc import COLLAPSE_MAPS, min_alignment_length, slack_ctc_loss
from .interventions import shiftable_positions
from .robustness import edit_distance
from .trace import Trace, clean_response

TokenText = Callable[[int], str]

# Okabe-Ito colours: distinguishable under the common colour-vision deficiencies.
BLUE, ORANGE, VERMILLION, PURPLE, GREY, GREEN = "#0072B2", "#E69F00", "#D55E00", "#CC79A7", "#8a8a8a", "#009E73"

MASKED, NEW, EARLIER, SLACK, EOS = "masked", "new", "earlier", "slack", "eos"
MASK_GLYPH, SLACK_GLYPH, EOS_GLYPH = "░", "‹slack›", "EOS"

CANVAS_CSS = f"""
.mv-canvas {{ font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 14px; line-height: 2.0;
  color: #1a1a1a; background: #ffffff; padding: 6px; border-radius: 6px; }}
.mv-caption {{ font-family: system-ui, sans-serif; font-size: 12px; color: #444; margin-bottom: 2px; }}
.mv-tok {{ display: inline-block; white-space: pre; padding: 0 3px; margin: 1px 1px; border-radius: 3px;
  border: 1px solid transparent; cursor: pointer; min-width: 0.9em; text-align: center; }}
.mv-masked {{ color: {GREY}; background: #efefef; }}
.mv-earlier {{ background: #e8f1f8; color: #1a1a1a; }}
.mv-new {{ font-weight: 700; text-decoration: underline; border-color: {BLUE}; }}
.mv-slack {{ font-style: italic; font-size: 12px; color: #6b4500; background: #fdf0d5; border: 1px dashed {ORANGE}; }}
.mv-eos {{ font-size: 10px; color: #555; background: #f5f5f5; border: 1px dotted {GREY}; }}
.mv-moved {{ color: {VERMILLION}; border: 2px solid {VERMILLION}; }}
.mv-differs {{ box-shadow: inset 0 -3px 0 {PURPLE}; }}
.mv-differs::after {{ content: "≠"; font-size: 9px; vertical-align: super; color: {PURPLE}; }}
.mv-picked {{ outline: 2px solid #000; }}
.mv-shiftable {{ outline: 2px dashed {GREEN}; outline-offset: 1px; }}
.mv-shiftable::before {{ content: "⇢"; font-size: 9px; vertical-align: super; color: {GREEN}; }}
.mv-legend {{ font-family: system-ui, sans-serif; font-size: 12px; color: #333; }}
.mv-legend .mv-tok {{ cursor: default; }}
"""


# ----------------------------------------------------------------------------- one step's view
@dataclass
class PositionInfo:
    """What is known about one canvas position after a step."""

    token: int
    state: str  # MASKED, NEW, EARLIER, SLACK or EOS
    fresh: bool = False  # committed (or moved here) at this very step
    committed_at: int | None = None
    confidence: float | None = None
    moved: int = 0  # +1 / -1: the token was moved here by a shift in that direction
    merged: bool = False  # turned into <slack> by the standard collapse
    candidates: list[tuple[int, float]] = field(default_factory=list)  # top-k (token, probability) at this step


def commits_until(trace: Trace, step: int) -> dict[int, tuple[int, float]]:
    """{position: (commit step, confidence)} of the tokens on the canvas after `step`; a moved
    token keeps its confidence and counts as committed at the step that moved it."""
    info: dict[int, tuple[int, float]] = {}
    for st in trace.steps[: step + 1]:
        for p, c in zip(st.positions, st.confidences):
            info[p] = (st.index, c)
        for d in st.displacements:
            if d.source in info:
                info[d.target] = (st.index, info.pop(d.source)[1])
    return info


def moves_until(trace: Trace, step: int) -> dict[int, int]:
    """{position: direction} of the tokens that a shift put where they sit after `step`."""
    moved: dict[int, int] = {}
    for st in trace.steps[: step + 1]:
        for d in st.displacements:
            moved.pop(d.source, None)
            moved[d.target] = 1 if d.target > d.source else -1
    return moved


def candidates_at(trace: Trace, step: int) -> dict[int, list[tuple[int, float]]]:
    """{position: [(token, probability), ...]} the model proposed at `step` (top-k of the trace)."""
    if not 0 <= step < len(trace.steps):
        return {}
    return {p: list(zip(ids, probs)) for p, ids, probs in trace.steps[step].candidates}


def positions_at(trace: Trace, step: int) -> list[PositionInfo]:
    """State of every response position after `step` (-1: before the first step)."""
    canvas = trace.canvas_at(step)
    commits, moves, cands = commits_until(trace, step), moves_until(trace, step), candidates_at(trace, step)
    current = trace.steps[step] if 0 <= step < len(trace.steps) else None
    fresh = set(current.positions) | {d.target for d in current.displacements} if current else set()
    merged = set(current.merged) if current else set()
    out = []
    for p, tok in enumerate(canvas):
        if tok == trace.mask_id:
            state = MASKED
        elif trace.slack_id is not None and tok == trace.slack_id:
            state = SLACK
        elif trace.eos_id is not None and tok == trace.eos_id:
            state = EOS
        else:
            state = NEW if p in fresh else EARLIER
        when, conf = commits.get(p, (None, None))
        out.append(PositionInfo(token=tok, state=state, fresh=p in fresh and state != MASKED, committed_at=when,
                                confidence=conf, moved=moves.get(p, 0), merged=p in merged,
                                candidates=cands.get(p, [])))
    return out


def visible_text(text: str) -> str:
    """Whitespace made visible, so a token that is only a space or a newline still shows."""
    text = text.replace("\n", "⏎")
    return text.replace(" ", "␣") if text and not text.strip() else text


def token_glyph(info: PositionInfo, token_text: TokenText) -> str:
    """The text shown for a position: its state is readable without colour."""
    if info.state == MASKED:
        return MASK_GLYPH
    if info.state == SLACK:
        return SLACK_GLYPH
    if info.state == EOS:
        return EOS_GLYPH
    text = visible_text(token_text(info.token))
    return f"→{text}" if info.moved > 0 else f"{text}←" if info.moved < 0 else text


def committed_probability(info: PositionInfo) -> float | None:
    """Probability of the committed token among this step's candidates, else its confidence
    clamped to [0, 1] (margin/entropy/random scores are not probabilities)."""
    for tok, prob in info.candidates:
        if tok == info.token:
            return prob
    if info.confidence is None or math.isnan(info.confidence):
        return None
    return min(1.0, max(0.0, info.confidence))


def confidence_shade(prob: float | None) -> str:
    """Inline style for a fresh commit: the more confident, the darker the blue."""
    if prob is None:
        return ""
    alpha = 0.15 + 0.75 * prob
    ink = "#ffffff" if alpha > 0.55 else "#1a1a1a"
    return f"background: rgba(0, 114, 178, {alpha:.2f}); color: {ink};"


def hover_text(pos: int, step: int, info: PositionInfo, token_text: TokenText) -> str:
    """Tooltip lines: position, state, commit step and confidence, top-k candidates at this step."""
    lines = [f"position {pos} · after step {step}"]
    if info.state == MASKED:
        lines.append("still masked")
    else:
        what = {NEW: "committed at this step", EARLIER: "committed earlier", SLACK: "<slack>", EOS: "EOS / padding"}
        lines.append(f"{what[info.state]}: {token_text(info.token)!r}")
    if info.committed_at is not None:
        conf = "" if info.confidence is None else f" · confidence {info.confidence:.3f}"
        lines.append(f"committed at step {info.committed_at}{conf}")
    if info.moved:
        lines.append(f"moved {'right →' if info.moved > 0 else 'left ←'} by a shift")
    if info.merged:
        lines.append("merged into <slack> (repeat of its left neighbour, standard collapse)")
    if info.candidates:
        top = ", ".join(f"{token_text(t)!r} {p:.2f}" for t, p in info.candidates)
        lines.append(f"top-{len(info.candidates)} at this step: {top}")
    return "\n".join(lines)


def token_span(pos: int, step: int, info: PositionInfo, token_text: TokenText, differs: bool = False,
               picked: bool = False, hover: bool = True, shiftable: bool = False) -> str:
    classes = ["mv-tok", f"mv-{info.state}"]
    style = ""
    if info.fresh and info.state != NEW:  # a fresh <slack>/EOS: its own style, plus the "this step" cue
        classes.append("mv-new")
    if info.state == NEW:
        style = confidence_shade(committed_probability(info))
    if info.moved:
        classes.append("mv-moved")
    if differs:
        classes.append("mv-differs")
    if picked:
        classes.append("mv-picked")
    if shiftable:
        classes.append("mv-shiftable")
    style_attr = f' style="{style}"' if style else ""
    title = ""
    if hover:
        tip = html.escape(hover_text(pos, step, info, token_text), quote=True).replace("\n", "&#10;")
        title = f' title="{tip}"'
    return (f'<span class="{" ".join(classes)}" data-pos="{pos}" data-state="{info.state}"{style_attr}'
            f'{title}>{html.escape(token_glyph(info, token_text))}</span>')


def canvas_html(trace: Trace, step: int, token_text: TokenText, *, differs: Sequence[int] = (),
                caption: str | None = None, picked: int | None = None, hover: bool = True,
                shiftable: Sequence[int] = ()) -> str:
    """The canvas after `step` as HTML (spans with data-pos; classes styled by CANVAS_CSS).
    hover=False leaves out the tooltips: a third of the size, for frames streamed while decoding.
    `shiftable` positions are outlined (and marked ⇢): tokens a shift may move at this step."""
    step = min(step, len(trace.steps) - 1)
    infos = positions_at(trace, step)
    diff, movable = set(differs), set(shiftable)
    spans = "".join(token_span(p, step, info, token_text, p in diff, p == picked, hover, p in movable)
                    for p, info in enumerate(infos))
    head = f'<div class="mv-caption">{html.escape(caption)}</div>' if caption else ""
    return f'<div class="mv-canvas" data-step="{step}">{head}{spans}</div>'


def block_end(trace: Trace, step: int) -> int:
    """End (exclusive) of the block that `step` decodes, in response positions."""
    blocks = max(1, trace.gen_length // trace.block_length)
    per_block = max(1, trace.steps_total // blocks)
    return min((step // per_block + 1) * trace.block_length, trace.gen_length)


def shiftable_at(trace: Trace, step: int, direction: int = 1) -> list[int]:
    """Content tokens a shift in `direction` can move right after `step` (EOS padding and <slack>
    are left out: moving them changes no text)."""
    step = min(step, len(trace.steps) - 1)
    if step < 0 or step >= trace.steps_total - 1:
        return []  # after the last step nothing is masked
    skip = (trace.eos_id, trace.slack_id)
    return shiftable_positions(trace.steps[step].canvas, trace.mask_id, block_end(trace, step), direction, skip)


def why_not_shiftable(trace: Trace, step: int, position: int, direction: int = 1) -> str | None:
    """None if the token at `position` can move by `direction` after `step`; else why not, in words."""
    step = min(step, len(trace.steps) - 1)
    canvas, hi = trace.steps[step].canvas, block_end(trace, step)
    side = "right" if direction > 0 else "left"
    if not 0 <= position < len(canvas):
        return f"position {position} is outside the answer (0..{len(canvas) - 1})"
    if step >= trace.steps_total - 1:
        return "after the last step every position is committed: pick an earlier step"
    tok = canvas[position]
    if tok == trace.mask_id:
        return f"position {position} is still masked after step {step}: only a committed token can move"
    if tok in (trace.eos_id, trace.slack_id):
        return f"position {position} holds {'EOS padding' if tok == trace.eos_id else '<slack>'}: moving it changes no text"
    target = position + direction
    if not 0 <= target < hi:
        return f"position {position} is at the edge of the block being decoded: there is no place to its {side}"
    if canvas[target] != trace.mask_id:
        return (f"the place to the {side} of position {position} is already committed after step {step}: a shift "
                "needs a masked neighbour")
    return None


def legend_html() -> str:
    """One example of each token state, as the canvas draws it."""
    items = [("mv-masked", MASK_GLYPH, "still masked"),
             ("mv-earlier mv-new", "tok", "committed this step (darker = more confident)"),
             ("mv-earlier", "tok", "committed earlier"),
             ("mv-slack", SLACK_GLYPH, "slack (CTC filler, stripped from the answer)"),
             ("mv-eos", EOS_GLYPH, "end of text / padding"),
             ("mv-earlier mv-moved", "→tok", "moved by a shift (arrow = direction)"),
             ("mv-earlier mv-differs", "tok", "differs from the run without the shift"),
             ("mv-earlier mv-shiftable", "tok", "can move one place right at the step shown (click it)")]
    cells = " ".join(f'<span class="mv-tok {cls}" style="{confidence_shade(0.9) if "mv-new" in cls else ""}">'
                     f"{html.escape(glyph)}</span> {html.escape(label)} &nbsp;" for cls, glyph, label in items)
    return f'<div class="mv-legend">{cells}</div>'


def standalone_html(body: str, title: str = "mdlm-viz") -> str:
    """A full HTML page with the canvas styles, for exporting a canvas outside the app."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CANVAS_CSS}</style></head><body>{body}</body></html>")


# ----------------------------------------------------------------------------- text
def response_text(trace: Trace, decode: Callable[[list[int]], str]) -> str:
    """The answer: cut at EOS, <slack> stripped, decoded."""
    return decode(trace.response())


def raw_canvas_text(trace: Trace, token_text: TokenText, step: int | None = None) -> str:
    """The canvas as committed, <slack> and EOS kept; a trailing run of EOS is counted, not repeated."""
    canvas = trace.final if step is None else trace.canvas_at(step)
    tail = 0
    while tail < len(canvas) and trace.eos_id is not None and canvas[len(canvas) - 1 - tail] == trace.eos_id:
        tail += 1
    parts = []
    for tok in canvas[: len(canvas) - tail]:
        if tok == trace.mask_id:
            parts.append(MASK_GLYPH)
        elif trace.slack_id is not None and tok == trace.slack_id:
            parts.append("<slack>")
        elif trace.eos_id is not None and tok == trace.eos_id:
            parts.append("<EOS>")
        else:
            parts.append(token_text(tok))
    return "".join(parts) + (f"<EOS>×{tail}" if tail else "")


# ----------------------------------------------------------------------------- divergence
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


# ----------------------------------------------------------------------------- CE vs CTC on a shift
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


# ----------------------------------------------------------------------------- CTC alignment inputs
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
