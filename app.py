"""mdlm-viz: watch masked diffusion LMs decode, side by side, and shift a token to see who recovers.

A thin Gradio UI over the library: decoding (`mdlm_viz.stream`), interventions (`Shift`,
`RandomShifts`), what to draw (`mdlm_viz.viewer`) and the figures (`mdlm_viz.figures`).

    python app.py                                   # assets/base, assets/ce, assets/ctc on 127.0.0.1:7860
    python app.py --models ce=runs/ce/best ctc=runs/ctc/best --port 7861
    MDLM_VIZ_MODELS="base=assets/base,ce=assets/ce" python app.py

Checkpoints are chosen on the server only (flags or MDLM_VIZ_MODELS): the page lists their names,
and nothing a visitor types becomes a path. Remote code is never loaded (see checkpoint.py).
"""

import argparse
import functools
import html
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry: nothing leaves the machine
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402

import mdlm_viz as mv  # noqa: E402
from mdlm_viz import ctc, figures, reveal, viewer  # noqa: E402

try:  # Hugging Face ZeroGPU Spaces: borrow a GPU per call; elsewhere a no-op
    import spaces

    on_gpu = spaces.GPU
except ImportError:
    def on_gpu(fn):
        return fn

# Gradio is imported where the page is built, not here: a bad --models fails in a second, and
# the pure helpers below can be imported (tests, bench) without Gradio's start-up cost.
ROOT = Path(__file__).resolve().parent
REQUIRED_MODELS = {"base": "assets/base", "ce": "assets/ce", "ctc": "assets/ctc"}
OPTIONAL_MODELS = {"ctc-standard": "assets/ctc-standard"}
ROBUSTNESS_JSON = ROOT / "assets" / "eval" / "robustness.json"
MAX_PROMPT_CHARS = 1000
MAX_MODELS = 4
# (prompt, exact answer or None): held-out prompts of the trained families, so the finder can say
# whether a clean answer is right. tests/test_assets.py checks each exact one is demo-able.
PRESET_PAIRS = [
    ("Repeat exactly: 700 8888 62", "700 8888 62"),
    ("Sort: 10 5 22", "5 10 22"),
    ("Reverse the order: 0 0 0 5 8 0", "0 8 5 0 0 0"),
    ("What number is five hundred ten?", "510"),
    ("92 - 90 =", "2"),
    ("How many items are in this list: yard frog key boat?", "4"),
    ("What is the meaning of the noun letter?", None),
    ("What is an operating system?", None),
]
PRESETS = [p for p, _ in PRESET_PAIRS]
PRESET_ANSWERS = {p: a for p, a in PRESET_PAIRS if a is not None}
REMASKING = ("low_confidence", "random", "margin", "entropy")
# Inclusive ranges of the settings a visitor may choose: small enough to keep a run interactive.
LIMITS = {"gen_length": (1, 512), "steps": (1, 512), "block_length": (1, 512), "temperature": (0.0, 5.0),
          "cfg_scale": (0.0, 10.0), "seed": (0, 2**31 - 1), "slack_bias": (-10.0, 10.0)}
STREAM_EVERY_S = 0.1  # at most ~10 page updates a second while decoding
DEVICE_LOCK = threading.Lock()  # one forward pass at a time: fair interleaving, deterministic RNG


class UserError(ValueError):
    """A problem with what the visitor asked for; its message is shown on the page."""


# ----------------------------------------------------------------------------- models
@dataclass
class LoadedModel:
    name: str
    model: object
    tokenizer: object
    facts: mv.DecodingFacts

    @functools.cached_property
    def token_text(self):
        return functools.lru_cache(maxsize=None)(lambda i: self.tokenizer.decode([int(i)], skip_special_tokens=False))

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def prompt_ids(self, text: str) -> list[int]:
        if getattr(self.tokenizer, "chat_template", None):
            ids = self.tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                                     tokenize=True, return_dict=False)
            return list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        return list(self.tokenizer(text)["input_ids"])

    def slack_id(self) -> int | None:
        """The checkpoint's <slack> id, or the tokenizer's when the checkpoint never trained with it."""
        if self.facts.slack_id is not None:
            return self.facts.slack_id
        tid = self.tokenizer.convert_tokens_to_ids("<slack>")
        vocab = self.model.get_input_embeddings().weight.shape[0]
        return tid if isinstance(tid, int) and tid != self.tokenizer.unk_token_id and 0 <= tid < vocab else None

    def describe(self) -> str:
        kind = self.facts.objective or "objective not recorded"
        slack = f", &lt;slack&gt; with the {self.facts.collapse} collapse" if self.facts.slack_id is not None else ""
        return f"{kind}{slack}"


def parse_model_specs(specs) -> dict[str, str]:
    """["name=path", ...] or "name=path,name=path" -> {name: path}."""
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise SystemExit(f"--models expects NAME=PATH entries, got {spec!r}")
        out[name.strip()] = path.strip()
    if len(out) > MAX_MODELS:
        raise SystemExit(f"at most {MAX_MODELS} models side by side, got {len(out)}")
    return out


def model_specs(cli_models) -> dict[str, str]:
    """Which checkpoints to serve: --models, else $MDLM_VIZ_MODELS, else the embedded assets."""
    if cli_models:
        return parse_model_specs(cli_models)
    if os.environ.get("MDLM_VIZ_MODELS"):
        return parse_model_specs(os.environ["MDLM_VIZ_MODELS"])
    specs = dict(REQUIRED_MODELS)
    specs.update({k: v for k, v in OPTIONAL_MODELS.items() if (ROOT / v).is_dir()})
    return specs


