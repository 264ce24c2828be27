"""The Export / import tab: download the recorded traces and an offline figure page; upload a
trace exported earlier (any model, LLaDA-8B included) and replay it here without the model."""

from __future__ import annotations

import functools
import html
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from .. import components as ui_components

from mdlm_viz import figures, viewer
from mdlm_viz.trace import Trace

from ..drawing import heatmap
from ..session import AppContext, Session
from ..settings import UserError, as_number

EXPORT_DIR = Path(tempfile.gettempdir()) / "mdlm-viz-export"
EXPORT_KEEP_S = 3600  # exports older than this are removed when the next one is written
MAX_IMPORT_BYTES = 20 * 2**20


@dataclass
class ExportView:
    export_btn: object
    files: object
    upload: object
    import_status: object
    import_step: object
    import_canvas: object
    import_answer: object
    import_heatmap: object
    imported: object  # gr.State: the imported Trace


def layout() -> ExportView:
    ui_components.Markdown(
        "Download the recorded traces (JSON, `mdlm_viz.Trace.from_json` reads them back) and the figures as "
        "a self-contained HTML page (plotly inlined, works offline).")
    export_btn = ui_components.Button("Export traces and figures", elem_id="export")
    files = ui_components.File(label="downloads", file_count="multiple", interactive=False)
    ui_components.Markdown("### Replay a trace\nUpload a trace JSON exported here or made elsewhere with "
                "`mdlm_viz.generate(..., record_trace=True)` (LLaDA-8B runs too): it replays with no model. "
                "Traces saved with their token texts (`Trace.with_token_texts`) show words; others show token ids.")
    upload = ui_components.File(label="trace JSON", file_types=[".json"], file_count="single", elem_id="trace-upload")
    import_status = ui_components.Markdown("", elem_id="import-status")
    import_step = ui_components.Slider(0, 1, value=0, step=1, label="step", elem_id="import-step")
    import_canvas = gr.HTML("", elem_id="import-canvas")
    import_answer = ui_components.Textbox(label="answer (<slack> stripped)", interactive=False, elem_id="import-answer")
    import_heatmap = gr.HTML("", elem_id="import-heatmap", elem_classes=["mv-heatmap"])
    return ExportView(export_btn, files, upload, import_status, import_step, import_canvas, import_answer,
                      import_heatmap, ui_components.State(None))


# ----------------------------------------------------------------------------- export
def fresh_export_dir() -> Path:
    """A new folder for one export; folders older than EXPORT_KEEP_S go (Gradio serves copies)."""
    EXPORT_DIR.mkdir(exist_ok=True)
    for old in EXPORT_DIR.iterdir():
        if time.time() - old.stat().st_mtime > EXPORT_KEEP_S:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=EXPORT_DIR))


def export_files_for(session: Session) -> list[str]:
    """One Trace JSON per run (with its token texts), and one self-contained HTML page with each
    run's final canvas and commit heatmap (plotly.js inlined once: the page works offline)."""
    out = fresh_export_dir()
    files, parts = [], []
    for kind, runs in (("clean", session.clean), ("shifted", session.shifted)):
        for name, trace in runs.items():
            label = f"{name}{' with the shift' if kind == 'shifted' else ''}"
            path = out / f"trace_{name}{'_shifted' if kind == 'shifted' else ''}.json"
            trace.to_json(path)
            files.append(str(path))
            fig = figures.commit_heatmap(trace, token_text=trace.token_text, title=label)
            parts.append(f"<h2>{html.escape(label)}</h2>" + viewer.canvas_html(trace, len(trace.steps) - 1)
                         + fig.to_html(full_html=False, include_plotlyjs=not parts))
    page = out / "figures.html"
    page.write_text(viewer.standalone_html(f"<h1>{html.escape(session.prompt)}</h1>" + "".join(parts),
                                           title="mdlm-viz figures"))
    return files + [str(page)]


def export(session: Session | None):
    if session is None or not session.clean:
        gr.Warning("run a prompt first: there is nothing to export yet")
        return None
    return export_files_for(session)


# ----------------------------------------------------------------------------- import
def read_trace_upload(path) -> Trace:
    """The uploaded file as a Trace, or a UserError saying what is wrong with it."""
    if not path:
        raise UserError("choose a trace JSON file to upload")
    p = Path(path)
    if p.stat().st_size > MAX_IMPORT_BYTES:
        raise UserError(f"the file is {p.stat().st_size / 2**20:.1f} MiB; traces up to {MAX_IMPORT_BYTES // 2**20} "
                        "MiB are accepted")
    try:
        data = json.loads(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError("the file is not UTF-8 text: upload a trace JSON exported from mdlm-viz") from None
    except json.JSONDecodeError as err:
        raise UserError(f"the file is not valid JSON ({err.msg} at line {err.lineno}): upload a trace JSON "
                        "exported from mdlm-viz") from None
    try:
        trace = Trace.from_dict(data)
    except ValueError as err:
        raise UserError(f"this is not a trace mdlm-viz can replay: {err}") from None
    if not trace.steps:
        raise UserError("the trace records no steps: there is nothing to replay")
    return trace


def import_view(view: ExportView, trace: Trace, step: int) -> dict:
    step = int(min(max(0, step), len(trace.steps) - 1))
    return {view.import_canvas: viewer.canvas_html(trace, step, caption=f"after step {step}",
                                                   shiftable=viewer.shiftable_at(trace, step))}


def import_trace(view: ExportView, path) -> dict:
    try:
        trace = read_trace_upload(path)
    except UserError as err:
        return {view.import_status: f"⚠ {err}", view.imported: None, view.import_canvas: "",
                view.import_answer: "", view.import_heatmap: ""}
    last = len(trace.steps) - 1
    who = trace.model or "a model not named in the file"
    words = "" if trace.token_texts else " (no token texts recorded: tokens show as #id)"
    out = import_view(view, trace, last)
    out.update({view.imported: trace,
                view.import_status: f"replaying a trace of **{who}**: {len(trace.steps)} steps, {trace.gen_length} "
                                    f"positions, {len(trace.displacements)} shift(s){words}. Move the slider.",
                view.import_step: gr.Slider(minimum=0, maximum=max(last, 1), value=last),
                view.import_answer: "".join(trace.token_text(t) for t in trace.response()).strip(),
                view.import_heatmap: heatmap(trace, f"{who}: commit step")})
    return out


def show_import_step(view: ExportView, step, trace: Trace | None) -> dict:
    if trace is None:
        return {view.import_status: "upload a trace first"}
    try:
        return import_view(view, trace, as_number(step, "step"))
    except UserError as err:
        return {view.import_status: f"⚠ {err}"}


def wire(ctx: AppContext, view: ExportView, state) -> None:
    view.export_btn.click(export, [state], view.files, api_name="export")
    outputs = [view.import_status, view.imported, view.import_canvas, view.import_answer, view.import_heatmap,
               view.import_step]
    view.upload.upload(functools.partial(import_trace, view), view.upload, outputs, api_name="import_trace")
    view.import_step.input(functools.partial(show_import_step, view), [view.import_step, view.imported],
                           [view.import_canvas, view.import_status], api_visibility="private",
                           trigger_mode="always_last")
