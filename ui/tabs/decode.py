"""The main view: a prompt decoded by every model side by side, replayed step by step, a shift
injected (by hand, at random, or found by "Find a revealing shift") and the cascade drawn.

`layout` builds the components (a `DecodeView`), the handlers below are module-level functions of
(context, view, inputs) that return {component: value} updates (testable without HTTP), and
`wire` connects them. Everything after a decode replays the recorded traces: no model call.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import gradio as gr

from .. import components as ui_components

import mdlm_viz as mv
from mdlm_viz import viewer
from mdlm_viz.sampling import REMASKING

from ..decoding import SeededDecode, interleave
from ..drawing import (answer_text, clean_views, heatmap, hidden_shift_values, hidden_shift_views, message_html,
                       render_step, shifted_views)
from ..finder import find_revealing
from ..session import AppContext, Session
from ..settings import (LIMITS, PRESETS, UserError, as_choice, as_int, as_number, check_prompt,
                        check_prompt_tokens, parse_settings)

try:  # Hugging Face ZeroGPU Spaces: borrow a GPU per call; elsewhere a no-op
    import spaces

    on_gpu = spaces.GPU
except ImportError:
    def on_gpu(fn):
        return fn

# A click on a token sends its position: the documented `trigger(event, data)` of gr.HTML.
PICK_JS = """
element.addEventListener('click', (e) => {
  const tok = e.target.closest('[data-pos]');
  if (tok) trigger('click', {pos: Number(tok.dataset.pos)});
});
"""
DIRECTIONS = ("right →", "← left")


@dataclass
class Panel:
    """One model's column."""

    name: str
    canvas: object
    answer: object
    raw: object
    heatmap: object
    shifted_canvas: object
    shift_summary: object
    shifted_answer: object
    shifted_heatmap: object
    difference: object  # the cascade: where the shifted run differs, step x position

    def components(self) -> list:
        return [self.canvas, self.answer, self.raw, self.heatmap, self.shifted_canvas, self.shift_summary,
                self.shifted_answer, self.shifted_heatmap, self.difference]


@dataclass
class DecodeView:
    state: object
    prompt: object
    preset: object
    chosen: object
    run_btn: object
    settings: list  # gen_length, steps, block_length, remasking, temperature, cfg_scale, seed, slack_bias
    status: object
    play_btn: object
    pause_btn: object
    prev_btn: object
    next_btn: object
    speed: object
    step_slider: object
    timer: object
    shift_mode: object
    shift_step: object
    shift_pos: object
    direction: object
    strength: object
    shift_btn: object
    find_btn: object
    candidates: object
    shift_status: object
    edit_plot: object
    panels: list[Panel] = field(default_factory=list)

    @property
    def by_name(self) -> dict[str, Panel]:
        return {p.name: p for p in self.panels}

    def panel_outputs(self) -> list:
        return [c for p in self.panels for c in p.components()]

    def run_outputs(self) -> list:
        return [self.status, self.state, self.step_slider, self.edit_plot, self.shift_status,
                self.candidates] + self.panel_outputs()

    def shift_outputs(self) -> list:
        return [self.shift_status, self.state, self.edit_plot] + self.panel_outputs()

    def canvas_outputs(self) -> list:
        return [self.status] + [c for p in self.panels for c in (p.canvas, p.shifted_canvas)]

    def tick_outputs(self) -> list:
        return self.canvas_outputs() + [self.step_slider, self.timer]


# ----------------------------------------------------------------------------- layout
def number(name: str, value, label: str, **kw):
    """A whole-number field that shows its range. The range is checked by `settings`, not by
    Gradio's minimum/maximum, so an API client gets the same message as the page."""
    lo, hi = LIMITS[name]
    return ui_components.Number(value, label=label, precision=0, info=f"{lo}–{hi}", **kw)


