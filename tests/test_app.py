"""The app over HTTP, as gradio_client sees it: `python app.py` on loopback with tiny checkpoints
(the `app_url` fixture in conftest.py). Settings match the tiny checkpoints: 16 tokens, 8 steps,
blocks of 8."""

import json
from pathlib import Path

import pytest

gradio_client = pytest.importorskip("gradio_client")

import mdlm_viz as mv  # noqa: E402

SETTINGS = dict(gen_length_v=16, steps_v=8, block_v=8, remasking_v="low_confidence", temperature_v=0, cfg_v=0, seed_v=0,
                slack_v=0)


@pytest.fixture
def client(app_url):
    return gradio_client.Client(app_url, verbose=False)  # one client = one session (its own gr.State)


def run(client, prompt="copy : the cat sat", models=("base", "ce", "ctc"), **overrides):
    kw = dict(SETTINGS, **overrides)
    return client.predict(prompt, list(models), *kw.values(), api_name="/run")


def exported_traces(client) -> dict[str, mv.Trace]:
    files = client.predict(api_name="/export")
    return {Path(f).stem.removeprefix("trace_"): mv.Trace.from_json(Path(f)) for f in files if f.endswith(".json")}


def valid_shift(trace: mv.Trace) -> tuple[int, int]:
    """(step, position) of a committed token with a masked right neighbour inside the live region."""
    per_block = trace.steps_total // (trace.gen_length // trace.block_length)
    for st in trace.steps[:-1]:
        hi = (st.index // per_block + 1) * trace.block_length
        for p in range(hi - 1):
            if st.canvas[p] != trace.mask_id and st.canvas[p + 1] == trace.mask_id:
                return st.index, p
    raise AssertionError("no shiftable token in this trace")


def test_a_long_run_streams_its_steps_then_shows_every_model(client):
    # Frames stream once a decode has run a quarter second (a shorter one shows its result at
    # once): 256 steps of three tiny models take longer than that.
    long = dict(SETTINGS, gen_length_v=256, steps_v=256, block_v=256)
    job = client.submit("copy : the cat sat", ["base", "ce", "ctc"], *long.values(), api_name="/run")
    updates = list(job)
    statuses = [u[0] for u in updates if isinstance(u[0], str)]
    streamed = [s for s in statuses if s.startswith("decoding")]
    assert streamed and all("/256" in s for s in streamed), statuses[:3]
    final = job.outputs()[-1]
    assert final[0].startswith("done in ") and "**ctc**: 256 steps" in final[0]
    canvases = [o for o in final if isinstance(o, str) and 'class="mv-canvas"' in o]
    assert len(canvases) == 3 and all(c.count("data-pos=") == 256 for c in canvases)
    assert all("mv-masked" not in c for c in canvases)  # the last step leaves nothing masked


def test_state_carries_across_calls_and_scrubbing_replays_it(client):
    run(client)
    early = client.predict(0, api_name="/show_step")
    canvases = [o for o in early if isinstance(o, str) and "mv-canvas" in o]
    assert len(canvases) == 3 and all('data-step="0"' in c for c in canvases)
    assert all(c.count('data-state="masked"') == 16 - 2 for c in canvases)  # 8 masks / 4 steps of block 0
    other = gradio_client.Client(client.src, verbose=False)  # a new session has no traces
    assert "run a prompt first" in other.predict(3, api_name="/show_step")[0]


def test_the_shift_rerun_differs_from_the_clean_run_exactly_where_the_shift_acts(client):
    run(client, models=("base",))
    clean = exported_traces(client)["base"]
    step, pos = valid_shift(clean)
    status = client.predict("one token", step, pos, "right →", 0.05, step, api_name="/shift")[0]
    assert status.startswith("re-ran") and "⚠" not in status, status
    traces = exported_traces(client)
    shifted = traces["base_shifted"]
    assert [(d.step, d.source, d.target) for d in shifted.displacements] == [(step, pos, pos + 1)]
    for s in range(step):  # same seed: identical until the shift ...
        assert clean.canvas_at(s) == shifted.canvas_at(s)
    moved = [p for p, (a, b) in enumerate(zip(clean.canvas_at(step), shifted.canvas_at(step))) if a != b]
    assert moved == [pos, pos + 1]  # ... which moves one token, nothing else


def test_an_invalid_shift_shows_the_samplers_message(client):
    run(client, models=("base",))
    status = client.predict("one token", 1, 99, "right →", 0.05, 1, api_name="/shift")[0]
    assert "outside the response" in status and "Traceback" not in status
    status = client.predict("one token", 0, 0, "← left", 0.05, 0, api_name="/shift")[0]
    assert "Cannot shift position 0 by -1 after step 0" in status and "Traceback" not in status


def test_random_shifts_rerun_all_models(client):
    run(client)
    status = client.predict("random shifts", 0, 0, "right →", 0.25, 0, api_name="/shift")[0]
    assert status.startswith("re-ran with the random shifts r = 0.25")
    assert {"base_shifted", "ce_shifted", "ctc_shifted"} <= set(exported_traces(client))


@pytest.mark.parametrize("prompt, overrides, expected", [
    ("", {}, "prompt is empty"),
    ("x" * 1001, {}, "limit is 1000"),
    ("copy", {"steps_v": 7}, "multiple of the number of blocks"),
    ("copy", {"block_v": 5}, "multiple of the block length"),
    ("copy", {"gen_length_v": 100000, "block_v": 100000, "steps_v": 8}, "between 1 and 512"),
    ("copy", {"seed_v": -1}, "seed must be between"),
    ("copy", {"steps_v": 0}, "steps must be between 1 and 512"),
    ("copy", {"gen_length_v": 512, "block_v": 512, "steps_v": 8}, "exceeds the model's maximum"),
])
def test_bad_input_returns_a_friendly_message_not_a_traceback(client, prompt, overrides, expected):
    status = run(client, prompt=prompt, **overrides)[0]
    assert expected in status and "Traceback" not in status, status


def test_out_of_range_slider_values_are_refused_with_a_message(client):
    status = run(client, temperature_v=-1)[0]  # the app checks the range, not Gradio: same words as the page
    assert status.startswith("⚠ temperature must be between 0.0 and 5.0"), status
    assert run(client, slack_v="lots")[0].startswith("⚠ slack bias must be")


def test_alignment_and_ce_vs_ctc_panels(client):
    assert "run a prompt with ctc first" in client.predict("ctc", "", "slack", False, api_name="/align")[0]
    run(client)
    status, plot = client.predict("ctc", "", "slack", True, api_name="/align")
    assert status.startswith("log p(target)") and plot is not None
    status, plot = client.predict("ctc", "cat cat", "standard", False, api_name="/align")  # needs a <slack> between
    assert status.startswith("log p(target)") and "'cat cat'" in status
    status, plot = client.predict("100", 1, "slack", 0.1, api_name="/ce_vs_ctc")
    assert "CTC slack" in status and json.loads(plot["plot"])["data"]
    assert "shift position 7" in client.predict("100", 7, "slack", 0.1, api_name="/ce_vs_ctc")[0]


def test_export_writes_traces_and_an_offline_figure_page(client):
    run(client, models=("ctc",))
    files = client.predict(api_name="/export")
    page = next(Path(f) for f in files if f.endswith(".html")).read_text()
    assert "cdn.plot.ly" not in page.split("</script>")[-1] and "Plotly.newPlot" in page
    assert len(page) > 1_000_000  # plotly.js is inlined, the page works offline
    assert mv.Trace.from_json(next(f for f in files if f.endswith(".json"))).steps


def test_a_missing_checkpoint_directory_is_named_before_anything_loads():
    from ui.page import main

    with pytest.raises(SystemExit, match="error: checkpoint directory 'assets/no-such-dir' is missing"):
        main(["--models", "base=tests", "ce=assets/no-such-dir"])


# ---- the app's server-side helpers, without a server
def test_interleaved_decodes_draw_exactly_what_solo_seeded_runs_draw(tiny_checkpoint):
    import torch

    from ui.decoding import SeededDecode, interleave
    from ui.models import load_models
    from ui.settings import parse_settings

    models = load_models({"a": str(tiny_checkpoint), "b": str(tiny_checkpoint)})
    settings = parse_settings(16, 8, 8, "random", 1.0, 0.0, 7)  # sampling noise and random remasking
    ids = models["a"].prompt_ids("copy : the cat")
    kw = settings.sampler_kwargs(models["a"])
    torch.manual_seed(7)
    alone = mv.generate(models["a"].model, torch.tensor([ids]), record_trace=True, **kw).trace
    shift = mv.Shift(*valid_shift(alone), direction=1)
    decodes = {"a": SeededDecode(models["a"], ids, settings),
               "b": SeededDecode(models["b"], ids, settings, [shift])}
    events = list(interleave(decodes))
    assert [n for n, _, err in events[:4]] == ["a", "b", "a", "b"] and not any(e for _, _, e in events)
    torch.manual_seed(7)
    shifted = mv.generate(models["a"].model, torch.tensor([ids]), interventions=[shift], record_trace=True, **kw).trace
    for name, solo in (("a", alone), ("b", shifted)):  # round-robin, yet each drew its own seeded noise
        assert [s.canvas for s in decodes[name].trace.steps] == [s.canvas for s in solo.steps]


def test_checkpoints_come_from_flags_then_the_environment_then_the_assets(monkeypatch):
    from ui.models import ConfigError, checkpoint_location, model_specs, parse_model_specs

    monkeypatch.setenv("MDLM_VIZ_MODELS", "x=/a, y=/b")
    assert model_specs(["ce=runs/ce"]) == {"ce": "runs/ce"}
    assert model_specs(None) == {"x": "/a", "y": "/b"}
    monkeypatch.delenv("MDLM_VIZ_MODELS")
    assert set(model_specs(None)) >= {"base", "ce", "ctc"}
    with pytest.raises(ConfigError, match="NAME=PATH"):
        parse_model_specs(["just-a-path"])
    with pytest.raises(ConfigError, match="'assets/nope' is missing"):
        checkpoint_location("assets/nope")
    assert checkpoint_location("assets/ce").endswith("assets/ce")  # relative to the repository


def test_the_slack_bias_reaches_only_checkpoints_with_a_slack_token(tiny_checkpoint, tiny_ctc_checkpoint):
    from ui.models import load_models
    from ui.settings import UserError, parse_settings

    models = load_models({"ce": str(tiny_checkpoint), "ctc": str(tiny_ctc_checkpoint)})
    settings = parse_settings(16, 8, 8, "low_confidence", 0, 0, 0, 2.0)
    assert settings.sampler_kwargs(models["ctc"])["slack_bias"] == 2.0
    assert "slack_bias" not in settings.sampler_kwargs(models["ce"])  # the sampler would refuse it
    with pytest.raises(UserError, match="slack bias must be between -10.0 and 10.0"):
        parse_settings(16, 8, 8, "low_confidence", 0, 0, 0, 99)


def test_find_a_revealing_shift_applies_the_best_and_lists_the_others(client):
    run(client)
    out = client.predict(0, api_name="/find_shift")
    status = out[0]
    assert status.startswith(("found", "no shift", "the clean answer")), status
    traces = exported_traces(client)
    assert set(traces) >= {"ce", "ctc"}
    shifted = {n: t for n, t in traces.items() if n.endswith("shifted")}
    # the shifted runs exist for every model and at least the CE one moved a token as it landed
    assert shifted and any(t.displacements for t in shifted.values())


def test_the_finder_needs_a_decode_and_both_kinds_of_model(client):
    out = client.predict(0, api_name="/find_shift")
    assert "decode a prompt first" in out[0]
    run(client, models=("base", "ce"))
    out = client.predict(0, api_name="/find_shift")
    assert "one with it (CTC)" in out[0]


# ---- the bad-input battery: every public endpoint answers with the app's message, never Gradio's
BAD_VALUES = ["NaN", "inf", "abc", None, -5, 10**12, 2.5]  # JSON has no NaN: clients send null or text


@pytest.mark.parametrize("field", ["gen_length_v", "steps_v", "block_v", "seed_v"])
def test_run_answers_every_bad_number_with_a_message(client, field):
    for value in BAD_VALUES:
        status = run(client, **{field: value})[0]
        assert status.startswith("⚠") and "Traceback" not in status, (field, value, status)


def test_every_endpoint_answers_bad_values_with_a_message(client):
    assert run(client, prompt=None)[0].startswith("⚠")
    assert run(client, models=("nobody",))[0].startswith("⚠ unknown model")
    assert run(client, remasking_v="best")[0].startswith("⚠ remasking must be one of")
    run(client)
    for value in BAD_VALUES[:4]:
        assert client.predict("one token", value, 0, "right →", 0.05, 0, api_name="/shift")[0].startswith("⚠")
        assert client.predict("one token", 0, 0, "sideways", 0.05, 0, api_name="/shift")[0].startswith("⚠")
        if value is not None:  # the step slider: no step is step 0
            assert client.predict("one token", 0, 0, "right →", 0.05, value, api_name="/shift")[0].startswith("⚠")
        shown = client.predict(value, api_name="/show_step")
        if value is None:  # no step: the first one is shown
            assert 'data-step="0"' in shown[1], shown[0]
        else:
            assert shown[0].startswith("⚠ step must be"), shown[0]
        status = client.predict(value, 1, "slack", 0.1, api_name="/ce_vs_ctc")[0]  # any text is a target
        assert status.startswith("⚠ the target is empty" if value is None else "prediction"), status
        assert client.predict("100", value, "slack", 0.1, api_name="/ce_vs_ctc")[0].startswith("⚠")
    assert client.predict("nobody", "", "slack", False, api_name="/align")[0].startswith("⚠ unknown model")
    assert client.predict("ctc", "", "merge", False, api_name="/align")[0].startswith("⚠ collapse map must be")
    assert "page 1 of" in client.predict(api_name="/lesson_start")[0]  # the lesson needs no decode
    assert run(client)[0].startswith("done")  # and the server still answers


def test_simultaneous_visitors_all_finish_with_their_solo_answers(client):
    prompts = ["copy : the cat sat", "the", "copy : the dog", "copy : the cat sat on the mat"] * 2
    solo = {p: run(client, prompt=p) for p in set(prompts)}
    visitors = [gradio_client.Client(client.src, verbose=False) for _ in prompts]  # one session each
    jobs = [v.submit(p, ["base", "ce", "ctc"], *SETTINGS.values(), api_name="/run") for v, p in zip(visitors, prompts)]
    for p, job in zip(prompts, jobs):
        final = job.result(timeout=120)
        assert final[0].startswith("done"), final[0]
        answers = [o for o in final[1:] if isinstance(o, str) and "mv-canvas" not in o]  # [0]: the status, timed
        assert answers == [o for o in solo[p][1:] if isinstance(o, str) and "mv-canvas" not in o]


def test_ready_says_whether_the_models_are_loaded(client):
    """`/ready`: a classroom tool waits on it before `/run` (and it opens the session, as a page load does)."""
    import time

    state = client.predict(api_name="/ready")
    for _ in range(120):  # the models load behind the served page
        if state["ready"]:
            break
        assert "loading the models" in state["status"], state
        time.sleep(0.5)
        state = client.predict(api_name="/ready")
    assert state["ready"] is True and state["models"] == ["base", "ce", "ctc"], state
    assert "Decode" in state["status"]
