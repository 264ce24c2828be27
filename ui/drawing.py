"""What the main view draws from a `Session`: canvases at a step, answers, heatmaps, the cascade.

Pure functions from recorded traces to {component: value} updates of a `DecodeView` (no model
call): the decode handlers, the playback and the lesson all draw through here.
"""

from __future__ import annotations

import functools
import html
from typing import TYPE_CHECKING

import gradio as gr

import mdlm_viz as mv
from mdlm_viz import divergence, figures, viewer

from .models import LoadedModel
from .session import Session

if TYPE_CHECKING:
    from .tabs.decode import DecodeView, Panel


def message_html(text: str) -> str:
    return f'<div class="mv-error">⚠ {html.escape(text)}</div>'


def heatmap(trace: mv.Trace, title: str) -> str:
    """The commit heatmap of a decode, as SVG for a `gr.HTML` (the browser paints it at once; four
    plotly heatmaps took about 0.7 s to draw after their data arrived). Visitors with the same
    decode (a class on one preset) share the string, built once."""
    return _shared_svg(figures.commit_grid(trace, trace.token_text), title)


@functools.lru_cache(maxsize=64)
def _shared_svg(grid: figures.CommitGrid, title: str) -> str:
    return figures.commit_grid_svg(grid, title)


def render_step(view: DecodeView, panel: Panel, session: Session, step: int) -> dict:
    """Both canvases of one model at `step`, from the recorded traces (no model call)."""
    out = {}
    clean = session.clean.get(panel.name)
    if clean is not None:
        out[panel.canvas] = viewer.canvas_html(clean, step, caption=f"after step {step}",
                                               shiftable=viewer.shiftable_at(clean, step),
                                               replay=session.replay("clean", panel.name))
    shifted = session.shifted.get(panel.name)
    if shifted is not None and clean is not None:
        diff = divergence.differing_positions(clean.canvas_at(step), shifted.canvas_at(step))
        out[panel.shifted_canvas] = viewer.canvas_html(shifted, step, differs=diff,
                                                       caption=f"with the shift, after step {step}",
                                                       replay=session.replay("shifted", panel.name))
    return out


def hidden_shift_values(panel: Panel) -> dict:
    """The shift views' values when hidden: what `hidden_shift_views` sets, as plain values (a
    component update costs Gradio a new component; a value does not)."""
    return {panel.shifted_canvas: "", panel.shift_summary: "", panel.shifted_answer: "", panel.shifted_heatmap: "",
            panel.difference: None}


def hidden_shift_views(panel: Panel) -> dict:
    return {panel.shifted_canvas: "", panel.shift_summary: "",
            panel.shifted_answer: gr.Textbox(value="", visible=False),
            panel.shifted_heatmap: gr.HTML(value="", visible=False),
            panel.difference: gr.Plot(value=None, visible=False)}


def answer_text(trace: mv.Trace, models: dict[str, LoadedModel]) -> str:
    """The answer (<slack> stripped, cut at EOS), spelled from the trace's recorded token texts
    (so a recorded or imported trace reads the same as a live one); else decoded by its model."""
    lm = models.get(trace.model) if trace.model else None
    if lm is not None and not trace.token_texts:
        try:
            return lm.decode(trace.response())
        except (IndexError, OverflowError, TypeError, ValueError):  # ids outside this tokenizer's vocabulary
            pass
    return "".join(trace.token_text(t) for t in trace.response()).strip()


def clean_views(view: DecodeView, session: Session, models: dict[str, LoadedModel], step: int | None = None,
                hide=hidden_shift_views) -> dict:
    """Every panel drawn from the session's clean runs at `step` (default: the last), the shift
    views hidden by `hide` (`hidden_shift_values` where they are hidden already)."""
    out = {}
    step = session.last_step if step is None else step
    for p in view.panels:
        tr = session.clean.get(p.name)
        out.update(hide(p))
        if tr is None:
            out.update({p.canvas: message_html("not in this decode"), p.answer: "", p.raw: "", p.heatmap: ""})
            continue
        out.update(render_step(view, p, session, step))
        out[p.answer] = answer_text(tr, models)
        out[p.raw] = viewer.raw_canvas_text(tr, tr.token_text)
        out[p.heatmap] = heatmap(tr, f"{p.name}: commit step")
    return out


def shifted_views(view: DecodeView, session: Session, step: int, models: dict[str, LoadedModel]) -> dict:
    """The shifted runs, their summaries, the cascade maps and the divergence plot."""
    out, series = {}, {}
    at = sorted({d.step for tr in session.shifted.values() for d in tr.displacements})
    for n, tr in session.shifted.items():
        panel, clean = view.by_name.get(n), session.clean.get(n)
        if panel is None or clean is None:
            continue
        div = divergence.divergence(clean, tr)
        series[n] = div.edit_distance
        out.update(render_step(view, panel, session, step))
        moved = f"{len(tr.displacements)} shift(s)" if tr.displacements else "the shift did not apply here"
        out[panel.shift_summary] = f"**{n}** ({moved}): {divergence.divergence_summary(div)}"
        out[panel.shifted_answer] = gr.Textbox(value=answer_text(tr, models), visible=True)
        out[panel.difference] = gr.Plot(value=figures.difference_map_figure(clean, tr, f"{n}: the cascade"),
                                        visible=True)
        out[panel.shifted_heatmap] = gr.HTML(value=heatmap(tr, f"{n} with the shift"), visible=True)
    out[view.edit_plot] = figures.edit_distance_figure(series, shift_steps=at) if series else None
    return out


def show_session(view: DecodeView, session: Session, models: dict[str, LoadedModel], step: int | None = None) -> dict:
    """Load a whole session into the main view (a lesson example, a finished decode)."""
    step = session.last_step if step is None else session.clamp(step)
    out = clean_views(view, session, models)
    out.update(shifted_views(view, session, step, models))
    for p in view.panels:
        out.update(render_step(view, p, session, step))
    out[view.state] = session
    out[view.prompt] = session.prompt
    out[view.step_slider] = gr.Slider(minimum=0, maximum=max(session.last_step, 1), value=step)
    return out