def checkpoint_location(path: str) -> str:
    """A local directory (relative to the repo if not found as given), or "hub:owner/name"."""
    if path.startswith("hub:"):
        return path[4:]
    for candidate in (Path(path), ROOT / path):
        if candidate.is_dir():
            return str(candidate)
    raise SystemExit(
        f"checkpoint directory {path!r} is missing. Train the embedded models (see README, issue #4), or point "
        f"the app at other checkpoints: python app.py --models NAME=PATH ... (or MDLM_VIZ_MODELS=NAME=PATH,...)."
    )


def load_models(specs: dict[str, str], load_in_4bit: bool = False) -> dict[str, LoadedModel]:
    locations = {name: checkpoint_location(path) for name, path in specs.items()}  # fail before loading any
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float32 if device == "cpu" else None
    models = {}
    for name, where in locations.items():
        ck = mv.load_checkpoint(where, device=device, dtype=dtype, load_in_4bit=load_in_4bit)
        if ck.tokenizer is None:
            raise SystemExit(f"checkpoint {where!r} has no tokenizer files")
        models[name] = LoadedModel(name, ck.model, ck.tokenizer, ck.facts)
    return models


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class DecodeSettings:
    gen_length: int
    steps: int
    block_length: int
    remasking: str
    temperature: float
    cfg_scale: float
    seed: int
    slack_bias: float = 0.0  # CTC checkpoints only: lowers <slack>'s logit (0 = the paper's decoding)

    def sampler_kwargs(self, lm: LoadedModel) -> dict:
        kw = dict(steps=self.steps, gen_length=self.gen_length, block_length=self.block_length,
                  remasking=self.remasking, temperature=self.temperature, cfg_scale=self.cfg_scale)
        kw.update({k: lm.facts.defaults[k] for k in ("logits_eos_inf", "confidence_eos_eot_inf")
                   if k in lm.facts.defaults})
        kw.update(lm.facts.sampler_kwargs())
        if lm.facts.slack_id is not None:
            kw["slack_bias"] = self.slack_bias
        return kw


def as_number(value, name: str, kind=int):
    lo, hi = LIMITS[name]
    try:
        number = kind(value)
        if kind is int and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        raise UserError(f"{name} must be {'a whole number' if kind is int else 'a number'}, got {value!r}") from None
    if not lo <= number <= hi:
        raise UserError(f"{name} must be between {lo} and {hi}, got {value}")
    return number


def parse_settings(gen_length, steps, block_length, remasking, temperature, cfg_scale, seed,
                   slack_bias=0.0) -> DecodeSettings:
    """Visitor settings -> DecodeSettings, or a UserError saying what to change."""
    s = DecodeSettings(as_number(gen_length, "gen_length"), as_number(steps, "steps"),
                       as_number(block_length, "block_length"), remasking,
                       as_number(temperature, "temperature", float), as_number(cfg_scale, "cfg_scale", float),
                       as_number(seed, "seed"), as_number(slack_bias, "slack_bias", float))
    if s.remasking not in REMASKING:
        raise UserError(f"remasking must be one of {', '.join(REMASKING)}")
    if s.gen_length % s.block_length:
        raise UserError(f"generation length ({s.gen_length}) must be a multiple of the block length ({s.block_length})")
    blocks = s.gen_length // s.block_length
    if s.steps % blocks:
        raise UserError(f"steps ({s.steps}) must be a multiple of the number of blocks ({blocks} = generation "
                        f"length / block length)")
    if s.steps > s.gen_length:
        raise UserError(f"steps ({s.steps}) must not exceed the generation length ({s.gen_length})")
    return s


def check_prompt(prompt, max_chars: int = MAX_PROMPT_CHARS) -> str:
    prompt = (prompt or "").strip()
    if not prompt:
        raise UserError("the prompt is empty: type a question or pick a preset")
    if len(prompt) > max_chars:
        raise UserError(f"the prompt has {len(prompt)} characters; the limit is {max_chars}")
    return prompt


# ----------------------------------------------------------------------------- decoding
class SeededDecode:
    """One model's decode, advanced a step at a time; its RNG state travels with it, so decodes
    interleaved with other models (or other visitors) draw exactly what a solo
    `torch.manual_seed(seed); mv.generate(...)` would."""

    def __init__(self, lm: LoadedModel, prompt_ids: list[int], settings: DecodeSettings, interventions=()):
        self.lm, self.prompt_ids, self.settings = lm, prompt_ids, settings
        kw = settings.sampler_kwargs(lm)
        self.stream = mv.stream(lm.model, torch.tensor([prompt_ids]), interventions=list(interventions), **kw)
        self.steps = iter(self.stream)
        self.rng = None  # (cpu, cuda) states after the last step; None: seed on first use
        self.live = mv.Trace(prompt=prompt_ids, gen_length=settings.gen_length, steps_total=settings.steps,
                             block_length=settings.block_length, mask_id=lm.facts.mask_id, settings={},
                             eos_id=lm.facts.eos_id, slack_id=lm.facts.slack_id, collapse=kw.get("collapse"))

    def advance(self) -> mv.Step | None:
        """Run one step; None when the decode is over (then `.trace` is the recorded Trace)."""
        with DEVICE_LOCK:
            if self.rng is None:
                torch.manual_seed(self.settings.seed)
            else:
                torch.set_rng_state(self.rng[0])
                if self.rng[1] is not None:
                    torch.cuda.set_rng_state(self.rng[1])
            try:
                with torch.inference_mode():
                    step = next(self.steps)
            except StopIteration:
                return None
            finally:
                self.rng = (torch.get_rng_state(), torch.cuda.get_rng_state() if torch.cuda.is_available() else None)
        self.live.steps.append(step)
        return step

    @property
    def trace(self) -> mv.Trace:
        return self.stream.result.trace


def interleave(decodes: dict[str, SeededDecode]):
    """Round-robin over the decodes, yielding (name, Step | None when done, error message | None)."""
    pending = dict(decodes)
    while pending:
        for name in list(pending):
            try:
                step = pending[name].advance()
            except ValueError as err:  # the sampler explains what is wrong (settings, shift, length)
                del pending[name]
                yield name, None, str(err)
                continue
            if step is None:
                del pending[name]
            yield name, step, None