def layout(ctx: AppContext) -> DecodeView:
    names = ctx.names
    first = ctx.infos[names[0]].defaults
    gen, steps_default = first.get("gen_length", 64), first.get("steps", 64)
    state = ui_components.State(None)
    with ui_components.Row():
        preset = ui_components.Dropdown(PRESETS, label="preset prompts", value=None, scale=1)
        prompt = ui_components.Textbox(PRESETS[0], label="prompt", lines=1, max_lines=4, scale=3, elem_id="prompt")
    with ui_components.Row():
        chosen = ui_components.CheckboxGroup(names, value=names, label="models (same prompt, settings and seed)",
                                             scale=3)
        run_btn = ui_components.Button("Decode", variant="primary", scale=1, elem_id="decode", interactive=ctx.ready)
    with ui_components.Accordion("Decoding settings", open=False):
        with ui_components.Row():
            gen_length = number("gen_length", gen, "generation length")
            steps = number("steps", steps_default, "steps")
            block_length = number("block_length", first.get("block_length", 32), "block length")
            seed = number("seed", 0, "seed")
        with ui_components.Row():
            remasking = ui_components.Dropdown(list(REMASKING), value="low_confidence", label="remasking")
            temperature = ui_components.Slider(*LIMITS["temperature"], value=0, step=0.05, label="temperature")
            cfg_scale = ui_components.Slider(*LIMITS["cfg_scale"], value=0, step=0.1, label="CFG scale")
            slack_bias = ui_components.Slider(*LIMITS["slack_bias"], value=0, step=0.5, label="slack bias (CTC models)",
                                              info="lowers <slack>'s logit: 0 decodes as in the paper, higher "
                                              "commits fewer <slack> where the model is unsure of the content")
    status = ui_components.Markdown(ctx.readiness(), elem_id="status")
    with ui_components.Row():
        play_btn = ui_components.Button("▶ Play", scale=0, min_width=80)
        pause_btn = ui_components.Button("Pause", scale=0, min_width=80)
        prev_btn = ui_components.Button("Step −1", scale=0, min_width=80, elem_id="step-prev")
        next_btn = ui_components.Button("Step +1", scale=0, min_width=80, elem_id="step-next")
        speed = ui_components.Slider(*LIMITS["speed"], value=4, step=1, label="steps / second", scale=1)
        step_slider = ui_components.Slider(0, max(steps_default - 1, 1), value=0, step=1, label="step", scale=4,
                                           elem_id="step-slider")
    timer = ui_components.Timer(0.25, active=False)

    with ui_components.Accordion("Inject a shift", open=True, elem_id="shift-box"):
        ui_components.Markdown(
            "Move one committed token by one position right after a step (click an outlined ⇢ token in a "
            "canvas to pick it at the step shown), or displace a fraction *r* of the tokens at random. "
            "The same decode is re-run with the same seed, so the two runs pair up.")
        with ui_components.Row():
            shift_mode = ui_components.Radio(["one token", "random shifts"], value="one token", label="intervention")
            shift_step = number("step", 0, "after step", elem_id="shift-step")
            shift_pos = number("position", 0, "position", elem_id="shift-pos")
            direction = ui_components.Radio(list(DIRECTIONS), value=DIRECTIONS[0], label="direction")
            strength = ui_components.Slider(0, 0.25, value=0.05, step=0.01, label="random strength r")
            shift_btn = ui_components.Button("Re-run with the shift", variant="primary")
        with ui_components.Row():
            find_btn = ui_components.Button("Find a revealing shift", variant="primary", elem_id="find-shift", scale=0,
                                            min_width=240)
            candidates = ui_components.Radio([], label="other shifts found (click to apply)", visible=False,
                                             elem_id="shift-candidates", scale=3)
        shift_status = ui_components.Markdown("", elem_id="shift-status")

    panels: list[Panel] = []
    with ui_components.Row(equal_height=False, elem_id="panels"):
        for name in names:
            with ui_components.Column(min_width=280, elem_id=f"panel-{name}"):
                ui_components.Markdown(f"### {name}\n<small>{ctx.infos[name].describe()}</small>")
                canvas = gr.HTML(message_html("not run yet"), js_on_load=PICK_JS, elem_id=f"canvas-{name}",
                                 elem_classes=["mv-canvas-box"])
                with ui_components.Row():
                    answer = ui_components.Textbox(label="answer (<slack> stripped)", interactive=False, lines=2,
                                                   elem_id=f"answer-{name}")
                    raw = ui_components.Textbox(label="raw canvas", interactive=False, lines=2)
                hm = gr.HTML("", elem_id=f"heatmap-{name}", elem_classes=["mv-heatmap"])
                shifted_canvas = gr.HTML("", js_on_load=PICK_JS, elem_id=f"shifted-{name}")
                summary = ui_components.Markdown("", elem_id=f"summary-{name}")
                shifted_answer = ui_components.Textbox(label="answer with the shift", interactive=False, lines=2,
                                                       visible=False, elem_id=f"shifted-answer-{name}")
                difference = ui_components.Plot(label="the cascade: where the shifted run differs", visible=False,
                                                elem_id=f"difference-{name}")
                shifted_hm = gr.HTML("", elem_id=f"sheatmap-{name}", elem_classes=["mv-heatmap"], visible=False)
                panels.append(Panel(name, canvas, answer, raw, hm, shifted_canvas, summary, shifted_answer,
                                    shifted_hm, difference))
    with ui_components.Accordion("Divergence per step (edit distance of the committed text)", open=False):
        edit_plot = ui_components.Plot(label="divergence per step", elem_id="edit-distance")
    return DecodeView(state, prompt, preset, chosen, run_btn,
                      [gen_length, steps, block_length, remasking, temperature, cfg_scale, seed, slack_bias],
                      status, play_btn, pause_btn, prev_btn, next_btn, speed, step_slider, timer, shift_mode,
                      shift_step, shift_pos, direction, strength, shift_btn, find_btn, candidates, shift_status,
                      edit_plot, panels)


