"""Plotly figures drawn from plain data: a `Trace` (when and how confidently each position was
committed) and a CTC `Alignment` (posterior occupancy with the Viterbi path on top).

Pure functions from data to `go.Figure`; the app, notebooks and the evaluation call these.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import plotly.graph_objects as go

from .ctc import Alignment
from .trace import Trace

# Colour-blind-safe sequential scale (viridis) for confidences and posteriors.
SCALE = "Viridis"


def _label(token_text: Callable[[int], str] | None, tok: int) -> str:
    return token_text(tok) if token_text else str(tok)


def commit_heatmap(trace: Trace, token_text: Callable[[int], str] | None = None, title: str | None = None) -> go.Figure:
    """Step x position grid: a cell is coloured at the step its position was committed, by the
    commit's confidence; displacements are marked with arrows from source to target."""
    steps, n = len(trace.steps), trace.gen_length
    z = [[None] * n for _ in range(steps)]
    text = [[""] * n for _ in range(steps)]
    for st in trace.steps:
        for p, tok, c in zip(st.positions, st.tokens, st.confidences):
            z[st.index][p] = c
            text[st.index][p] = f"step {st.index} · pos {p} · {_label(token_text, tok)!r} · conf {c:.3f}"
        for p in st.merged:
            text[st.index][p] += " · merged into <slack>"
    fig = go.Figure(go.Heatmap(z=z, text=text, hoverinfo="text", colorscale=SCALE, zmin=0,
                               colorbar=dict(title="confidence"), xgap=1, ygap=1))
    for d in trace.displacements:
        fig.add_annotation(x=d.target, y=d.step, ax=d.source, ay=d.step, xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=2, arrowcolor="#d62728", text="")
    fig.update_layout(title=title or "When each position was committed", xaxis_title="response position",
                      yaxis_title="step", yaxis_autorange="reversed", margin=dict(l=50, r=20, t=40, b=40))
    return fig


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
    fig = go.Figure(go.Heatmap(z=z, x=names, y=list(range(T)), text=text, hoverinfo="text", colorscale=SCALE,
                               colorbar=dict(title="log10 posterior" if log_scale else "posterior")))
    fig.add_trace(go.Scatter(x=[names[s] for s in al.path], y=list(range(T)), mode="lines+markers",
                             line=dict(color="#d62728", width=2), marker=dict(size=6), name="Viterbi path",
                             hoverinfo="skip"))
    fig.update_layout(title=title or f"CTC alignment ({al.collapse} collapse), log-likelihood {al.log_likelihood:.2f}",
                      xaxis_title="alignment state", yaxis_title="output position", yaxis_autorange="reversed",
                      margin=dict(l=50, r=20, t=40, b=40), showlegend=False)
    return fig
