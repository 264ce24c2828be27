"""The page: the main view above, tabs below, each tab's layout and wiring in its own module."""

from __future__ import annotations

import argparse
import os
import sys

from mdlm_viz import viewer

from .models import ConfigError, ModelInfo, checkpoint_location, model_specs
from .scheduler import BatchScheduler
from .session import AppContext
from .settings import MAX_PROMPT_CHARS

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
them. Decode a prompt, then press **Find a revealing shift**: the same decode is re-run with one
token landing one place off. Cross-entropy models cascade; CTC models trained with `<slack>`
absorb the shift. New here? Open the **Lesson** tab."""

EXPLORE = """Type a prompt or pick a preset, press **Decode**, then **Find a revealing shift**. Scrub the
steps with the slider or the ← → keys; tokens outlined ⇢ can be moved by hand (click one, then
**Re-run with the shift**). The tabs below the models explain the maths."""


def parallel_decodes() -> int | None:
    """Forward passes run at once (`BatchScheduler`): on a GPU one; on a CPU no cap with one torch
    thread per pass, else one per core's worth of threads."""
    import torch

    if torch.cuda.is_available():
        return 1
    threads = max(1, torch.get_num_threads())
    return None if threads == 1 else max(1, (os.cpu_count() or 1) // threads)


def build_app(models_or_ctx, max_prompt_chars: int = MAX_PROMPT_CHARS):
    """The gr.Blocks page over loaded models, or over an `AppContext` whose models may still be
    loading (the page then says so and enables Decode when they are in)."""
    import gradio as gr

    from . import components as ui_components
    from .tabs import alignment, ce_vs_ctc, decode, export, lesson, robustness

    ctx = models_or_ctx if isinstance(models_or_ctx, AppContext) else AppContext(
        models_or_ctx, max_prompt_chars, scheduler=BatchScheduler(parallel=parallel_decodes()))
    # delete_cache: Gradio's copies of exported and uploaded files go after a day.
    with gr.Blocks(title="mdlm-viz", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        ui_components.Markdown(INTRO)
        with ui_components.Tabs(elem_id="top-tabs"):
            with ui_components.Tab("Explore", id="explore"):
                ui_components.Markdown(EXPLORE)
            with ui_components.Tab("Lesson", id="lesson", elem_id="lesson-tab"):
                lesson_view = lesson.layout()
        gr.HTML(viewer.legend_html(), js_on_load=None)
        main = decode.layout(ctx)
        with ui_components.Tabs() as tabs:
            with ui_components.Tab("CTC alignment", id="alignment"):
                align_view = alignment.layout(ctx)
            with ui_components.Tab("Why CE punishes a shift", id="why"):
                ce_view = ce_vs_ctc.layout()
            with ui_components.Tab("Robustness", id="robustness"):
                robustness.layout()
            with ui_components.Tab("Export / import", id="export"):
                export_view = export.layout()
        decode.wire(ctx, main)
        wire_readiness(ctx, main, demo)
        alignment.wire(ctx, align_view, main.state)
        ce_vs_ctc.wire(ce_view, demo)
        export.wire(ctx, export_view, main.state)
        lesson.wire(ctx, lesson_view, main, tabs)
    return demo


def wire_readiness(ctx: AppContext, main, demo) -> None:
    """While the models load, the status line says so and Decode waits; then both come alive."""
    import gradio as gr

    from . import components as ui_components

    poll = ui_components.Timer(1.0, active=not ctx.ready)

    def check():
        return {main.status: ctx.readiness(), main.run_btn: gr.Button(interactive=ctx.ready),
                poll: gr.Timer(active=not ctx.settled)}
    demo.load(check, None, [main.status, main.run_btn, poll], api_visibility="private")
    poll.tick(check, None, [main.status, main.run_btn, poll], api_visibility="private")

    def ready() -> dict:
        """Whether the models are loaded and Decode can run: {"ready": bool, "models": [names],
        "status": the page's status line}. A classroom tool can wait on it before `/run`."""
        return {"ready": ctx.ready, "models": ctx.names, "status": ctx.readiness()}
    gr.api(ready, api_name="ready")


# Gradio keeps every session (its State and a copy of each updated component) for an hour after
# the visitor leaves, 10,000 sessions by default: a busy Space's memory would only grow. A classroom
# of thirty, each with a tab or two open, fits in 128.
SESSIONS_KEPT = 128
SWITCH_INTERVAL_S = 1e-4  # the interpreter's thread switch interval in the server (CPython's default: 5e-3)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__ if argv is None else None,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                    help="interface to serve on (default: loopback only; Hugging Face Spaces set "
                         "GRADIO_SERVER_NAME=0.0.0.0)")
    ap.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    ap.add_argument("--models", nargs="+", metavar="NAME=PATH",
                    help="checkpoints to compare (local directories, or hub ids owner/name; hub:owner/name forces "
                         "the hub); default: $MDLM_VIZ_MODELS or assets/base assets/ce assets/ctc "
                         "[assets/ctc-standard]")
    ap.add_argument("--load-in-4bit", action="store_true", help="quantise the models with bitsandbytes (CUDA only)")
    ap.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    ap.add_argument("--concurrency", type=int, default=32, help="events handled at once: greedy decodes of "
                    "visitors who press together share forward passes; other forward passes take turns")
    ap.add_argument("--sessions", type=int, default=SESSIONS_KEPT,
                    help="visitor sessions kept in memory (their decodes, for replaying and shifting); beyond it "
                         "the least recently used is dropped and that visitor decodes again")
    ap.add_argument("--max-prompt-chars", type=int, default=MAX_PROMPT_CHARS)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads per forward pass (default on a "
                    "CPU: 1, so the models decode side by side on all cores)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch
    # A worker whose forward pass ends (torch releases the interpreter lock during it) must get
    # the lock back from whichever thread holds it: Gradio's event loop, a frame being built,
    # another model's sampler. CPython forces that handover only every 5 ms by default, which on
    # two cores left them idle for a good part of a 0.4-s decode (docs/benchmarks.md, stop 29).
    sys.setswitchinterval(SWITCH_INTERVAL_S)

    if args.threads or not torch.cuda.is_available():
        torch.set_num_threads(args.threads or 1)
    try:  # every reference is checked before the page is served; the weights load meanwhile
        locations = {n: checkpoint_location(p) for n, p in model_specs(args.models).items()}
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    ctx = AppContext(max_prompt_chars=args.max_prompt_chars, scheduler=BatchScheduler(parallel=parallel_decodes()),
                     infos={n: ModelInfo.read(n, where) for n, where in locations.items()})
    demo = build_app(ctx)
    demo.queue(default_concurrency_limit=args.concurrency, max_size=64)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, css=PAGE_CSS, js=KEYS_JS,
                ssr_mode=False, mcp_server=False, enable_monitoring=False, run_history=False, show_error=False,
                prevent_thread_lock=True, state_session_capacity=args.sessions)
    # Loading starts once the page is served: importing the model code in a thread while the page is
    # built would make both wait for the interpreter lock.
    ctx.load_in_background(locations, load_in_4bit=args.load_in_4bit, then=settle_heap)
    demo.block_thread()


def settle_heap() -> None:
    """Once the page is built and the models are in, move every object the server holds so far out of
    the garbage collector's reach (`gc.freeze`): the libraries, the page and the models are about
    half a million objects, which a full collection walked for about 0.3 s with the interpreter
    held, stalling whoever was decoding then (a class of thirty once took 1.2 s instead of 0.7 s).
    The visitors' sessions and traces, made later, are collected as usual."""
    import gc

    gc.collect()
    gc.freeze()