# ----------------------------------------------------------------------------- the revealing-shift finder
MAX_FINDER_SHIFTS = 24  # answer positions tried (one batched decode per model)


@dataclass
class Found:
    best: int  # the answer position whose ShiftAtCommit is applied
    choices: list[tuple[str, int]]  # the next candidates: (label, position)
    message: str


def finder_roles(names, models: dict[str, LoadedModel]) -> tuple[str, str]:
    """The CE-side and CTC-side models among `names`: 'ce' and 'ctc' when present, else the first
    without and the first with a <slack> token."""
    plain = [n for n in names if models[n].facts.slack_id is None]
    slack = [n for n in names if models[n].facts.slack_id is not None]
    if not plain or not slack:
        raise UserError("the finder compares a model without <slack> (CE) and one with it (CTC): decode with both "
                        "ticked")
    return ("ce" if "ce" in plain else plain[0]), ("ctc" if "ctc" in slack else slack[0])


def find_revealing(models: dict[str, LoadedModel], state: dict | None, answers: dict[str, str]) -> Found:
    """Try `ShiftAtCommit(p)` at every position p of the CE model's clean answer in both roles'
    models (greedy, batched: the same decode the app then replays), rank them (CE's answer
    broken, CTC's intact, then CE's edit distance) and explain what was found."""
    if not state or not state.get("clean"):
        raise UserError("decode a prompt first: the finder shifts tokens of that decode")
    base, cand = finder_roles(list(state["clean"]), models)
    settings = DecodeSettings(**state["settings"])
    answer = answers.get(state["prompt"])
    text = viewer.response_text(state["clean"][base], models[base].decode)
    n = len(models[base].tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0
    positions = list(range(min(n, MAX_FINDER_SHIFTS, settings.gen_length)))
    if not positions:
        raise UserError(f"{base}'s answer is empty: there is no token to shift")
    result = reveal.PromptResult(state["prompt"], "", answer, {}, {}, [reveal.ShiftResult(p, {}) for p in positions])
    for name in (base, cand):
        lm = models[name]
        with DEVICE_LOCK, torch.inference_mode():
            rows, _ = reveal.decode_rows(lm.model, lm.tokenizer, lm.facts, [state["prompt_ids"][name]] * (1 + len(positions)),
                                          [None, *positions], settings.sampler_kwargs(lm))
        result.clean[name] = rows[0]
        for shift, row in zip(result.shifts, rows[1:]):
            shift.runs[name] = row
    ranked = reveal.rank_shifts(result, base, cand)
    if not ranked:
        raise UserError(f"no shift applies in both {base} and {cand}: every answer token's right neighbour was "
                        "already committed when it landed. Try a longer answer.")
    wrong = [n for n in (base, cand) if answer is not None and result.clean[n].text != answer]
    best = ranked[0]
    revealing = not reveal.intact(result, best, base) and reveal.intact(result, best, cand)
    if wrong:
        message = (f"the clean answer of {' and '.join(wrong)} is already wrong (expected {answer!r}), so a shift has "
                   "nothing to break; showing the shift that changes the most.")
    elif revealing:
        count = sum(not reveal.intact(result, s, base) and reveal.intact(result, s, cand) for s in ranked)
        message = (f"found: the token that lands at position {best.position} moved one place right breaks {base}'s "
                   f"answer ({best.runs[base].text!r}) while {cand} absorbs it ({best.runs[cand].text!r}). "
                   f"{count} of {len(ranked)} shifts tried reveal this.")
    else:
        message = (f"no shift of the {len(ranked)} tried breaks {base} while {cand} stays intact; showing the one "
                   "that changes the most.")
    choices = [(f"position {s.position}: {base} {s.runs[base].text!r} · {cand} {s.runs[cand].text!r}", s.position)
               for s in ranked[:6]]
    return Found(best.position, choices, message)


# ----------------------------------------------------------------------------- the page
@dataclass
class Panel:
    """Components of one model's column (Gradio components)."""

    name: str
    canvas: object
    answer: object
    raw: object
    heatmap: object
    shifted_canvas: object
    shift_summary: object
    shifted_answer: object
    shifted_heatmap: object


PICK_JS = """
element.addEventListener('click', (e) => {
  const tok = e.target.closest('[data-pos]');
  if (tok) trigger('click', {pos: Number(tok.dataset.pos)});
});
"""

# Left / right arrow keys step the replay (not while typing in a field).
KEYS_JS = """
() => {
  document.addEventListener('keydown', (e) => {
    const t = e.target, typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable);
    if (typing || e.altKey || e.ctrlKey || e.metaKey) return;
    const id = e.key === 'ArrowRight' ? 'step-next' : e.key === 'ArrowLeft' ? 'step-prev' : null;
    const btn = id && document.getElementById(id);
    if (btn) { e.preventDefault(); btn.click(); }
  });
}
"""

PAGE_CSS = viewer.CANVAS_CSS + """
.mv-error { color: #8b2500; font-family: system-ui, sans-serif; }
"""

INTRO = """# mdlm-viz: how masked diffusion LMs decode
Each model starts from a fully masked answer and commits a few tokens per step, never revising
them. Run a prompt, then scrub or play the steps. Click a token to pick it, and re-run the same
decode with that token moved one position: cross-entropy models cascade; CTC models trained with
`<slack>` absorb the shift. Hover a token for its confidence and the model's top candidates."""


def message_html(text: str) -> str:
    return f'<div class="mv-error">⚠ {html.escape(text)}</div>'


def build_app(models: dict[str, LoadedModel], max_prompt_chars: int = MAX_PROMPT_CHARS):
    """The gr.Blocks page over already loaded models."""
    import gradio as gr

    names = list(models)
    first = models[names[0]].facts.defaults
    defaults = dict(gen_length=first.get("gen_length", 64), steps=first.get("steps", 64),
                    block_length=first.get("block_length", 32))

    def heatmap(lm: LoadedModel, trace, title):
        fig = figures.commit_heatmap(trace, token_text=lm.token_text, title=title)
        fig.update_layout(height=320)
        return fig

    def render_step(panel: Panel, state, step: int) -> dict:
        """Both canvases of one model at `step`, from the recorded traces (no model call)."""
        out = {}
        lm, clean = models[panel.name], state["clean"].get(panel.name)
        if clean is not None:
            out[panel.canvas] = viewer.canvas_html(clean, step, lm.token_text, caption=f"after step {step}",
                                                   shiftable=viewer.shiftable_at(clean, step))
        shifted = state.get("shifted", {}).get(panel.name)
        if shifted is not None and clean is not None:
            diff = viewer.differing_positions(clean.canvas_at(step), shifted.canvas_at(step))
            out[panel.shifted_canvas] = viewer.canvas_html(shifted, step, lm.token_text, differs=diff,
                                                           caption=f"with the shift, after step {step}")
        return out

    # delete_cache: Gradio's copies of exported files go after a day.
    with gr.Blocks(title="mdlm-viz", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        state = gr.State(None)
        gr.Markdown(INTRO)
        gr.HTML(viewer.legend_html(), js_on_load=None)
        with gr.Row():
            preset = gr.Dropdown(PRESETS, label="preset prompts", value=None, scale=1)
            prompt = gr.Textbox(PRESETS[0], label="prompt", lines=1, max_lines=4, scale=3)
        with gr.Row():
            chosen = gr.CheckboxGroup(names, value=names, label="models (same prompt, settings and seed)", scale=3)
            run_btn = gr.Button("Decode", variant="primary", scale=1)
        with gr.Accordion("Decoding settings", open=False):
            with gr.Row():
                gen_length = gr.Number(defaults["gen_length"], label="generation length", precision=0)
                steps = gr.Number(defaults["steps"], label="steps", precision=0)
                block_length = gr.Number(defaults["block_length"], label="block length", precision=0)
                seed = gr.Number(0, label="seed", precision=0)
            with gr.Row():
                remasking = gr.Dropdown(list(REMASKING), value="low_confidence", label="remasking")
                temperature = gr.Slider(*LIMITS["temperature"], value=0, step=0.05, label="temperature")
                cfg_scale = gr.Slider(*LIMITS["cfg_scale"], value=0, step=0.1, label="CFG scale")
                slack_bias = gr.Slider(*LIMITS["slack_bias"], value=0, step=0.5, label="slack bias (CTC models)",
                                       info="lowers <slack>'s logit: 0 decodes as in the paper, higher commits "
                                            "fewer <slack> where the model is unsure of the content")
        status = gr.Markdown("Pick a prompt and press **Decode**.", elem_id="status")
        with gr.Row():
            play_btn = gr.Button("▶ Play", scale=0, min_width=80)
            pause_btn = gr.Button("Pause", scale=0, min_width=80)
            prev_btn = gr.Button("Step −1", scale=0, min_width=80, elem_id="step-prev")
            next_btn = gr.Button("Step +1", scale=0, min_width=80, elem_id="step-next")
            speed = gr.Slider(1, 20, value=4, step=1, label="steps / second", scale=1)
            step_slider = gr.Slider(0, max(defaults["steps"] - 1, 1), value=0, step=1, label="step", scale=4,
                                    elem_id="step-slider")
        timer = gr.Timer(0.25, active=False)

        with gr.Accordion("Inject a shift", open=True):
            gr.Markdown("Move one committed token by one position right after a step (click a token in a canvas "
                        "to pick it at the step shown), or displace a fraction *r* of the tokens at random. "
                        "The same decode is re-run with the same seed, so the two runs pair up.")
            with gr.Row():
                shift_mode = gr.Radio(["one token", "random shifts"], value="one token", label="intervention")
                shift_step = gr.Number(0, label="after step", precision=0, elem_id="shift-step")
                shift_pos = gr.Number(0, label="position", precision=0, elem_id="shift-pos")
                direction = gr.Radio(["right →", "← left"], value="right →", label="direction")
                strength = gr.Slider(0, 0.25, value=0.05, step=0.01, label="random strength r")
                shift_btn = gr.Button("Re-run with the shift", variant="primary")
            with gr.Row():
                find_btn = gr.Button("Find a revealing shift", variant="primary", elem_id="find-shift", scale=0,
                                     min_width=240)
                candidates = gr.Radio([], label="other shifts found (click to apply)", visible=False,
                                      elem_id="shift-candidates", scale=3)
            shift_status = gr.Markdown("", elem_id="shift-status")

        panels: list[Panel] = []
        with gr.Row(equal_height=False, elem_id="panels"):
            for name in names:
                with gr.Column(min_width=280):
                    gr.Markdown(f"### {name}\n<small>{models[name].describe()}</small>")
                    canvas = gr.HTML(message_html("not run yet"), js_on_load=PICK_JS, elem_id=f"canvas-{name}",
                                     elem_classes=["mv-canvas-box"])
                    with gr.Row():
                        answer = gr.Textbox(label="answer (<slack> stripped)", interactive=False, lines=2,
                                            elem_id=f"answer-{name}")
                        raw = gr.Textbox(label="raw canvas", interactive=False, lines=2)
                    hm = gr.Plot(label="commit step × position", elem_id=f"heatmap-{name}")
                    shifted_canvas = gr.HTML("", js_on_load=PICK_JS, elem_id=f"shifted-{name}")
                    summary = gr.Markdown("")
                    shifted_answer = gr.Textbox(label="answer with the shift", interactive=False, lines=2,
                                                visible=False, elem_id=f"shifted-answer-{name}")
                    shifted_hm = gr.Plot(label="with the shift: commit step × position", elem_id=f"sheatmap-{name}",
                                         visible=False)
                    panels.append(Panel(name, canvas, answer, raw, hm, shifted_canvas, summary, shifted_answer,
                                        shifted_hm))

        with gr.Tab("Divergence"):
            edit_plot = gr.Plot(label="divergence per step", elem_id="edit-distance")

        with gr.Tab("CTC alignment"):
            gr.Markdown("The CTC posterior of a target over a model's output positions, using the model's "
                        "distributions at the step each position was committed. Leave the target empty to align "
                        "the model's own answer; try `100` with both collapse maps: the standard map merges the "
                        "two 0s, so an alignment of 1 0 0 needs a <slack> between them.")
            with gr.Row():
                align_model = gr.Dropdown(names, value=names[-1], label="model")
                align_target = gr.Textbox("", label="target text (empty: the model's own answer)")
                align_collapse = gr.Radio(list(ctc.COLLAPSE_MAPS), value="slack", label="collapse map")
                align_log = gr.Checkbox(False, label="log scale")
                align_btn = gr.Button("Align")
            align_status = gr.Markdown("")
            align_plot = gr.Plot(label="alignment", elem_id="alignment")

        with gr.Tab("Why CE punishes a shift"):
            gr.Markdown("A prediction that is right except that everything from one position on landed one place "
                        "to the right. Position-wise cross-entropy charges every position after the shift; CTC "
                        "sums over alignments, so a <slack> in the hole costs almost nothing (near-one-hot "
                        "predictions: probability 1 − ε on the predicted token). Try `100` at position 1: the "
                        "standard collapse merges the two 0s, the slack collapse does not.")
            with gr.Row():
                ce_target = gr.Textbox("1234567", label="target (characters, or words if it has spaces)")
                ce_pos = gr.Number(2, label="shift at position", precision=0)
                ce_fill = gr.Radio(["slack", "repeat"], value="slack", label="the vacated place holds")
                ce_eps = gr.Slider(0.01, 0.5, value=0.1, step=0.01, label="ε")
                ce_btn = gr.Button("Compare")
            ce_status = gr.Markdown("")
            ce_plot = gr.Plot(label="CE vs CTC", elem_id="ce-vs-ctc")

        with gr.Tab("Robustness"):
            robust_fig, robust_msg = robustness_view()
            gr.Plot(robust_fig, label="robustness", visible=robust_fig is not None)
            gr.Markdown(robust_msg, elem_id="robustness-table")

        with gr.Tab("Export"):
            gr.Markdown("Download the recorded traces (JSON, `mdlm_viz.Trace.from_json` reads them back) and the "
                        "figures as a self-contained HTML page (plotly inlined, works offline).")
            export_btn = gr.Button("Export traces and figures")
            export_files = gr.File(label="downloads", file_count="multiple", interactive=False)

        all_panel_outputs = [c for p in panels for c in (p.canvas, p.answer, p.raw, p.heatmap, p.shifted_canvas,
                                                         p.shift_summary, p.shifted_answer, p.shifted_heatmap)]
        by_name = {p.name: p for p in panels}

        def stream_frames(decodes, canvas_of, status_comp, label, pending):
            """Page updates while `decodes` run, at most one per STREAM_EVERY_S (frames without
            tooltips); returns {model: error message} and the updates not sent yet."""
            errors, last = {}, 0.0
            for n, step, err in interleave(decodes):
                if err is not None:
                    errors[n] = err
                    pending[canvas_of(by_name[n])] = message_html(err)
                elif step is not None:
                    where = f"step {step.index + 1}/{decodes[n].settings.steps}"
                    pending[canvas_of(by_name[n])] = viewer.canvas_html(
                        decodes[n].live, step.index, models[n].token_text, caption=f"{label}{where}", hover=False)
                    pending[status_comp] = f"{label}**{n}** {where}"
                if pending and time.perf_counter() - last >= STREAM_EVERY_S:  # an empty dict is not an update
                    yield pending
                    last, pending = time.perf_counter(), {}
            return errors, pending

        def problems_of(errors: dict) -> str:
            text = " ".join(f"⚠ {n}: {e}" for n, e in errors.items())
            if text:
                gr.Warning(text)
            return text

        def hidden_shift_views(panel) -> dict:
            return {panel.shifted_canvas: "", panel.shift_summary: "",
                    panel.shifted_answer: gr.Textbox(value="", visible=False),
                    panel.shifted_heatmap: gr.Plot(value=None, visible=False)}

        # ---- decoding theatre
        @on_gpu
        def run(prompt_text, chosen_names, gen_length_v, steps_v, block_v, remasking_v, temperature_v, cfg_v, seed_v,
                slack_v=0.0):
            try:
                text = check_prompt(prompt_text, max_prompt_chars)
                settings = parse_settings(gen_length_v, steps_v, block_v, remasking_v, temperature_v, cfg_v, seed_v,
                                          slack_v)
                run_names = [n for n in names if n in (chosen_names or [])]
                if not run_names:
                    raise UserError("choose at least one model")
            except UserError as err:
                gr.Warning(str(err))
                yield {status: f"⚠ {err}"}
                return
            decodes = {n: SeededDecode(models[n], models[n].prompt_ids(text), settings) for n in run_names}
            cleared = {edit_plot: None}
            for p in panels:
                cleared.update({p.heatmap: None, p.answer: "", p.raw: "", **hidden_shift_views(p)})
                if p.name not in run_names:
                    cleared[p.canvas] = message_html("not run (unticked)")
            errors, final = yield from stream_frames(decodes, lambda p: p.canvas, status, "decoding… ", cleared)
            traces = {n: d.trace for n, d in decodes.items() if n not in errors}
            new_state = {"prompt": text, "settings": asdict(settings), "clean": traces, "shifted": {}, "shift": None,
                         "prompt_ids": {n: decodes[n].prompt_ids for n in traces}}
            for n, tr in traces.items():
                lm, panel = models[n], by_name[n]
                final.update(render_step(panel, new_state, settings.steps - 1))
                final[panel.answer] = viewer.response_text(tr, lm.decode)
                final[panel.raw] = viewer.raw_canvas_text(tr, lm.token_text)
                final[panel.heatmap] = heatmap(lm, tr, f"{n}: commit step")
            done = ", ".join(f"**{n}**: {len(tr.steps)} steps" for n, tr in traces.items())
            final[status] = f"done. {done} {problems_of(errors)}".strip()
            final[state] = new_state
            final[step_slider] = gr.Slider(minimum=0, maximum=max(settings.steps - 1, 1), value=settings.steps - 1)
            yield final

        run_outputs = [status, state, step_slider, edit_plot] + all_panel_outputs
        run_inputs = [prompt, chosen, gen_length, steps, block_length, remasking, temperature, cfg_scale, seed,
                      slack_bias]
        run_btn.click(run, run_inputs, run_outputs, api_name="run")
        prompt.submit(run, run_inputs, run_outputs, api_visibility="private")
        preset.change(lambda p: p or gr.skip(), preset, prompt, api_visibility="private")

        # ---- playback: everything below replays the recorded traces
        def show_step(step_v, state_v):
            if not state_v:
                return {status: "run a prompt first"}
            step_i = int(min(max(0, step_v or 0), state_v["settings"]["steps"] - 1))
            out = {}
            for p in panels:
                out.update(render_step(p, state_v, step_i))
            return out

        canvas_outputs = [status] + [c for p in panels for c in (p.canvas, p.shifted_canvas)]
        step_slider.input(show_step, [step_slider, state], canvas_outputs, api_name="show_step",
                          trigger_mode="always_last")

        def advance(step_v, state_v, stop_at_end=True):
            if not state_v:
                return {timer: gr.Timer(active=False)}
            last = state_v["settings"]["steps"] - 1
            nxt = min(int(step_v or 0) + 1, last)
            out = show_step(nxt, state_v)
            out[step_slider] = nxt
            if nxt >= last and stop_at_end:
                out[timer] = gr.Timer(active=False)
            return out

        tick_outputs = canvas_outputs + [step_slider, timer]
        timer.tick(advance, [step_slider, state], tick_outputs, api_visibility="private", trigger_mode="always_last")
        next_btn.click(advance, [step_slider, state], tick_outputs, api_visibility="private")

        def back(step_v, state_v):
            if not state_v:
                return {status: "run a prompt first"}
            prev = max(0, int(step_v or 0) - 1)
            return {**show_step(prev, state_v), step_slider: prev, timer: gr.Timer(active=False)}

        prev_btn.click(back, [step_slider, state], tick_outputs, api_visibility="private")

        def play(step_v, state_v, speed_v):
            out = {timer: gr.Timer(value=1.0 / max(1, speed_v or 1), active=True)}
            if state_v and int(step_v or 0) >= state_v["settings"]["steps"] - 1:  # replay from the start
                out.update(show_step(0, state_v))
                out[step_slider] = 0
            return out

        play_btn.click(play, [step_slider, state, speed], tick_outputs, api_visibility="private")
        pause_btn.click(lambda: gr.Timer(active=False), None, timer, api_visibility="private")
        speed.change(lambda v: gr.Timer(value=1.0 / max(1, v or 1)), speed, timer, api_visibility="private")

        def pick(evt: gr.EventData, step_v, state_v, direction_v, name):
            data = evt._data if isinstance(evt._data, dict) else {}
            try:
                pos, step_i = as_int(data.get("pos"), "position"), as_int(step_v or 0, "step")
            except UserError as err:
                return {shift_status: f"⚠ {err}"}
            trace = (state_v or {}).get("clean", {}).get(name)
            d = 1 if str(direction_v).startswith("right") else -1
            why = viewer.why_not_shiftable(trace, step_i, pos, d) if trace is not None else None
            if why:
                return {shift_status: f"⚠ {why}. The outlined ⇢ tokens can move."}
            return {shift_pos: pos, shift_step: step_i,
                    shift_status: f"picked position {pos} after step {step_i}: press **Re-run with the shift**"}

        def picker(name):
            def on_click(evt: gr.EventData, step_v, state_v, direction_v):
                return pick(evt, step_v, state_v, direction_v, name)
            return on_click

        for p in panels:
            for comp in (p.canvas, p.shifted_canvas):
                comp.click(picker(p.name), [step_slider, state, direction], [shift_pos, shift_step, shift_status],
                           api_visibility="private")

        # ---- shift injection
        def rerun_with(interventions, what, slider_v, state_v, extra=None):
            """Every model of the last decode again, same seed, with `interventions`; streams the
            shifted canvases, then draws the shifted answers, summaries and divergence."""
            settings = DecodeSettings(**state_v["settings"])
            decodes = {n: SeededDecode(models[n], state_v["prompt_ids"][n], settings, interventions)
                       for n in state_v["clean"]}
            errors, final = yield from stream_frames(decodes, lambda p: p.shifted_canvas, shift_status,
                                                     "with the shift: ", {})
            shifted = {n: d.trace for n, d in decodes.items() if n not in errors}
            new_state = dict(state_v, shifted=shifted, shift=what)
            series, at = {}, sorted({d.step for tr in shifted.values() for d in tr.displacements})
            view_step = int(min(max(0, slider_v or 0), settings.steps - 1))
            for n, err in errors.items():
                final.update(hidden_shift_views(by_name[n]))
                final[by_name[n].shifted_canvas], final[by_name[n].shift_summary] = message_html(err), f"⚠ {err}"
            for n, tr in shifted.items():
                lm, panel, div = models[n], by_name[n], viewer.divergence(state_v["clean"][n], tr)
                series[n] = div.edit_distance
                final.update(render_step(panel, new_state, view_step))
                moved = f"{len(tr.displacements)} shift(s)" if tr.displacements else "the shift did not apply here"
                final[panel.shift_summary] = f"**{n}** ({moved}): {viewer.divergence_summary(div)}"
                final[panel.shifted_answer] = gr.Textbox(value=viewer.response_text(tr, lm.decode), visible=True)
                final[panel.shifted_heatmap] = gr.Plot(value=heatmap(lm, tr, f"{n} with the shift"), visible=True)
            final[edit_plot] = figures.edit_distance_figure(series, shift_steps=at) if series else None
            final[shift_status] = (extra or f"re-ran with the {what}.") + f" {problems_of(errors)}".rstrip()
            final[state] = new_state
            yield final

        @on_gpu
        def run_shift(mode, step_v, pos_v, direction_v, strength_v, slider_v, state_v):
            if not state_v or not state_v["clean"]:
                yield {shift_status: "⚠ run a prompt first, then pick a token to shift"}
                return
            settings = DecodeSettings(**state_v["settings"])
            try:
                if mode == "random shifts":
                    r = float(strength_v)
                    if not 0 <= r <= 1:
                        raise UserError("the random strength r must be between 0 and 1")
                    interventions = [mv.RandomShifts(strength=r, seed=settings.seed)]
                    what = f"random shifts r = {r:g}"
                else:
                    step_i, pos_i = as_int(step_v, "step"), as_int(pos_v, "position")
                    d = 1 if str(direction_v).startswith("right") else -1
                    interventions = [mv.Shift(step=step_i, position=pos_i, direction=d)]
                    what = f"shift of position {pos_i} by {d:+d} after step {step_i}"
            except (UserError, ValueError) as err:
                gr.Warning(str(err))
                yield {shift_status: f"⚠ {err}"}
                return
            yield from rerun_with(interventions, what, slider_v, state_v)

        @on_gpu
        def find_shift(slider_v, state_v):
            """Try the comparable shift at every answer position for a CE and a CTC model (batched,
            greedy), apply the most revealing one to every model, and list the next ones."""
            try:
                found = find_revealing(models, state_v, PRESET_ANSWERS)
            except UserError as err:
                yield {shift_status: f"⚠ {err}", candidates: gr.Radio(choices=[], value=None, visible=False)}
                return
            frames = rerun_with([mv.ShiftAtCommit(found.best)], f"shift of the token that lands at position "
                                f"{found.best}, one place right as it is committed", slider_v, state_v,
                                extra=found.message)
            last = None
            for frame in frames:  # the last frame also fills the list of candidates
                if last is not None:
                    yield last
                last = frame
            last[candidates] = gr.Radio(choices=found.choices, value=found.best, visible=bool(found.choices))
            yield last

        @on_gpu
        def apply_candidate(pos_v, slider_v, state_v):
            if pos_v is None or not state_v or not state_v["clean"]:
                return
            pos = as_int(pos_v, "position")
            yield from rerun_with([mv.ShiftAtCommit(pos)], f"shift of the token that lands at position {pos}, one "
                                  "place right as it is committed", slider_v, state_v)

        shift_outputs = [shift_status, state, edit_plot] + all_panel_outputs
        shift_btn.click(run_shift, [shift_mode, shift_step, shift_pos, direction, strength, step_slider, state],
                        shift_outputs, api_name="shift")
        find_btn.click(find_shift, [step_slider, state], shift_outputs + [candidates], api_name="find_shift")
        candidates.input(apply_candidate, [candidates, step_slider, state], shift_outputs, api_visibility="private")

        # ---- CTC alignment
        @on_gpu
        def align(model_name, target_text, collapse, log_scale, state_v):
            try:
                if model_name not in models:
                    raise UserError(f"unknown model {model_name!r}")
                if not state_v or model_name not in state_v["clean"]:
                    raise UserError(f"run a prompt with {model_name} first: the alignment uses its decode")
                lm, trace = models[model_name], state_v["clean"][model_name]
                slack = lm.slack_id()
                if slack is None:
                    raise UserError(f"{model_name}'s tokenizer has no <slack> token, so there is nothing to align with")
                typed = (target_text or "").strip()
                if len(typed) > max_prompt_chars:
                    raise UserError(f"the target is longer than {max_prompt_chars} characters")
                target = viewer.alignment_target(trace, lm.tokenizer(typed, add_special_tokens=False)["input_ids"]
                                                 if typed else None)
                target = [t for t in target if t != slack]
                if not target:
                    raise UserError("the target is empty (the model's answer is empty): type a target")
                T = viewer.alignment_length(trace, viewer.needed_length(target, collapse))
                with DEVICE_LOCK:
                    emissions = viewer.emissions_at_commit(lm.model, trace)[:T]
                al = ctc.alignment(emissions, target, slack_id=slack, collapse=collapse)
            except (UserError, ValueError) as err:
                return {align_status: f"⚠ {err}", align_plot: None}
            fig = figures.alignment_heatmap(al, target_text=[lm.token_text(t) for t in target],
                                            log_scale=bool(log_scale))
            raw = trace.final[:T]
            spelled = {m: lm.decode(ctc.collapse(raw, slack, m)) for m in ctc.COLLAPSE_MAPS}
            md = (f"log p(target) = {al.log_likelihood:.2f} over {T} positions · target {lm.decode(target)!r} · "
                  f"the raw output collapses to {spelled['slack']!r} (slack map) and {spelled['standard']!r} "
                  f"(standard map)")
            return {align_status: md, align_plot: fig}

        align_btn.click(align, [align_model, align_target, align_collapse, align_log, state],
                        [align_status, align_plot], api_name="align")

        # ---- CE vs CTC on a shift (no model)
        def ce_vs_ctc(target_text, pos, fill, eps):
            try:
                text = (target_text or "")[:200]
                losses = viewer.shift_losses(viewer.split_units(text), as_int(pos, "position"), fill=fill,
                                             epsilon=float(eps))
            except (UserError, ValueError) as err:
                return {ce_status: f"⚠ {err}", ce_plot: None}
            fig = figures.shift_loss_figure(losses.reference, losses.prediction, losses.ce_per_position, losses.ctc)
            ctc_txt = ", ".join(f"{k}: {'no alignment' if v is None else f'{v:.2f}'}" for k, v in losses.ctc.items())
            md = (f"prediction `{' '.join(losses.prediction)}` vs target `{' '.join(losses.units)}` · CE total "
                  f"{losses.ce_total:.2f} nats · CTC {ctc_txt}")
            return {ce_status: md, ce_plot: fig}

        ce_btn.click(ce_vs_ctc, [ce_target, ce_pos, ce_fill, ce_eps], [ce_status, ce_plot], api_name="ce_vs_ctc")
        demo.load(ce_vs_ctc, [ce_target, ce_pos, ce_fill, ce_eps], [ce_status, ce_plot], api_visibility="private")

        # ---- export
        def export(state_v):
            if not state_v or not state_v["clean"]:
                gr.Warning("run a prompt first: there is nothing to export yet")
                return None
            return export_files_for(models, state_v)

        export_btn.click(export, [state], export_files, api_name="export")
    return demo


def as_int(value, name: str) -> int:
    try:
        number = int(value)
        if float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a whole number, got {value!r}") from None
    return number


def robustness_view():
    """The evaluation's robustness figure from assets/eval/robustness.json, drawn, never recomputed."""
    if not ROBUSTNESS_JSON.is_file() or not hasattr(figures, "robustness_figure"):
        return None, "Evaluation results not found (`assets/eval/robustness.json`)."
    try:
        results = json.loads(ROBUSTNESS_JSON.read_text())
        from mdlm_viz.robustness import comparison_table, markdown_table

        about = (f"Win rate of each model's shifted output against its own clean output, {results['n_prompts']} "
                 "held-out prompts (`assets/eval/robustness.json`; how it was measured: README, *The evaluation*). "
                 "The last column counts the shifts that found a token to move at the top strength.\n\n")
        paired = comparison_table(results)
        if paired:
            paired = (f"\n\nEach model against `{results['reference']}` on the same prompts (difference, 95% "
                      "bootstrap CI over prompts; a positive Pearson difference means the win rate falls off "
                      "less):\n\n" + paired)
        return figures.robustness_figure(results), about + markdown_table(results) + paired
    except (ValueError, KeyError, TypeError) as err:
        return None, f"Evaluation results could not be read: {err}"


EXPORT_DIR = Path(tempfile.gettempdir()) / "mdlm-viz-export"
EXPORT_KEEP_S = 3600  # exports older than this are removed when the next one is written


def fresh_export_dir() -> Path:
    """A new folder for one export; folders older than EXPORT_KEEP_S go (Gradio serves copies)."""
    import shutil

    EXPORT_DIR.mkdir(exist_ok=True)
    for old in EXPORT_DIR.iterdir():
        if time.time() - old.stat().st_mtime > EXPORT_KEEP_S:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=EXPORT_DIR))


