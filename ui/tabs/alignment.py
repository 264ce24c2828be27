"""The CTC alignment tab: the posterior of a target over a model's output positions, using the
model's distributions at the step each position was committed (one forward pass per step used)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gradio as gr

from .. import components as ui_components

from mdlm_viz import alignment, ctc, figures

from ..decoding import DEVICE_LOCK
from ..session import AppContext, Session
from ..settings import UserError, as_choice
from .decode import on_gpu


@dataclass
class AlignmentView:
    model: object
    target: object
    collapse: object
    log_scale: object
    button: object
    status: object
    plot: object


def layout(ctx: AppContext) -> AlignmentView:
    names = ctx.names
    ui_components.Markdown(
        "The CTC posterior of a target over a model's output positions, using the model's distributions at "
        "the step each position was committed. Leave the target empty to align the model's own answer; try "
        "`100` with both collapse maps: the standard map merges the two 0s, so an alignment of 1 0 0 needs "
        "a <slack> between them.")
    with ui_components.Row():
        model = ui_components.Dropdown(names, value=names[-1], label="model")
        target = ui_components.Textbox("", label="target text (empty: the model's own answer)")
        collapse = ui_components.Radio(list(ctc.COLLAPSE_MAPS), value=ctc.DEFAULT_COLLAPSE, label="collapse map")
        log_scale = ui_components.Checkbox(False, label="log scale")
        button = ui_components.Button("Align")
    status = ui_components.Markdown("")
    plot = ui_components.Plot(label="alignment", elem_id="alignment")
    return AlignmentView(model, target, collapse, log_scale, button, status, plot)


def align(ctx: AppContext, view: AlignmentView, model_name, target_text, collapse, log_scale,
          session: Session | None) -> dict:
    try:
        ctx.wait_models()
        if not isinstance(model_name, str) or model_name not in ctx.models:
            raise UserError(f"unknown model {model_name!r}: choose among {', '.join(ctx.models)}")
        collapse = as_choice(collapse, "collapse map", ctc.COLLAPSE_MAPS)
        if session is None or model_name not in session.clean:
            raise UserError(f"run a prompt with {model_name} first: the alignment uses its decode")
        if target_text is not None and not isinstance(target_text, str):
            raise UserError("the target must be text")
        lm, trace = ctx.models[model_name], session.clean[model_name]
        slack = lm.slack_id()
        if slack is None:
            raise UserError(f"{model_name}'s tokenizer has no <slack> token, so there is nothing to align with")
        typed = (target_text or "").strip()
        if len(typed) > ctx.max_prompt_chars:
            raise UserError(f"the target is longer than {ctx.max_prompt_chars} characters")
        target = alignment.alignment_target(trace, lm.tokenizer(typed, add_special_tokens=False)["input_ids"]
                                            if typed else None)
        target = [t for t in target if t != slack]
        if not target:
            raise UserError("the target is empty (the model's answer is empty): type a target")
        T = alignment.alignment_length(trace, alignment.needed_length(target, collapse))
        with DEVICE_LOCK:
            emissions = alignment.emissions_at_commit(lm.model, trace)[:T]
        al = ctc.alignment(emissions, target, slack_id=slack, collapse=collapse)
    except (UserError, ValueError) as err:
        return {view.status: f"⚠ {err}", view.plot: None}
    fig = figures.alignment_heatmap(al, target_text=[lm.token_text(t) for t in target], log_scale=bool(log_scale))
    raw = trace.final[:T]
    spelled = {m: lm.decode(ctc.collapse(raw, slack, m)) for m in ctc.COLLAPSE_MAPS}
    md = (f"log p(target) = {al.log_likelihood:.2f} over {T} positions · target {lm.decode(target)!r} · the raw "
          f"output collapses to {spelled['slack']!r} (slack map) and {spelled['standard']!r} (standard map)")
    return {view.status: md, view.plot: fig}


def wire(ctx: AppContext, view: AlignmentView, state) -> None:
    view.button.click(on_gpu(functools.partial(align, ctx, view)),
                      [view.model, view.target, view.collapse, view.log_scale, state], [view.status, view.plot],
                      api_name="align")
