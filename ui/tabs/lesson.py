"""The Lesson tab: a short guided tour over pre-recorded decodes.

Each page loads an example recorded with the shipped checkpoints (`assets/lesson/*.json`,
`Session`s with their token texts) into the main view and outlines the part of the page it
talks about, so the lesson runs on a cold Space with no model computation. Regenerate the
examples after retraining with:

    python -m ui.tabs.lesson            # records assets/lesson/shift.json and blocks.json
"""

from __future__ import annotations

import argparse
import functools
import html
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from .. import components as ui_components
from .. import drawing
from ..models import ROOT
from ..session import AppContext, Session
from ..settings import UserError, as_int
from . import decode

LESSON_DIR = ROOT / "assets" / "lesson"


@dataclass(frozen=True)
class LessonPage:
    title: str
    body: str  # Markdown; {shift} is replaced by what the recorded shift did
    example: str | None  # file stem in assets/lesson, loaded into the main view
    focus: str  # elem_id outlined on the page
    step: str = "last"  # which step the main view shows: "last", "middle" or "shift"
    tab: str | None = None  # the tab below the main view to open


PAGES = [
    LessonPage("1. A masked diffusion model writes by unmasking",
               "The answer starts as a row of masks (░). At every step the model predicts **all** masked "
               "positions at once and commits the few it is most confident about (bold and underlined: "
               "committed this step; darker = more confident). A committed token is never revised. The main view "
               "now shows a recorded decode halfway through: press **▶ Play**, drag the step slider, or use the "
               "← → keys, and hover a token for the model's top candidates.",
               "shift", "panels", step="middle"),
    LessonPage("2. Remasking and blocks",
               "Which positions get committed is the *remasking* rule: `low_confidence` keeps the least confident "
               "predictions masked for later. With several *blocks* the answer is decoded left to right, block by "
               "block, each with its share of the steps. The heatmap (outlined) shows the step at which every "
               "position was committed; this example uses two blocks, so the right half only starts once the left "
               "half is done.",
               "blocks", "heatmap-ce"),
    LessonPage("3. A shift: one token lands one place off",
               "Now the same decode again, same seed, except that one token lands one position to the right as it "
               "is committed (the red arrow; its old place is masked again). Up to that step the two runs are "
               "identical. {shift}",
               "shift", "shifted-ce", step="shift"),
    LessonPage("4. Cross-entropy models cascade",
               "A model fine-tuned with position-wise cross-entropy learned that the token at position *i* "
               "belongs at position *i*. Once a token is off by one, the tokens it commits next must either "
               "repeat or skip to stay consistent, and every later position can go wrong. The outlined map marks, "
               "step by step, where the shifted run holds another token than the clean one (orange; grey: "
               "committed in one run only).",
               "shift", "difference-ce"),
    LessonPage("5. `<slack>` absorbs the move",
               "A model fine-tuned with CE + CTC has a `<slack>` token that the answer drops. It learned that an "
               "answer may sit anywhere inside its positions with `<slack>` filling the gaps, so after a shift it "
               "can write `<slack>` (blue in the map) and carry on. Compare its answer with the shift to the one "
               "without: {shift}",
               "shift", "difference-ctc"),
    LessonPage("6. Why: the losses of a shifted answer",
               "Cross-entropy scores each position against the reference at that position, so a one-place shift "
               "costs at every later position. CTC sums over all alignments of the answer to the positions, so a "
               "`<slack>` in the gap costs almost nothing. The outlined figure computes both for a shifted "
               "near-one-hot prediction; change the target and the shift position to see it.",
               None, "ce-vs-ctc", tab="why"),
    LessonPage("7. The robustness curve",
               "Over many held-out prompts and random shifts of strength *r*, the evaluation counts how often a "
               "model's shifted answer is at least as good as its clean one. The outlined figure is that curve for "
               "the shipped checkpoints (read from `assets/eval/robustness.json`, not recomputed).",
               None, "robustness-plot", tab="robustness"),
]


@functools.lru_cache(maxsize=None)
def load_example(stem: str) -> Session:
    path = LESSON_DIR / f"{stem}.json"
    if not path.is_file():
        raise UserError(f"the lesson example {path.name} is missing: record it with `python -m ui.tabs.lesson`")
    return Session.load(path)


@dataclass
class LessonView:
    page: object  # gr.State: the page index
    text: object
    focus: object  # an HTML block whose <style> outlines the focused element and scrolls to it
    prev_btn: object
    next_btn: object
    start_btn: object


FOCUS_JS = """
watch('value', () => {
  const m = (props.value || '').match(/data-focus="([^"]+)"/);
  const el = m && document.getElementById(m[1]);
  if (el) el.scrollIntoView({behavior: 'smooth', block: 'center'});
});
"""


def focus_html(elem_id: str) -> str:
    safe = html.escape(elem_id, quote=True)
    return (f'<style>#{safe} {{ outline: 3px solid #E69F00 !important; outline-offset: 4px; border-radius: 6px; }}'
            f'</style><span data-focus="{safe}"></span>')