# ----------------------------------------------------------------------------- handlers
def stream_frames(ctx: AppContext, view: DecodeView, decodes: dict[str, SeededDecode], canvas_of, status_comp,
                  label: str, first: dict, steady: dict):
    """Page updates while `decodes` run, paced by `ctx.pacer` (from a quarter second into the
    decode, at most ten a second, fewer when many visitors stream, none just before the end) and
    built only when sent (frames without tooltips). `first` goes out with the first frame (or the
    final one); every frame then carries `steady` and the latest canvas of every model,
    so that each frame gives every output a value: for an output left out, Gradio builds a new
    component (a copy of its config) on every frame, which was most of a frame's cost with forty
    outputs. Returns {model: error message} and the updates not sent yet (with `steady` in them)."""
    with ctx.pacer.streaming():
        return (yield from _frames(ctx, view, decodes, canvas_of, status_comp, label, {**steady, **first}, steady))


def _frames(ctx: AppContext, view: DecodeView, decodes: dict[str, SeededDecode], canvas_of, status_comp,
            label: str, pending: dict, steady: dict):
    errors, fresh, canvases = {}, {}, {}
    done = dict.fromkeys(decodes, 0.0)  # model -> share of its steps computed
    start, last = time.perf_counter(), None
    for n, step, err in interleave(decodes):
        if err is not None:
            errors[n] = err
            done.pop(n, None)
            canvases[canvas_of(view.by_name[n])] = message_html(err)
        elif step is not None:
            fresh[n] = step.index
            done[n] = (step.index + 1) / decodes[n].settings.steps
        now = time.perf_counter()
        if fresh and done and ctx.pacer.due(None if last is None else now - last, now - start, min(done.values())):
            for m, i in fresh.items():
                d = decodes[m]
                where = f"step {i + 1}/{d.settings.steps}"
                canvases[canvas_of(view.by_name[m])] = viewer.canvas_html(
                    d.live, i, ctx.models[m].token_text, caption=f"{label}{where}", hover=False, replay=d.replay)
                pending[status_comp] = f"{label}**{m}** {where}"
            yield {**pending, **canvases}
            last, pending, fresh = time.perf_counter(), dict(steady), {}
    return errors, {**pending, **canvases}


def problems_of(errors: dict) -> str:
    text = " ".join(f"⚠ {n}: {e}" for n, e in errors.items())
    if text:
        gr.Warning(text)
    return text


