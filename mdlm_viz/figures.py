"""Plotly figures drawn from plain data: a `Trace` (when and how confidently each position was
committed) and a CTC `Alignment` (posterior occupancy with the Viterbi path on top).

Pure functions from data to `go.Figure`; the app, notebooks and the evaluation call these.
"""

from __future__ import annotations

import hashlib
import html
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import plotly.graph_objects as go

from .ctc import Alignment
from .trace import Trace

# Colour-blind-safe sequential scale (viridis) for confidences and posteriors.
SCALE = "Viridis"


def _label(token_text: Callable[[int], str] | None, tok: int) -> str:
    return token_text(tok) if token_text else str(tok)


def _heatmap(z: list[list[float | None]], text: list[list[str]], **kw) -> go.Heatmap:
    """A heatmap from row lists, handed to plotly as arrays: it validates a numpy array at once
    instead of element by element (about 10x faster, which counts with a classroom of visitors).
    None cells become NaN, which plotly writes as null (an empty cell)."""
    grid = np.array([[np.nan if v is None else v for v in row] for row in z], dtype=float)
    return go.Heatmap(z=grid, text=np.array(text, dtype=object), hoverinfo="text", **kw)


@dataclass(frozen=True)
class CommitGrid:
    """What a commit heatmap shows, as hashable rows: equal decodes give equal grids, so a figure
    built for one can be shared (the app builds one per distinct decode, not one per visitor)."""

    z: tuple[tuple[float | None, ...], ...]  # [step][position]: confidence at commit, None elsewhere
    text: tuple[tuple[str, ...], ...]  # [step][position]: the hover label
    arrows: tuple[tuple[int, int, int], ...] = ()  # (step, source, target) of each displacement


def commit_grid(trace: Trace, token_text: Callable[[int], str] | None = None) -> CommitGrid:
    """The step x position grid of `commit_heatmap`, without plotly."""
    steps, n = len(trace.steps), trace.gen_length
    z = [[None] * n for _ in range(steps)]
    text = [[""] * n for _ in range(steps)]
    for st in trace.steps:
        for p, tok, c in zip(st.positions, st.tokens, st.confidences):
            z[st.index][p] = c
            text[st.index][p] = f"step {st.index} · pos {p} · {_label(token_text, tok)!r} · conf {c:.3f}"
        for p in st.merged:
            text[st.index][p] += " · merged into <slack>"
    return CommitGrid(tuple(map(tuple, z)), tuple(map(tuple, text)),
                      tuple((d.step, d.source, d.target) for d in trace.displacements))


def commit_grid_figure(grid: CommitGrid, title: str | None = None, height: int | None = None) -> go.Figure:
    """A cell is coloured at the step its position was committed, by the commit's confidence;
    displacements are marked with arrows from source to target."""
    fig = go.Figure(_heatmap(grid.z, grid.text, colorscale=SCALE, zmin=0, colorbar=dict(title="confidence"),
                             xgap=1, ygap=1))
    for step, source, target in grid.arrows:
        fig.add_annotation(x=target, y=step, ax=source, ay=step, xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=2, arrowcolor="#d62728", text="")
    fig.update_layout(title=title or "When each position was committed", xaxis_title="response position",
                      yaxis_title="step", yaxis_autorange="reversed", margin=dict(l=50, r=20, t=40, b=40))
    if height is not None:
        fig.update_layout(height=height)
    return fig


# Plotly's Viridis stops, for drawing it without plotly.
_VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
            "#fde725")