def layout() -> LessonView:
    ui_components.Markdown(
        f"A guided tour in {len(PAGES)} pages. Each page loads a recorded example into the view below "
        "and outlines what it talks about (orange). Nothing is computed: it works before any decode.")
    with ui_components.Row():
        start_btn = ui_components.Button("Start the lesson", variant="primary", elem_id="lesson-start", scale=0,
                                         min_width=180)
        prev_btn = ui_components.Button("← Previous", elem_id="lesson-prev", scale=0, min_width=120)
        next_btn = ui_components.Button("Next →", elem_id="lesson-next", scale=0, min_width=120)
    text = ui_components.Markdown("", elem_id="lesson-text")
    focus = gr.HTML("", js_on_load=FOCUS_JS, elem_id="lesson-focus")
    return LessonView(ui_components.State(-1), text, focus, prev_btn, next_btn, start_btn)


def page_step(page: LessonPage, session: Session) -> int:
    if page.step == "middle":
        return session.last_step // 2
    if page.step == "shift":
        moved = [d.step for tr in session.shifted.values() for d in tr.displacements]
        return min(moved) if moved else session.last_step
    return session.last_step


def show_page(ctx: AppContext, view: LessonView, main: decode.DecodeView, tabs, index) -> dict:
    """Page `index` of the lesson: its text, its example in the main view, its focus."""
    try:
        i = min(max(as_int(index, "position"), 0), len(PAGES) - 1)
    except UserError:
        i = 0
    page = PAGES[i]
    out = {view.page: i, view.focus: focus_html(page.focus)}
    shift_words = ""
    try:
        if page.example:
            recorded = load_example(page.example)
            shown = [n for n in recorded.clean if n in main.by_name]
            if not shown:
                raise UserError(f"the lesson's examples were recorded with {', '.join(recorded.clean)}; this app "
                                f"serves {', '.join(main.by_name)}")
            session = Session(recorded.prompt, recorded.settings, {n: recorded.clean[n] for n in shown},
                              {}, {n: t for n, t in recorded.shifted.items() if n in shown}, recorded.shift)
            out.update(drawing.show_session(main, session, ctx.models, page_step(page, session)))
            shift_words = session.shift or ""
            out[main.status] = f"lesson example: *{session.prompt}* (recorded, no model ran)"
    except (UserError, ValueError) as err:
        out[main.status] = f"⚠ {err}"
    body = page.body.replace("{shift}", shift_words)
    out[view.text] = f"### {page.title}\n{body}\n\n<small>page {i + 1} of {len(PAGES)}</small>"
    if page.tab:
        out[tabs] = gr.Tabs(selected=page.tab)
    return out


def wire(ctx: AppContext, view: LessonView, main: decode.DecodeView, tabs) -> None:
    outputs = [view.page, view.text, view.focus, tabs] + main.run_outputs() + [main.prompt]
    show = functools.partial(show_page, ctx, view, main, tabs)
    view.start_btn.click(lambda: show(0), None, outputs, api_name="lesson_start")
    view.next_btn.click(lambda i: show((i if isinstance(i, int) else -1) + 1), view.page, outputs,
                        api_name="lesson_next")
    view.prev_btn.click(lambda i: show((i if isinstance(i, int) else 1) - 1), view.page, outputs,
                        api_visibility="private")


# ----------------------------------------------------------------------------- recording
def record(ctx: AppContext, out_dir: Path = LESSON_DIR) -> dict[str, str]:
    """Decode the presets with the loaded models, pick the one whose best comparable shift reveals
    the most, and save it (clean and shifted) and a two-block decode of it as lesson examples."""
    import mdlm_viz as mv

    from ..decoding import decode_all
    from ..finder import reveal_prompt, shipped_settings
    from ..settings import PRESET_ANSWERS, parse_settings

    settings = shipped_settings(ctx.models)
    best = None
    for prompt in PRESET_ANSWERS:
        try:
            session, found = reveal_prompt(ctx.models, prompt, settings, ctx.answers)
        except UserError:
            continue
        score = (found.revealing, not found.message.startswith("the clean answer"))
        if best is None or score > best[0]:
            best = (score, session, found)
    if best is None:
        raise UserError("no preset gave a shift to record: check the checkpoints decode the presets")
    _, session, found = best
    shifted = decode_all(ctx.models, session.prompt, settings, [mv.ShiftAtCommit(found.best)])
    session = Session(session.prompt, settings, session.clean, session.prompt_ids, shifted,
                      f"In this recording the finder reports: {found.message}")
    out_dir.mkdir(parents=True, exist_ok=True)
    session.save(out_dir / "shift.json")
    two = parse_settings(settings.gen_length, settings.steps, settings.gen_length // 2, "low_confidence", 0.0, 0.0, 0)
    Session(session.prompt, two, decode_all(ctx.models, session.prompt, two)).save(out_dir / "blocks.json")
    return {"prompt": session.prompt, "found": found.message}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Record the lesson's examples with the shipped checkpoints.")
    p.add_argument("--out", type=Path, default=LESSON_DIR)
    args = p.parse_args(argv)
    from ..models import load_models, model_specs

    print(record(AppContext(load_models(model_specs(None))), args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
