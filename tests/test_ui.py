"""The app's handlers and state without HTTP: settings checks, the typed session, trace import,
the lesson over its recorded examples (assets/lesson), and the bad-input battery through the API."""

import contextlib
import json
import math
from pathlib import Path

import pytest

import mdlm_viz as mv
from ui.session import Session
from ui.settings import LIMITS, UserError, as_number, parse_settings

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "assets" / "lesson"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "abc", "", None, True, [3], {"a": 1}, 2.5, 10**9])
def test_every_number_a_visitor_can_send_gets_a_message_naming_the_field(value):
    with pytest.raises(UserError, match="steps must be"):
        as_number(value, "steps")


def test_settings_accept_numbers_as_text_and_refuse_bad_schedules():
    s = parse_settings("16", 8.0, 8, "low_confidence", "0.5", 0, "7")
    assert (s.gen_length, s.steps, s.temperature, s.seed) == (16, 8, 0.5, 7)
    with pytest.raises(UserError, match="multiple of the number of blocks"):
        parse_settings(16, 7, 8, "low_confidence", 0, 0, 0)
    with pytest.raises(UserError, match="remasking must be one of"):
        parse_settings(16, 8, 8, None, 0, 0, 0)
    assert set(LIMITS) >= {"gen_length", "steps", "block_length", "temperature", "cfg_scale", "seed", "slack_bias"}


def test_recorded_sessions_round_trip_and_replay_without_a_model():
    session = Session.load(LESSON / "shift.json")
    again = Session.from_dict(json.loads(json.dumps(session.to_dict())))
    assert again.prompt == session.prompt and set(again.clean) == set(session.clean) >= {"ce", "ctc"}
    tr = again.clean["ce"]
    assert tr.model == "ce" and tr.token_texts and all(t in tr.token_texts for t in tr.final)
    assert any(d for t in again.shifted.values() for d in t.displacements)  # the recorded shift applied somewhere
    from mdlm_viz import viewer
    html = viewer.canvas_html(tr, len(tr.steps) - 1)  # no tokenizer: the recorded texts
    assert html.count("data-pos=") == tr.gen_length and "#" not in viewer.raw_canvas_text(tr, tr.token_text)


def test_replay_forward_and_back_matches_a_fresh_fold():
    tr = Session.load(LESSON / "shift.json").shifted["ce"]
    replay = tr.replay(0)
    for step in [3, 10, 5, len(tr.steps) - 1, 0]:
        replay.advance_to(step)
        fresh = mv.trace.Replay(tr).advance_to(step)
        assert replay.commits == fresh.commits and replay.moves == fresh.moves