def export_files_for(models: dict[str, LoadedModel], state: dict) -> list[str]:
    """One Trace JSON per run, and one self-contained HTML page with each run's final canvas and
    commit heatmap (plotly.js inlined once: the page works offline)."""
    out = fresh_export_dir()
    files, parts = [], []
    for kind in ("clean", "shifted"):
        for name, trace in state.get(kind, {}).items():
            label = f"{name}{' with the shift' if kind == 'shifted' else ''}"
            path = out / f"trace_{name}{'_shifted' if kind == 'shifted' else ''}.json"
            trace.to_json(path)
            files.append(str(path))
            fig = figures.commit_heatmap(trace, token_text=models[name].token_text, title=label)
            parts.append(f"<h2>{html.escape(label)}</h2>"
                         + viewer.canvas_html(trace, len(trace.steps) - 1, models[name].token_text)
                         + fig.to_html(full_html=False, include_plotlyjs=not parts))
    page = out / "figures.html"
    page.write_text(viewer.standalone_html(f"<h1>{html.escape(state['prompt'])}</h1>" + "".join(parts),
                                           title="mdlm-viz figures"))
    return files + [str(page)]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                    help="interface to serve on (default: loopback only; Hugging Face Spaces set "
                         "GRADIO_SERVER_NAME=0.0.0.0)")
    ap.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    ap.add_argument("--models", nargs="+", metavar="NAME=PATH",
                    help="checkpoints to compare (local directories, or hub:owner/name); default: $MDLM_VIZ_MODELS "
                         "or assets/base assets/ce assets/ctc [assets/ctc-standard]")
    ap.add_argument("--load-in-4bit", action="store_true", help="quantise the models with bitsandbytes (CUDA only)")
    ap.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    ap.add_argument("--concurrency", type=int, default=4, help="events handled at once (forward passes still "
                    "take turns)")
    ap.add_argument("--max-prompt-chars", type=int, default=MAX_PROMPT_CHARS)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    models = load_models(model_specs(args.models), load_in_4bit=args.load_in_4bit)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    demo = build_app(models, max_prompt_chars=args.max_prompt_chars)
    demo.queue(default_concurrency_limit=args.concurrency, max_size=64)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, css=PAGE_CSS, js=KEYS_JS, ssr_mode=False,
                mcp_server=False, enable_monitoring=False, run_history=False, show_error=False)


if __name__ == "__main__":
    sys.exit(main())
