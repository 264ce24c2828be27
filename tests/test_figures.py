"""Figures are built from plain data and show what the data says."""

import math

import torch

import mdlm_viz as mv
from mdlm_viz import ctc, figures


def cells(z) -> list[list[float | None]]:
    """A heatmap's z as lists, empty cells (NaN in the array plotly gets) as None."""
    return [[None if math.isnan(v) else float(v) for v in row] for row in z]


def test_commit_heatmap_marks_each_commit_and_each_displacement(tiny_model):
    g = mv.generate(tiny_model, torch.tensor([[10, 11, 12]]), steps=8, gen_length=16, block_length=8,
                    record_trace=True, interventions=[mv.RandomShifts(0.2, seed=1)])
    tr = g.trace
    fig = figures.commit_heatmap(tr, token_text=lambda t: f"t{t}")
    z = cells(fig.data[0].z)
    assert len(z) == 8 and len(z[0]) == 16
    filled = sum(v is not None for row in z for v in row)
    assert filled == sum(len(s.positions) for s in tr.steps)
    assert len(fig.layout.annotations) == len(tr.displacements) > 0


def test_equal_decodes_share_one_heatmap_figure_and_different_ones_do_not(tiny_model):
    """The app hands visitors with the same decode one figure (built once); a different decode,
    even one differing only in a shift, gets its own, equal to what commit_heatmap draws."""
    import copy

    from ui.drawing import heatmap

    def decode(shifts=()):
        tr = mv.generate(tiny_model, torch.tensor([[10, 11, 12]]), steps=8, gen_length=16, block_length=8,
                         record_trace=True, interventions=list(shifts)).trace
        return tr.with_token_texts(lambda t: f"t{t}")

    clean, again, shifted = decode(), decode(), decode([mv.RandomShifts(0.3, seed=2)])
    assert shifted.displacements and figures.commit_grid(clean) != figures.commit_grid(shifted)
    assert hash(figures.commit_grid(clean)) == hash(figures.commit_grid(copy.deepcopy(again)))
    first = heatmap(clean, "ce: commit step")
    assert heatmap(again, "ce: commit step") is first
    assert heatmap(again, "ctc: commit step") is not first  # the title is part of the figure
    other = heatmap(shifted, "ce: commit step")
    assert other is not first and other.count("<line ") == len(shifted.displacements)


def test_commit_svg_draws_what_the_plotly_heatmap_draws(tiny_model):
    """The app's SVG heatmap: one coloured cell per commit, at its step and position, with the same
    hover text as the plotly figure (escaped), one arrow per displacement, a 0-1 confidence scale."""
    import re
    from html import unescape

    g = mv.generate(tiny_model, torch.tensor([[10, 11, 12]]), steps=8, gen_length=16, block_length=8,
                    record_trace=True, interventions=[mv.RandomShifts(0.2, seed=1)])
    tr = g.trace
    grid = figures.commit_grid(tr, lambda t: f"<t{t}>")
    svg = figures.commit_grid_svg(grid, "ce & co")
    cellsvg = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="11" height="11" fill="(#[0-9a-f]{6})">'
                         r"<title>([^<]*)</title></rect>", svg)
    want = [(s, p, v, text) for s, (row, texts) in enumerate(zip(grid.z, grid.text))
            for p, (v, text) in enumerate(zip(row, texts)) if v is not None]
    assert len(cellsvg) == len(want) == sum(len(s.positions) for s in tr.steps)
    for (x, y, colour, title), (s, p, v, text) in zip(cellsvg, want):
        assert (float(x), float(y)) == (30 + p * 12 + 0.5, 22 + s * 12 + 0.5)
        assert colour == figures.viridis(v) and unescape(title) == text and "<t" in text
    assert svg.count("<line ") == len(tr.displacements) > 0
    assert "ce &amp; co" in svg and "ce & co" not in svg
    assert figures.viridis(0.0) == "#440154" and figures.viridis(1.0) == "#fde725"
    assert figures.viridis(-3) == "#440154" and figures.viridis(0.5) not in ("#440154", "#fde725")


def test_alignment_heatmap_draws_the_posterior_and_the_viterbi_path():
    torch.manual_seed(0)
    lp = torch.log_softmax(torch.randn(7, 6), -1)
    for collapse in ("slack", "standard"):
        al = ctc.alignment(lp, [1, 0, 0], slack_id=5, collapse=collapse)
        fig = figures.alignment_heatmap(al, target_text=["1", "0", "0"], log_scale=collapse == "standard")
        heat, path = fig.data
        assert len(heat.z) == 7 and len(heat.z[0]) == 4
        assert list(path.x) == [heat.x[s] for s in al.path]
        assert collapse in fig.layout.title.text


def test_the_cascade_map_tells_another_token_from_a_pending_one_and_from_slack():
    from mdlm_viz import divergence, figures
    from mdlm_viz.trace import Displacement, Step, Trace

    M, S = 9, 7  # mask and <slack> ids

    def trace(canvases, moves=()):
        steps = [Step(index=i, block=0, canvas=c, positions=[], tokens=[], confidences=[])
                 for i, c in enumerate(canvases)]
        for d in moves:
            steps[d.step].displacements.append(d)
        return Trace(prompt=[1], gen_length=4, steps_total=len(canvases), block_length=4, mask_id=M, settings={},
                     steps=steps,
                     slack_id=S, token_texts={1: "a", 2: "b", 3: "c", S: "<slack>"})

    clean = trace([[1, M, M, M], [1, 2, M, M], [1, 2, 3, M]])
    shifted = trace([[1, M, M, M], [1, M, 2, M], [1, S, 2, 3]], [Displacement(1, 1, 2, 2)])
    assert divergence.difference_map(clean, shifted) == [[False] * 4, [False, True, True, False],
                                                         [False, True, True, True]]
    assert divergence.first_divergence(clean, shifted) == (1, 1)
    z = cells(figures.difference_map_figure(clean, shifted).data[0].z)
    assert list(z[0]) == [None] * 4
    assert list(z[1]) == [None, 0.5, 0.5, None]  # committed in one run only, either way round
    assert list(z[2]) == [None, 0.0, 1.0, 0.5]  # <slack>, another token, pending