def viridis(v: float) -> str:
    """The colour of v in [0, 1] on the Viridis scale (linear between its ten stops)."""
    x = min(max(v, 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(x), len(_VIRIDIS) - 2)
    a, b = (tuple(int(c[k:k + 2], 16) for k in (1, 3, 5)) for c in _VIRIDIS[i:i + 2])
    return "#" + "".join(f"{round(p + (q - p) * (x - i)):02x}" for p, q in zip(a, b))


def commit_grid_svg(grid: CommitGrid, title: str = "When each position was committed") -> str:
    """The commit heatmap as a self-contained SVG: what `commit_grid_figure` shows (hover text as
    each cell's tooltip, displacements as red arrows), on a fixed 0-1 confidence scale so panels
    compare. The app draws this one: a browser paints it at once, where four plotly heatmaps took
    about 0.7 s after their data arrived (bench/bench_app.py)."""
    steps, n = len(grid.z), len(grid.z[0]) if grid.z else 0
    cell, left, top, bar = 12, 30, 22, 44  # px in the viewBox; the SVG scales to its column
    width, height = left + n * cell + bar, top + steps * cell + 30
    tick = max(1, math.ceil(max(n, steps) / 8))
    uid = "{uid}"  # filled in below from the drawing itself: equal drawings give equal strings
    out = [f'<svg class="commit-grid" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'style="max-width:{2 * width}px;font:10px sans-serif" xmlns="http://www.w3.org/2000/svg">',
           f'<title>{html.escape(title)}</title>',
           f'<text x="{left}" y="13" font-size="12" fill="currentColor">{html.escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{n * cell}" height="{steps * cell}" fill="#8881"/>',
           f'<defs><marker id="{uid}a" markerWidth="6" markerHeight="6" refX="5" refY="3" orient="auto">'
           '<path d="M0,0 L6,3 L0,6 z" fill="#d62728"/></marker>'
           f'<linearGradient id="{uid}c" x1="0" y1="1" x2="0" y2="0">'
           + "".join(f'<stop offset="{k / (len(_VIRIDIS) - 1):.3f}" stop-color="{c}"/>' for k, c in enumerate(_VIRIDIS))
           + '</linearGradient></defs>']
    for s, (row, labels) in enumerate(zip(grid.z, grid.text)):
        for p, v in enumerate(row):
            if v is not None:
                out.append(f'<rect x="{left + p * cell + 0.5}" y="{top + s * cell + 0.5}" width="{cell - 1}" '
                           f'height="{cell - 1}" fill="{viridis(v)}"><title>{html.escape(labels[p])}</title></rect>')
    for s, source, target in grid.arrows:
        y = top + s * cell + cell / 2
        out.append(f'<line x1="{left + source * cell + cell / 2}" y1="{y}" x2="{left + target * cell + cell / 2}" '
                   f'y2="{y}" stroke="#d62728" stroke-width="2" marker-end="url(#{uid}a)"/>')
    for p in range(0, n, tick):
        out.append(f'<text x="{left + p * cell + cell / 2}" y="{top + steps * cell + 10}" text-anchor="middle" '
                   f'fill="currentColor">{p}</text>')
    for s in range(0, steps, tick):
        out.append(f'<text x="{left - 4}" y="{top + s * cell + cell / 2 + 3}" text-anchor="end" '
                   f'fill="currentColor">{s}</text>')
    x_bar = left + n * cell + 12
    out += [f'<text x="{left + n * cell / 2}" y="{height - 4}" text-anchor="middle" fill="currentColor">'
            'response position</text>',
            f'<text transform="translate(9 {top + steps * cell / 2}) rotate(-90)" text-anchor="middle" '
            'fill="currentColor">step</text>',
            f'<rect x="{x_bar}" y="{top}" width="8" height="{steps * cell}" fill="url(#{uid}c)"/>',
            f'<text x="{x_bar + 11}" y="{top + 7}" fill="currentColor">1</text>',
            f'<text x="{x_bar + 11}" y="{top + steps * cell}" fill="currentColor">0</text>',
            f'<text transform="translate({x_bar + 27} {top + steps * cell / 2}) rotate(90)" text-anchor="middle" '
            'fill="currentColor">confidence</text>',
            '</svg>']
    svg = "".join(out)
    # ids unique per drawing: on a page of several, a hidden one's defs would draw nothing
    return svg.replace("{uid}", "cg" + hashlib.sha1(svg.encode()).hexdigest()[:10])


def commit_heatmap(trace: Trace, token_text: Callable[[int], str] | None = None, title: str | None = None) -> go.Figure:
    """Step x position grid: a cell is coloured at the step its position was committed, by the
    commit's confidence; displacements are marked with arrows from source to target."""
    return commit_grid_figure(commit_grid(trace, token_text), title)


def alignment_heatmap(al: Alignment, target_text: Sequence[str] | None = None, log_scale: bool = False,
                      title: str | None = None) -> go.Figure:
    """Output positions (rows) x alignment states (columns: <slack>, then each target token):
    posterior occupancy as colour, the Viterbi path as a line. Hover shows the emission log-prob."""
    post = al.posterior.tolist()
    emis = al.emission_log_probs.tolist()
    T, S = len(post), len(post[0])
    names = ["<slack>"] + [f"{j}:{target_text[j - 1] if target_text else j}" for j in range(1, S)]
    z = [[math.log10(max(v, 1e-12)) for v in row] for row in post] if log_scale else post
    text = [[f"position {t} · state {names[s]} · posterior {post[t][s]:.3g} · log p(emit) {emis[t][s]:.2f}"
             for s in range(S)] for t in range(T)]
    fig = go.Figure(_heatmap(z, text, x=names, y=list(range(T)), colorscale=SCALE,
                             colorbar=dict(title="log10 posterior" if log_scale else "posterior")))
    fig.add_trace(go.Scatter(x=[names[s] for s in al.path], y=list(range(T)), mode="lines+markers",
                             line=dict(color="#d62728", width=2), marker=dict(size=6), name="Viterbi path",
                             hoverinfo="skip"))
    fig.update_layout(title=title or f"CTC alignment ({al.collapse} collapse), log-likelihood {al.log_likelihood:.2f}",
                      xaxis_title="alignment state", yaxis_title="output position", yaxis_autorange="reversed",
                      margin=dict(l=50, r=20, t=40, b=40), showlegend=False)
    return fig


# ---- evaluation figures ----
# Okabe-Ito colours (colour-blind safe), one per model in results order; markers differ too.
MODEL_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
MODEL_MARKERS = ("circle", "square", "diamond", "triangle-up", "x", "star")


def robustness_figure(results: dict, metric: str = "win_rate", title: str | None = None) -> go.Figure:
    """Win rate (or another per-strength metric) against shift strength, one line per model,
    with bootstrap CIs for the win rate and the Pearson r in the legend (the paper's Figure 4).
    `results` is the JSON written by `python -m train robustness`."""
    fig = go.Figure()
    for i, (name, res) in enumerate(results["models"].items()):
        rows = [r for r in res["by_strength"] if r.get(metric) is not None]
        x = [100 * r["strength"] for r in rows]
        y = [r[metric] for r in rows]
        label = name
        pr = res.get("pearson") or {}
        if metric == "win_rate" and pr.get("r") is not None:
            ci = pr.get("ci")
            label += f"  r = {pr['r']:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")
        error_y = None
        if metric == "win_rate" and all("win_ci" in r for r in rows):
            error_y = dict(type="data", symmetric=False, array=[r["win_ci"][1] - r["win_rate"] for r in rows],
                           arrayminus=[r["win_rate"] - r["win_ci"][0] for r in rows])
        fig.add_trace(go.Scatter(
            x=x, y=y, name=label, mode="lines+markers", error_y=error_y,
            line=dict(color=MODEL_COLOURS[i % len(MODEL_COLOURS)], dash=("solid", "dash", "dot")[i % 3]),
            marker=dict(symbol=MODEL_MARKERS[i % len(MODEL_MARKERS)], size=9),
            hovertemplate=f"{name}<br>r = %{{x}}%<br>{metric} = %{{y:.3f}}<extra></extra>",
        ))
    names = {"win_rate": "win rate vs. the unintervened output", "accuracy": "exact-answer accuracy",
             "edit_similarity": "edit similarity to the reference"}
    n = results.get("n_prompts")
    fig.update_layout(
        title=title or f"Shift robustness: {names.get(metric, metric)}" + (f" ({n} prompts)" if n else ""),
        xaxis_title="intervention strength r (% of generated tokens displaced)",
        yaxis_title=names.get(metric, metric), template="plotly_white", legend=dict(x=0.01, y=0.01),
        margin=dict(l=60, r=20, t=50, b=50),
    )
    if metric == "win_rate":
        fig.add_hline(y=0.5, line=dict(color="grey", dash="dot"))
    return fig