def run(ctx: AppContext, view: DecodeView, prompt_text, chosen_names, gen_length, steps, block_length, remasking,
        temperature, cfg_scale, seed, slack_bias=0.0, shown: Session | None = None):
    """Decode the prompt with every chosen model (streamed), then draw the answers and heatmaps.
    `shown` is the session the page shows (None: a fresh page, as an API caller's is). Only what
    it made visible is hidden again and the step slider's range is sent only when it changes: a
    component's properties are Gradio's costliest output (it rebuilds the component for the
    visitor's session), which a class of thirty pays thirty times."""
    started = time.perf_counter()
    names = ctx.names
    if not ctx.ready and ctx.load_error is None:
        yield {view.status: ctx.readiness() + " The decode starts when they are ready."}
    try:
        ctx.wait_models()
        text = check_prompt(prompt_text, ctx.max_prompt_chars)
        settings = parse_settings(gen_length, steps, block_length, remasking, temperature, cfg_scale, seed,
                                  slack_bias)
        if chosen_names is not None and (not isinstance(chosen_names, (list, tuple))
                                         or not all(isinstance(n, str) for n in chosen_names)):
            raise UserError("models must be a list of model names")
        unknown = [n for n in chosen_names or [] if n not in ctx.models]
        if unknown:
            raise UserError(f"unknown model(s) {', '.join(map(repr, unknown))}: choose among {', '.join(names)}")
        run_names = [n for n in names if n in (chosen_names or [])]
        if not run_names:
            raise UserError("choose at least one model")
        prompt_ids = {n: ctx.models[n].prompt_ids(text) for n in run_names}
        for n, ids in prompt_ids.items():
            check_prompt_tokens(len(ids), n)
    except UserError as err:
        gr.Warning(str(err))
        yield {view.status: f"⚠ {err}"}
        return
    decodes = {n: ctx.decode(n, prompt_ids[n], settings) for n in run_names}
    # Every output but the state gets a value in every frame (see stream_frames); the shift views
    # a found shift made visible are hidden once, in the first frame.
    steady = {view.edit_plot: None, view.shift_status: "", view.candidates: None, view.step_slider: 0}
    first = {}
    if shown is not None and shown.shifted:  # a shift found for the last decode is not this one's
        first[view.candidates] = gr.Radio(choices=[], value=None, visible=False)
    for p in view.panels:
        steady.update({p.heatmap: "", p.answer: "", p.raw: "", **hidden_shift_values(p)})
        if shown is not None and shown.shifted:
            first.update(hidden_shift_views(p))
        if p.name not in run_names:
            steady[p.canvas] = message_html("not run (unticked)")
        else:
            steady[p.canvas] = ""  # until its first step
    errors, final = yield from stream_frames(ctx, view, decodes, lambda p: p.canvas, view.status, "decoding… ",
                                             first, steady)
    traces = {n: d.trace for n, d in decodes.items() if n not in errors}
    session = Session(text, settings, traces, {n: prompt_ids[n] for n in traces})
    for n in traces:
        panel = view.by_name[n]
        final.update(render_step(view, panel, session, session.last_step))
        final[panel.answer] = answer_text(traces[n], ctx.models)
        final[panel.raw] = viewer.raw_canvas_text(traces[n], traces[n].token_text)
        final[panel.heatmap] = heatmap(traces[n], f"{n}: commit step")
    done = ", ".join(f"**{n}**: {len(tr.steps)} steps" for n, tr in traces.items())
    final[view.status] = f"done in {time.perf_counter() - started:.2f} s. {done} {problems_of(errors)}".strip()
    final[view.state] = session
    top = max(session.last_step, 1)
    final[view.step_slider] = session.last_step if top == shown_top(view, shown) else gr.Slider(
        minimum=0, maximum=top, value=session.last_step)
    yield final


def shown_top(view: DecodeView, shown: Session | None) -> int:
    """The step slider's maximum on a page showing `shown` (None: the layout's)."""
    return view.step_slider.maximum if shown is None else max(shown.last_step, 1)


def show_step(view: DecodeView, step, session: Session | None) -> dict:
    if session is None:
        return {view.status: "run a prompt first"}
    try:
        step_i = session.clamp(as_number(step, "step") if step is not None else 0)
    except UserError as err:
        return {view.status: f"⚠ {err}"}
    out = {}
    for p in view.panels:
        if not session.shifted:  # a value for every canvas: Gradio builds a component for each left out
            out[p.shifted_canvas] = ""
        out.update(render_step(view, p, session, step_i))
    return out


def advance(view: DecodeView, step, session: Session | None) -> dict:
    if session is None:
        return {view.timer: gr.Timer(active=False)}
    nxt = min(session.clamp(step) + 1, session.last_step)
    out = show_step(view, nxt, session)
    out[view.step_slider] = nxt
    if nxt >= session.last_step:
        out[view.timer] = gr.Timer(active=False)
    return out


def back(view: DecodeView, step, session: Session | None) -> dict:
    if session is None:
        return {view.status: "run a prompt first"}
    prev = max(0, session.clamp(step) - 1)
    return {**show_step(view, prev, session), view.step_slider: prev, view.timer: gr.Timer(active=False)}


def play(view: DecodeView, step, session: Session | None, speed) -> dict:
    try:
        rate = as_number(speed, "speed", float)
    except UserError:
        rate = 4.0
    out = {view.timer: gr.Timer(value=1.0 / rate, active=True)}
    if session is not None and session.clamp(step) >= session.last_step:  # replay from the start
        out.update(show_step(view, 0, session))
        out[view.step_slider] = 0
    return out


