"""What the app shows, as pure functions of a `Trace` (no Gradio here, so all of it is testable).

- `canvas_html`: the response canvas after a step, one `<span data-pos=...>` per position. Every
  token state differs in its text *and* its colour (Okabe-Ito palette, colour-blind safe): still
  masked `░`, committed this step (bold, underlined, shaded by the committed token's probability),
  committed earlier, `‹slack›`, `EOS`, moved by an intervention (`→tok` / `tok←`), and, when
  compared with another run, different from it (`≠`). The hover text gives the commit step, its
  confidence and the top-k candidates the model considered at that step.
- `response_text` / `raw_canvas_text`: the answer with `<slack>` stripped beside the raw canvas.

How runs differ lives in `divergence`, the CE-vs-CTC teaching computation in `shift_loss`, and
what the alignment view aligns in `alignment`: the viewer only draws.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .interventions import shiftable_positions
from .trace import Replay, Trace

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


def candidates_at(trace: Trace, step: int) -> dict[int, list[tuple[int, float]]]:
    """{position: [(token, probability), ...]} the model proposed at `step` (top-k of the trace)."""
    if not 0 <= step < len(trace.steps):
        return {}
    return {p: list(zip(ids, probs)) for p, ids, probs in trace.steps[step].candidates}


def positions_at(trace: Trace, step: int, replay: Replay | None = None) -> list[PositionInfo]:
    """State of every response position after `step` (-1: before the first step). Pass a `Replay`
    kept across calls to pay only for the steps since the last call (streaming, playback)."""
    canvas = trace.canvas_at(step)
    replay = (replay or Replay(trace)).advance_to(step)
    commits, moves, cands = replay.commits, replay.moves, candidates_at(trace, step)
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


def canvas_html(trace: Trace, step: int, token_text: TokenText | None = None, *, differs: Sequence[int] = (),
                caption: str | None = None, picked: int | None = None, hover: bool = True,
                shiftable: Sequence[int] = (), replay: Replay | None = None) -> str:
    """The canvas after `step` as HTML (spans with data-pos; classes styled by CANVAS_CSS).
    hover=False leaves out the tooltips: a third of the size, for frames streamed while decoding.
    `shiftable` positions are outlined (and marked ⇢): tokens a shift may move at this step.
    Without `token_text` the trace's recorded token texts are used (an imported trace)."""
    step = min(step, len(trace.steps) - 1)
    token_text = token_text or trace.token_text
    infos = positions_at(trace, step, replay)
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
