"""The "Why CE punishes a shift" tab: per-position CE against CTC on a one-position shift of a
near-one-hot prediction (no model: `mdlm_viz.shift_loss`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gradio as gr

from .. import components as ui_components

from mdlm_viz import figures, shift_loss

from ..settings import LIMITS, UserError, as_choice, as_int, as_number

MAX_TARGET_CHARS = 200
FILLS = ("slack", "repeat")


@dataclass
class CeVsCtcView:
    target: object
    position: object
    fill: object
    epsilon: object
    button: object
    status: object
    plot: object


def layout() -> CeVsCtcView:
    ui_components.Markdown(
        "A prediction that is right except that everything from one position on landed one place to the "
        "right. Position-wise cross-entropy charges every position after the shift; CTC sums over "
        "alignments, so a <slack> in the hole costs almost nothing (near-one-hot predictions: probability "
        "1 − ε on the predicted token). Try `100` at position 1: the standard collapse merges the two 0s, "
        "the slack collapse does not.")
    with ui_components.Row():
        target = ui_components.Textbox("1234567", label="target (characters, or words if it has spaces)")
        position = ui_components.Number(2, label="shift at position", precision=0)
        fill = ui_components.Radio(list(FILLS), value="slack", label="the vacated place holds")
        epsilon = ui_components.Slider(*LIMITS["epsilon"], value=0.1, step=0.01, label="ε")
        button = ui_components.Button("Compare")
    status = ui_components.Markdown("", elem_id="ce-status")
    plot = ui_components.Plot(label="CE vs CTC", elem_id="ce-vs-ctc")
    return CeVsCtcView(target, position, fill, epsilon, button, status, plot)


def compare(view: CeVsCtcView, target_text, position, fill, epsilon) -> dict:
    try:
        if target_text is not None and not isinstance(target_text, str):
            raise UserError("the target must be text")
        text = (target_text or "")[:MAX_TARGET_CHARS]
        losses = shift_loss.shift_losses(shift_loss.split_units(text), as_int(position, "position"),
                                         fill=as_choice(fill, "fill", FILLS),
                                         epsilon=as_number(epsilon, "epsilon", float))
    except (UserError, ValueError) as err:
        return {view.status: f"⚠ {err}", view.plot: None}
    fig = figures.shift_loss_figure(losses.reference, losses.prediction, losses.ce_per_position, losses.ctc)
    ctc_txt = ", ".join(f"{k}: {'no alignment' if v is None else f'{v:.2f}'}" for k, v in losses.ctc.items())
    md = (f"prediction `{' '.join(losses.prediction)}` vs target `{' '.join(losses.units)}` · CE total "
          f"{losses.ce_total:.2f} nats · CTC {ctc_txt}")
    return {view.status: md, view.plot: fig}


def wire(view: CeVsCtcView, demo) -> None:
    inputs = [view.target, view.position, view.fill, view.epsilon]
    handler = functools.partial(compare, view)
    view.button.click(handler, inputs, [view.status, view.plot], api_name="ce_vs_ctc")
    demo.load(handler, inputs, [view.status, view.plot], api_visibility="private")