def pick(view: DecodeView, name: str, evt: gr.EventData, step, session: Session | None, direction) -> dict:
    """A click on a token of `name`'s canvas: pick it if it can move, else say why not, once."""
    try:
        pos, step_i = as_int(getattr(evt, "pos", None), "position"), as_int(step or 0, "step")
    except UserError as err:
        return {view.shift_status: f"⚠ {err}"}
    trace = session.clean.get(name) if session is not None else None
    if trace is None:
        return {view.shift_status: "⚠ decode a prompt first, then click a token"}
    d = 1 if str(direction).startswith("right") else -1
    why = viewer.why_not_shiftable(trace, step_i, pos, d)
    if why:
        return {view.shift_status: f"⚠ {why}. The outlined ⇢ tokens can move."}
    return {view.shift_pos: pos, view.shift_step: step_i,
            view.shift_status: f"picked position {pos} after step {step_i}: press **Re-run with the shift**"}


def rerun_with(ctx: AppContext, view: DecodeView, interventions, what: str, slider, session: Session,
               extra: str | None = None, steady_extra: dict | None = None):
    """Every model of the last decode again, same seed, with `interventions`; streams the shifted
    canvases, then draws the shifted answers, summaries, cascade maps and divergence. The clean
    views are sent again as they are (values, so every frame fills every output: stream_frames)."""
    decodes = {n: ctx.decode(n, session.prompt_ids[n], session.settings, interventions) for n in session.clean}
    clean = Session(session.prompt, session.settings, session.clean, session.prompt_ids)
    steady = {view.edit_plot: None, **(steady_extra or {}),
              **clean_views(view, clean, ctx.models, clean.clamp(slider), hide=hidden_shift_values)}
    errors, final = yield from stream_frames(ctx, view, decodes, lambda p: p.shifted_canvas, view.shift_status,
                                             "with the shift: ", {}, steady)
    shifted = {n: d.trace for n, d in decodes.items() if n not in errors}
    new = Session(session.prompt, session.settings, session.clean, session.prompt_ids, shifted, what)
    for n, err in errors.items():
        final.update(hidden_shift_views(view.by_name[n]))
        final[view.by_name[n].shifted_canvas], final[view.by_name[n].shift_summary] = message_html(err), f"⚠ {err}"
    final.update(shifted_views(view, new, new.clamp(slider), ctx.models))
    final[view.shift_status] = (extra or f"re-ran with the {what}.") + f" {problems_of(errors)}".rstrip()
    final[view.state] = new
    yield final


def live_session(ctx: AppContext, session: Session | None) -> Session:
    if session is None or not session.clean:
        raise UserError("run a prompt first, then pick a token to shift")
    if any(n not in ctx.models or n not in session.prompt_ids for n in session.clean):
        raise UserError("this decode was recorded (a lesson example or an import): press Decode to run it live "
                        "before shifting")
    return session


def run_shift(ctx: AppContext, view: DecodeView, mode, step, pos, direction, strength, slider, session):
    try:
        session = live_session(ctx, session)
        slider = as_int(slider or 0, "step")
        if as_choice(mode, "intervention", ("one token", "random shifts")) == "random shifts":
            r = as_number(strength, "strength", float)
            interventions = [mv.RandomShifts(strength=r, seed=session.settings.seed)]
            what = f"random shifts r = {r:g}"
        else:
            step_i, pos_i = as_int(step, "step"), as_int(pos, "position")
            d = 1 if as_choice(direction, "direction", DIRECTIONS).startswith("right") else -1
            interventions = [mv.Shift(step=step_i, position=pos_i, direction=d)]
            what = f"shift of position {pos_i} by {d:+d} after step {step_i}"
    except (UserError, ValueError) as err:
        gr.Warning(str(err))
        yield {view.shift_status: f"⚠ {err}"}
        return
    yield from rerun_with(ctx, view, interventions, what, slider, session)


def commit_shift_words(pos: int) -> str:
    return f"shift of the token that lands at position {pos}, one place right as it is committed"