def write(tmp_path, name, content) -> str:
    p = tmp_path / name
    (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    return str(p)


def test_a_trace_upload_replays_and_bad_files_get_a_clear_message(tmp_path):
    from ui.tabs import export

    good = Session.load(LESSON / "shift.json").clean["ctc"]
    assert export.read_trace_upload(write(tmp_path, "t.json", good.to_json())).final == good.final
    broken = json.loads(good.to_json())
    broken["steps"][0]["canvas"] = broken["steps"][0]["canvas"][:-1]
    cases = {"bin.json": (b"\x00\xff\xfe binary", "not UTF-8"),
             "text.json": ("not json at all", "not valid JSON"),
             "list.json": ("[1, 2, 3]", "not a trace"),
             "other.json": ('{"format": "x"}', "not a trace"),
             "fields.json": (json.dumps({**json.loads(good.to_json()), "extra": 1}), "fields do not match"),
             "canvas.json": (json.dumps(broken), "the canvas must hold"),
             "nosteps.json": (json.dumps({**json.loads(good.to_json()), "steps": []}), "records no steps")}
    for name, (content, message) in cases.items():
        with pytest.raises(UserError, match=message):
            export.read_trace_upload(write(tmp_path, name, content))
    with pytest.raises(UserError, match="choose a trace"):
        export.read_trace_upload(None)


def test_the_lesson_pages_load_their_examples_into_the_main_view_with_no_model_call(monkeypatch):
    import gradio as gr

    from ui.models import load_models, model_specs
    from ui.session import AppContext
    from ui.tabs import decode, lesson

    ctx = AppContext(load_models(model_specs(None)))
    with gr.Blocks():
        main = decode.layout(ctx)
        view = lesson.layout()
        with gr.Tabs() as tabs:
            pass

    def no_model(*a, **k):
        raise AssertionError("the lesson ran a model")
    monkeypatch.setattr(decode.SeededDecode, "advance", no_model)
    for i, page in enumerate(lesson.PAGES):
        out = lesson.show_page(ctx, view, main, tabs, i)
        assert out[view.page] == i and page.focus in out[view.focus]
        assert f"page {i + 1} of {len(lesson.PAGES)}" in out[view.text] and "{shift}" not in out[view.text]
        if page.example:
            session = out[main.state]
            assert isinstance(session, Session) and "recorded, no model ran" in out[main.status]
            assert out[main.by_name["ce"].answer] == ctx.models["ce"].decode(session.clean["ce"].response())
    assert lesson.show_page(ctx, view, main, tabs, 99)[view.page] == len(lesson.PAGES) - 1  # clamped


# ---- visitors share forward passes: a batched decode is exactly the solo decode
@pytest.mark.parametrize("remasking, block", [("low_confidence", 8), ("margin", 16), ("entropy", 4)])
def test_decodes_batched_across_visitors_equal_solo_decodes(tiny_checkpoint, tiny_ctc_checkpoint, remasking, block):
    import torch

    from ui.decoding import interleave
    from ui.models import load_models
    from ui.scheduler import BatchedDecode, BatchScheduler
    from ui.session import AppContext

    models = load_models({"ce": str(tiny_checkpoint), "ctc": str(tiny_ctc_checkpoint)})
    ctx = AppContext(models, scheduler=BatchScheduler(window_s=0.2))
    # three lengths (left padding), and a visitor asking for the same decode as the first
    prompts = ["copy : the cat", "the", "copy : the cat sat on the mat the dog", "copy : the cat"]
    visitors = []
    for seed, text in enumerate(prompts):  # the seed does not matter to a greedy decode
        settings = parse_settings(16, 8, block, remasking, 0, 0, seed, 0.0)
        visitors.append({n: ctx.decode(n, models[n].prompt_ids(text), settings) for n in models})
    assert all(isinstance(d, BatchedDecode) for v in visitors for d in v.values())
    for v in visitors:  # each visitor streams its own steps
        events = list(interleave(v))
        assert not any(err for _, _, err in events) and sum(s is not None for _, s, _ in events) == 2 * 8
    assert ctx.scheduler.batches_run == 2  # one batch per model, not one decode per visitor
    assert ctx.scheduler.rows_run == 2 * 3  # the same decode twice is one row
    assert visitors[0]["ce"].trace is not visitors[3]["ce"].trace
    for text, v in zip(prompts, visitors):
        for n, d in v.items():
            lm = models[n]
            solo = mv.generate(lm.model, torch.tensor([lm.prompt_ids(text)]), record_trace=True,
                               **d.settings.sampler_kwargs(lm)).trace
            got = d.trace
            assert got.prompt == solo.prompt
            assert [s.canvas for s in got.steps] == [s.canvas for s in solo.steps]
            assert [(s.positions, s.tokens) for s in got.steps] == [(s.positions, s.tokens) for s in solo.steps]
            for a, b in zip(got.steps, solo.steps):
                assert a.confidences == pytest.approx(b.confidences, abs=1e-5)
            assert [s.canvas for s in d.live.steps] == [s.canvas for s in solo.steps]  # what was streamed


def test_a_visitor_asking_for_a_running_decode_joins_it_and_gets_every_step(tiny_checkpoint):
    import time

    import torch

    from ui.models import load_models
    from ui.scheduler import BatchScheduler
    from ui.session import AppContext

    ctx = AppContext(load_models({"ce": str(tiny_checkpoint)}), scheduler=BatchScheduler(window_s=0.01))
    lm, settings = ctx.models["ce"], parse_settings(16, 8, 8, "low_confidence", 0, 0, 0)
    ids = lm.prompt_ids("copy : the cat")
    ctx.scheduler.slots.acquire()  # hold the worker before its first forward pass
    first = ctx.decode("ce", ids, settings)
    time.sleep(0.2)  # the batch has started and waits for a slot
    late = ctx.decode("ce", ids, settings)
    other = ctx.decode("ce", lm.prompt_ids("the"), settings)  # a new decode cannot join: its own batch
    ctx.scheduler.slots.release()
    for d in (first, late, other):
        while d.advance() is not None:
            pass
    assert ctx.scheduler.batches_run == 2 and ctx.scheduler.rows_run == 2
    solo = mv.generate(lm.model, torch.tensor([ids]), record_trace=True, **settings.sampler_kwargs(lm)).trace
    for d in (first, late):
        assert [s.canvas for s in d.live.steps] == [s.canvas for s in solo.steps]  # streamed: every step
        assert [s.canvas for s in d.trace.steps] == [s.canvas for s in solo.steps]
    assert late.trace is not first.trace


def test_sampling_noise_and_shifts_decode_alone(tiny_checkpoint):
    from ui.decoding import SeededDecode
    from ui.models import load_models
    from ui.session import AppContext

    ctx = AppContext(load_models({"ce": str(tiny_checkpoint)}))
    ids = ctx.models["ce"].prompt_ids("copy : the cat")
    assert isinstance(ctx.decode("ce", ids, parse_settings(16, 8, 8, "low_confidence", 0.7, 0, 1)), SeededDecode)
    assert isinstance(ctx.decode("ce", ids, parse_settings(16, 8, 8, "random", 0, 0, 1)), SeededDecode)
    greedy = parse_settings(16, 8, 8, "low_confidence", 0, 0, 1)
    assert isinstance(ctx.decode("ce", ids, greedy, [mv.Shift(step=1, position=2)]), SeededDecode)
    assert isinstance(ctx.decode("ce", ids, greedy, [mv.RandomShifts(0.1)]), SeededDecode)


def test_comparable_shifts_of_several_visitors_share_a_batch_and_equal_their_solo_runs(tiny_checkpoint):
    import torch

    from ui.decoding import interleave
    from ui.models import load_models
    from ui.scheduler import BatchedDecode, BatchScheduler
    from ui.session import AppContext

    ctx = AppContext(load_models({"ce": str(tiny_checkpoint)}), scheduler=BatchScheduler(window_s=0.2))
    lm, settings = ctx.models["ce"], parse_settings(16, 8, 8, "low_confidence", 0, 0, 0)
    runs = [("copy : the cat", 1), ("the", 3), ("copy : the cat sat on the mat", None), ("copy : the", 0)]
    decodes = [ctx.decode("ce", lm.prompt_ids(t), settings, [mv.ShiftAtCommit(p)] if p is not None else [])
               for t, p in runs]
    assert all(isinstance(d, BatchedDecode) for d in decodes)
    for d in decodes:
        list(interleave({"ce": d}))
    assert ctx.scheduler.batches_run == 1
    assert any(d.trace.displacements for d in decodes)  # a shift applied, in its own row only
    assert not decodes[2].trace.displacements
    for (text, pos), d in zip(runs, decodes):
        shifts = [mv.ShiftAtCommit(pos)] if pos is not None else []
        solo = mv.generate(lm.model, torch.tensor([lm.prompt_ids(text)]), interventions=shifts, record_trace=True,
                           **settings.sampler_kwargs(lm)).trace
        assert [s.canvas for s in d.trace.steps] == [s.canvas for s in solo.steps]
        assert [(x.step, x.source, x.target) for x in d.trace.displacements] == \
            [(x.step, x.source, x.target) for x in solo.displacements]


def test_models_load_behind_the_served_page_and_a_failure_is_said_in_words(tiny_checkpoint, tmp_path):
    import shutil

    from ui.models import ModelInfo
    from ui.session import AppContext

    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    (broken / "model.safetensors").write_bytes((broken / "model.safetensors").read_bytes()[:100])
    locations = {"ce": str(tiny_checkpoint), "bad": str(broken)}
    ctx = AppContext(infos={n: ModelInfo.read(n, w) for n, w in locations.items()})
    assert ctx.names == ["ce", "bad"] and not ctx.ready and "loading the models (0 of 2)" in ctx.readiness()
    assert ctx.infos["ce"].defaults  # the page's settings come from generation_config.json, no weights loaded
    ctx.load_in_background(locations).join()
    assert ctx.settled and not ctx.ready and "could not be read" in ctx.readiness()
    with pytest.raises(UserError, match="could not be loaded"):
        ctx.wait_models(timeout=1)
    good = AppContext(infos={"ce": ModelInfo.read("ce", str(tiny_checkpoint))})
    good.load_in_background({"ce": str(tiny_checkpoint)})
    assert set(good.wait_models(timeout=60)) == {"ce"} and good.ready


def test_streamed_frames_thin_out_when_many_visitors_stream():
    from ui.decoding import FramePacer

    pacer = FramePacer(every_s=0.1, total_per_s=30)
    assert pacer.interval() == 0.1
    with pacer.streaming(), pacer.streaming():
        assert pacer.interval() == 0.1  # two visitors: each still gets ten frames a second
        with contextlib.ExitStack() as stack:
            for _ in range(28):
                stack.enter_context(pacer.streaming())
            assert pacer.active == 30 and pacer.interval() == pytest.approx(1.0)  # 30 frames a second in all
    assert pacer.active == 0


def test_frames_start_a_quarter_second_in_and_not_just_before_the_final_one():
    from ui.decoding import FramePacer

    pacer = FramePacer(every_s=0.1, total_per_s=30, after_s=0.25)
    assert not pacer.due(None, 0.1, 0.5)  # a decode this short shows its result at once
    assert pacer.due(None, 0.3, 0.5)  # 0.3 s to go at this pace
    assert not pacer.due(None, 0.3, 0.9)  # about 0.03 s to go: the final frame comes sooner than the next
    assert not pacer.due(0.05, 1.0, 0.5)  # a frame went out 0.05 s ago
    assert pacer.due(0.1, 1.0, 0.5) and pacer.due(0.1, 1.0, 0.0)  # a model yet to start: no end in sight


def test_recording_the_lesson_writes_examples_that_load_back(tiny_checkpoint, tiny_ctc_checkpoint, tmp_path,
                                                             monkeypatch):
    from ui.models import load_models
    from ui.session import AppContext
    from ui.tabs import lesson

    models = load_models({"ce": str(tiny_checkpoint), "ctc": str(tiny_ctc_checkpoint)})
    monkeypatch.setattr("ui.settings.PRESET_ANSWERS", {"copy : the cat sat on the mat": "the cat sat on the mat"})
    got = lesson.record(AppContext(models), tmp_path)
    assert got["prompt"] == "copy : the cat sat on the mat" and got["found"]
    shift = Session.load(tmp_path / "shift.json")
    assert set(shift.clean) == set(shift.shifted) == {"ce", "ctc"} and "finder reports" in shift.shift
    blocks = Session.load(tmp_path / "blocks.json")
    assert blocks.settings.block_length == shift.settings.gen_length // 2


def test_a_decode_rehides_only_what_the_page_shows_and_resizes_the_slider_only_when_it_changes(tiny_checkpoint):
    """Component properties are the costliest output (Gradio rebuilds the component per session):
    a decode on a fresh page sends none; after a shift it hides the shift views again; a new
    number of steps resizes the step slider."""
    import gradio as gr

    from ui.decoding import FramePacer
    from ui.models import load_models
    from ui.session import AppContext
    from ui.tabs import decode

    # a frame for every step (the app's pacer sends none for a decode this short)
    every_step = FramePacer(every_s=0.0, total_per_s=float("inf"))
    ctx = AppContext(load_models({"ce": str(tiny_checkpoint)}), pacer=every_step)
    with gr.Blocks():
        view = decode.layout(ctx)
    panel = view.by_name["ce"]
    steps = view.step_slider.maximum + 1

    outputs = set(view.run_outputs())

    def run(shown=None, n_steps=steps):
        """The first frame's updates overlaid by the last's; every frame must give every output but
        the state a value (Gradio builds a component for each output left out)."""
        outs = list(decode.run(ctx, view, "copy : the cat", ["ce"], 16, n_steps, 16, "low_confidence", 0, 0, 0, 0.0,
                               shown))
        assert len(outs) > 1 and all(set(out) | {view.state} == outputs for out in outs)
        # the event skips Gradio's postprocessing: every value is one the page takes as it is
        assert all(isinstance(v, (str, int, float, type(None), gr.components.Component)) or k is view.state
                   for out in outs for k, v in out.items())
        later = [c for out in outs[1:-1] for c, v in out.items() if isinstance(v, gr.components.Component)]
        assert not later  # what is hidden stays hidden with plain values
        return {**outs[0], **{k: v for k, v in outs[-1].items() if not isinstance(outs[0].get(k), gr.Component)
                             or isinstance(v, gr.Component)}}, outs[-1][view.state]

    fresh, session = run()
    assert not [c for c, v in fresh.items() if isinstance(v, gr.components.Component)]  # values only
    assert fresh[view.step_slider] == session.last_step == steps - 1
    assert fresh[panel.answer] and fresh[panel.heatmap].startswith("<svg")

    frames = list(decode.run_shift(ctx, view, "random shifts", 0, 0, decode.DIRECTIONS[0], 0.25, steps - 1,
                                   session))
    assert all(set(f) | {view.state} == set(view.shift_outputs()) for f in frames)  # a value for every output
    shifted = frames[-1]
    assert shifted[panel.shifted_heatmap].visible and shifted[view.state].shifted
    again, _ = run(shifted[view.state])
    assert again[panel.shifted_heatmap].visible is False and again[panel.shifted_answer].visible is False
    assert again[panel.difference].visible is False and again[panel.shifted_canvas] == ""
    assert again[view.candidates].visible is False and again[view.shift_status] == ""  # no stale find result

    longer, _ = run(session, n_steps=steps + 4)
    assert isinstance(longer[view.step_slider], gr.Slider) and longer[view.step_slider].maximum == steps + 3


def test_the_page_is_built_from_components_whose_config_is_gradios(tiny_checkpoint):
    """Every block but those Gradio adds (Forms, gr.api's) and gr.HTML comes from ui.components, whose classes
    carry their constructor's signature (computed once) and give Gradio's own config."""
    import inspect

    import gradio as gr

    from ui import components
    from ui.models import load_models
    from ui.page import build_app

    demo = build_app(load_models({"ce": str(tiny_checkpoint)}))
    ours = {cls for cls in vars(components).values() if isinstance(cls, type) and cls.__module__ == components.__name__
            and issubclass(cls, gr.blocks.Block)}
    plain = {type(b).__name__ for b in demo.blocks.values() if type(b) not in ours}
    assert plain <= {"Form", "HTML", "Api"}, plain  # Api: the block gr.api adds for /ready
    for cls in ours:
        gradio_cls = next(c for c in cls.__mro__[1:] if c.__module__.startswith("gradio."))
        assert cls.__init__.__signature__ == inspect.signature(gradio_cls.__init__), cls
    args = dict(value="x", label="a label", elem_id="t", lines=2)
    mine, theirs = components.Textbox(**args, render=False), gr.Textbox(**args, render=False)
    drop = ("component_class_id",)
    assert ({k: v for k, v in mine.get_config().items() if k not in drop}
            == {k: v for k, v in theirs.get_config().items() if k not in drop})
    positional = components.Markdown("## positional", render=False)  # positional arguments reach Gradio's
    assert positional.value == "## positional"