# ---- app figures ----
# Drawn by app.py from plain lists (see mdlm_viz/viewer.py for where the numbers come from).
# Okabe-Ito colours and distinct dash styles, so lines stay apart without colour vision.
APP_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
APP_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def edit_distance_figure(series: dict[str, Sequence[int]], shift_steps: Sequence[int] = (),
                         title: str | None = None) -> go.Figure:
    """Edit distance per step between each model's shifted and clean committed text, one line per
    model; dotted verticals mark the steps after which a shift was applied."""
    fig = go.Figure()
    for i, (name, dist) in enumerate(series.items()):
        fig.add_trace(go.Scatter(
            x=list(range(len(dist))), y=list(dist), name=name, mode="lines+markers",
            line=dict(color=APP_COLOURS[i % len(APP_COLOURS)], dash=APP_DASHES[i % len(APP_DASHES)]),
            marker=dict(size=5), hovertemplate=f"{name}<br>step %{{x}}<br>edit distance %{{y}}<extra></extra>",
        ))
    for s in sorted(set(shift_steps)):
        fig.add_vline(x=s, line=dict(color="grey", dash="dot"))
    fig.update_layout(title=title or "Shifted vs clean run: edit distance of the committed text per step",
                      xaxis_title="step", yaxis_title="edit distance (tokens)", template="plotly_white",
                      margin=dict(l=50, r=20, t=50, b=40), legend=dict(orientation="h", y=-0.2))
    return fig