def find_shift(ctx: AppContext, view: DecodeView, slider, session):
    """Try the comparable shift at every answer position for a CE and a CTC model (batched,
    greedy), apply the most revealing one to every model, and list the next ones."""
    try:
        slider = as_int(slider or 0, "step")
        found = find_revealing(ctx.models, session, ctx.answers)
    except UserError as err:
        yield {view.shift_status: f"⚠ {err}", view.candidates: gr.Radio(choices=[], value=None, visible=False)}
        return
    last = None
    for frame in rerun_with(ctx, view, [mv.ShiftAtCommit(found.best)], commit_shift_words(found.best), slider,
                            session, extra=found.message, steady_extra={view.candidates: None}):
        if last is not None:
            yield last
        last = frame  # the last frame also fills the list of candidates
    last[view.candidates] = gr.Radio(choices=found.choices, value=found.best, visible=bool(found.choices))
    yield last


def apply_candidate(ctx: AppContext, view: DecodeView, pos, slider, session):
    try:
        session = live_session(ctx, session)
        pos, slider = as_int(pos, "position"), as_int(slider or 0, "step")
    except UserError as err:
        yield {view.shift_status: f"⚠ {err}"}
        return
    yield from rerun_with(ctx, view, [mv.ShiftAtCommit(pos)], commit_shift_words(pos), slider, session)


# ----------------------------------------------------------------------------- wiring
def wire(ctx: AppContext, view: DecodeView) -> None:
    bind = functools.partial
    run_inputs = [view.prompt, view.chosen, *view.settings, view.state]  # the state: not an API parameter
    run_fn = on_gpu(bind(run, ctx, view))
    # Progress shows on the status line only: Gradio's default covers every output (about forty here)
    # with a ticking overlay, and redrawing those kept the browser busy on the cores the decode needs.
    # A decode's outputs are plain strings, numbers and None as the page takes them (tested), so
    # Gradio's per-output postprocessing, a thread hop for each of forty outputs on every frame, is
    # skipped. Its inputs pass through unchecked anyway (ui/components.py: the handlers check them),
    # so their preprocessing, a thread hop for each of ten inputs before the decode starts, is too.
    quiet = dict(show_progress="minimal", show_progress_on=view.status, postprocess=False, preprocess=False)
    shift_quiet = dict(show_progress="minimal", show_progress_on=view.shift_status,  # its plots need postprocessing
                       preprocess=False)
    view.run_btn.click(run_fn, run_inputs, view.run_outputs(), api_name="run", **quiet)
    view.prompt.submit(run_fn, run_inputs, view.run_outputs(), api_visibility="private", **quiet)
    view.preset.change(lambda p: p or gr.skip(), view.preset, view.prompt, api_visibility="private")

    view.step_slider.input(bind(show_step, view), [view.step_slider, view.state], view.canvas_outputs(),
                           api_name="show_step", trigger_mode="always_last")
    playback = [view.step_slider, view.state]
    view.timer.tick(bind(advance, view), playback, view.tick_outputs(), api_visibility="private",
                    trigger_mode="always_last")
    view.next_btn.click(bind(advance, view), playback, view.tick_outputs(), api_visibility="private")
    view.prev_btn.click(bind(back, view), playback, view.tick_outputs(), api_visibility="private")
    view.play_btn.click(bind(play, view), [*playback, view.speed], view.tick_outputs(), api_visibility="private")
    view.pause_btn.click(lambda: gr.Timer(active=False), None, view.timer, api_visibility="private")
    view.speed.change(lambda v: gr.Timer(value=1.0 / max(1.0, float(v or 1))), view.speed, view.timer,
                      api_visibility="private")

    for p in view.panels:
        def on_click(evt: gr.EventData, step, session, direction, name=p.name):
            return pick(view, name, evt, step, session, direction)
        for comp in (p.canvas, p.shifted_canvas):
            comp.click(on_click, [view.step_slider, view.state, view.direction],
                       [view.shift_pos, view.shift_step, view.shift_status], api_visibility="private")

    view.shift_btn.click(on_gpu(bind(run_shift, ctx, view)),
                         [view.shift_mode, view.shift_step, view.shift_pos, view.direction, view.strength,
                          view.step_slider, view.state], view.shift_outputs(), api_name="shift", **shift_quiet)
    view.find_btn.click(on_gpu(bind(find_shift, ctx, view)), [view.step_slider, view.state],
                        view.shift_outputs() + [view.candidates], api_name="find_shift", **shift_quiet)
    view.candidates.input(on_gpu(bind(apply_candidate, ctx, view)), [view.candidates, view.step_slider, view.state],
                          view.shift_outputs(), api_visibility="private", **shift_quiet)