def shift_loss_figure(reference: Sequence[str], prediction: Sequence[str], ce_per_position: Sequence[float],
                      ctc: dict[str, float | None], title: str | None = None) -> go.Figure:
    """Left: position-wise CE of a shifted prediction (bar t: predicted token vs reference token);
    right: total CE next to the CTC loss of the same prediction under each collapse map."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.68, 0.32], horizontal_spacing=0.12,
                        subplot_titles=("CE per position", "whole sequence"))
    labels = [f"{t}: {p!r} vs {r!r}" for t, (p, r) in enumerate(zip(prediction, reference))]
    wrong = [p != r for p, r in zip(prediction, reference)]
    fig.add_trace(go.Bar(
        x=labels, y=list(ce_per_position), name="CE",
        marker=dict(color=[APP_COLOURS[1] if w else APP_COLOURS[0] for w in wrong],
                    pattern=dict(shape=["/" if w else "" for w in wrong])),
        hovertemplate="%{x}<br>CE %{y:.2f} nats<extra></extra>",
    ), row=1, col=1)
    names = ["CE (sum)"] + [f"CTC ({k})" for k in ctc]
    values = [sum(ce_per_position)] + [v if v is not None else 0.0 for v in ctc.values()]
    text = [f"{values[0]:.2f}"] + ["no alignment" if v is None else f"{v:.2f}" for v in ctc.values()]
    fig.add_trace(go.Bar(x=names, y=values, text=text, textposition="outside", name="total",
                         marker=dict(color=[APP_COLOURS[1]] + [APP_COLOURS[2]] * len(ctc),
                                     pattern=dict(shape=["/"] + [""] * len(ctc))),
                         hovertemplate="%{x}: %{text}<extra></extra>"), row=1, col=2)
    fig.update_yaxes(title_text="loss (nats)", row=1, col=1)
    fig.update_yaxes(range=[0, 1.2 * max(values + [1.0])], row=1, col=2)  # room for the value labels
    fig.update_layout(title=title or "Why CE punishes a shift: hatched = wrong at that position",
                      template="plotly_white", showlegend=False, margin=dict(l=50, r=20, t=60, b=80))
    return fig


def difference_map_figure(clean: Trace, shifted: Trace, title: str | None = None) -> go.Figure:
    """The cascade: step x position, a cell filled where the shifted run's canvas differs from the
    clean run's after that step (orange: another token, grey: committed in one run and still
    masked in the other, blue: <slack> the shifted run committed there), the shift itself marked
    with an arrow. One look shows whether the move
    stayed local (CTC absorbing it) or spread to the right (CE cascading)."""
    steps = min(len(clean.steps), len(shifted.steps))
    z = [[None] * clean.gen_length for _ in range(steps)]
    text = [[""] * clean.gen_length for _ in range(steps)]
    for s in range(steps):
        a, b = clean.canvas_at(s), shifted.canvas_at(s)
        for p, (x, y) in enumerate(zip(a, b)):
            if x != y:
                is_slack = shifted.slack_id is not None and y == shifted.slack_id
                pending = clean.mask_id in (x, y)  # committed in one run, still masked in the other
                z[s][p] = 0.0 if is_slack else 0.5 if pending else 1.0
                shown = ["masked" if t == clean.mask_id else repr(clean.token_text(t)) for t in (x, y)]
                text[s][p] = (f"step {s} · pos {p} · clean {shown[0]} · shifted {shown[1]}"
                              + (" · <slack> absorbing the move" if is_slack else ""))
    # Okabe-Ito: blue <slack>, grey committed in one run only, orange a different token
    colours = [[0.0, "#56B4E9"], [0.33, "#56B4E9"], [0.33, "#c8c8c8"], [0.67, "#c8c8c8"], [0.67, "#E69F00"],
               [1.0, "#E69F00"]]
    fig = go.Figure(_heatmap(z, text, colorscale=colours, zmin=0, zmax=1, xgap=1, ygap=1, showscale=False))
    for d in shifted.displacements:
        fig.add_annotation(x=d.target, y=d.step, ax=d.source, ay=d.step, xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=2, arrowcolor="#D55E00", text="")
    key = "orange: another token · grey: in one run only<br>blue: ‹slack› · arrow: the shift"  # fits a narrow panel
    fig.update_layout(title=f"{title or 'Where the shifted run differs'}<br><sup>{key}</sup>",
                      xaxis_title="response position", yaxis_title="step", margin=dict(l=50, r=20, t=80, b=40),
                      xaxis_range=[-0.5, clean.gen_length - 0.5], yaxis_range=[steps - 0.5, -0.5])
    return fig
