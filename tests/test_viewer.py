"""The app's pure logic: canvas HTML, divergence, CE vs CTC on a shift, alignment emissions, figures."""

import math
import re

import pytest
import torch

import mdlm_viz as mv
from mdlm_viz import alignment, divergence, figures, shift_loss, stats, viewer
from mdlm_viz.trace import Displacement, Step, Trace

MASK, SLACK, EOS = 9, 7, 8
TEXT = {1: "one", 2: "two", 3: " ", 4: "\n"}.get


def token_text(t):
    return TEXT(t) or f"t{t}"


def hand_trace() -> Trace:
    """6 positions, 3 steps: a commit, a commit moved right by a shift, then slack/EOS/space."""
    return Trace(prompt=[5, 6], gen_length=6, steps_total=3, block_length=6, mask_id=MASK, settings={},
                 eos_id=EOS, slack_id=SLACK, collapse="slack", steps=[
                     Step(0, 0, [1, MASK, MASK, MASK, MASK, MASK], [0], [1], [0.9],
                          candidates=[(0, [1, 2], [0.9, 0.05]), (1, [2, 1], [0.6, 0.1])]),
                     Step(1, 0, [1, MASK, 2, MASK, MASK, MASK], [1], [2], [0.6], candidates=[(1, [2, 3], [0.6, 0.2])],
                          displacements=[Displacement(1, 1, 2, 2)]),
                     Step(2, 0, [1, SLACK, 2, 3, EOS, EOS], [1, 3, 4, 5], [SLACK, 3, EOS, EOS], [0.5, 0.4, 0.3, 0.2]),
                 ])


def spans(html: str) -> list[tuple[str, str, str]]:
    """(classes, data-state, shown text) of each token span."""
    return re.findall(r'<span class="([^"]*)" data-pos="\d+" data-state="(\w+)"[^>]*>([^<]*)</span>', html)


def test_each_token_state_differs_in_text_and_in_style():
    tr = hand_trace()
    first = spans(viewer.canvas_html(tr, 0, token_text))
    assert [s[1] for s in first] == ["new", "masked", "masked", "masked", "masked", "masked"]
    assert first[0][2] == "one" and "mv-new" in first[0][0] and first[1][2] == viewer.MASK_GLYPH
    moved = spans(viewer.canvas_html(tr, 1, token_text))
    assert moved[0][1] == "earlier" and "mv-new" not in moved[0][0]
    assert moved[1][1] == "masked"  # the shift vacated position 1 ...
    assert moved[2][2] == "→two" and "mv-moved" in moved[2][0]  # ... and moved its token right
    last = spans(viewer.canvas_html(tr, 2, token_text, differs=[3]))
    assert [s[1] for s in last] == ["earlier", "slack", "earlier", "new", "eos", "eos"]
    assert last[1][2] == viewer.SLACK_GLYPH.replace("‹", "‹") and last[4][2] == "EOS"
    assert last[3][2] == "␣" and "mv-differs" in last[3][0]  # a space token stays visible
    assert len({s[0] for s in last}) >= 4  # distinct styles too


def test_hover_gives_commit_step_confidence_and_top_k():
    html = viewer.canvas_html(hand_trace(), 0, token_text)
    titles = re.findall(r'title="([^"]*)"', html)
    assert "committed at step 0 · confidence 0.900" in titles[0]
    assert "top-2 at this step: &#x27;two&#x27; 0.60, &#x27;one&#x27; 0.10" in titles[1]
    assert 'style="background: rgba(0, 114, 178, 0.83)' in html  # shaded by p(committed token) = 0.9


def test_texts_strip_slack_from_the_answer_but_keep_it_in_the_raw_canvas():
    tr = hand_trace()
    assert viewer.response_text(tr, lambda ids: "|".join(map(str, ids))) == "1|2|3"
    assert viewer.raw_canvas_text(tr, token_text) == "one<slack>two <EOS>×2"
    assert viewer.raw_canvas_text(tr, token_text, step=0) == "one" + viewer.MASK_GLYPH * 5


def test_divergence_of_hand_made_runs():
    clean = hand_trace()
    shifted = hand_trace()
    shifted.steps[2].canvas = [1, SLACK, SLACK, 2, EOS, EOS]
    div = divergence.divergence(clean, shifted)
    assert div.first_difference == [None, None, 2]
    assert div.edit_distance == [0, 0, 1]  # "1 2 3" vs "1 2"
    assert div.final_differences == [2, 3] and div.absorbing_slack == [2]
    assert "absorbed it at position(s) 2" in divergence.divergence_summary(div)
    assert divergence.divergence_summary(divergence.divergence(clean, clean)).startswith("identical")


def test_edit_distance_and_units():
    assert stats.edit_distance([1, 2, 3], [1, 3]) == 1
    assert stats.edit_distance([], [4, 5]) == 2 and stats.edit_distance([1, 2], [2, 1]) == 2
    assert shift_loss.split_units("100") == ["1", "0", "0"] and shift_loss.split_units(" the cat ") == ["the", "cat"]


def test_shift_costs_ce_every_later_position_but_ctc_with_slack_almost_nothing():
    eps = 0.1
    losses = shift_loss.shift_losses(list("1234567"), 2, epsilon=eps)
    assert losses.prediction == ["1", "2", "<slack>", "3", "4", "5", "6", "7"]
    assert losses.reference == list("1234567") + ["EOS"]
    wrong = -math.log(eps / (7 + 2 - 1))
    assert losses.ce_per_position[:2] == pytest.approx([-math.log(1 - eps)] * 2)
    assert losses.ce_per_position[2:] == pytest.approx([wrong] * 6)
    assert losses.ctc["slack"] < 1.0 < 6 * wrong / 5 < losses.ce_total
    assert losses.ctc["standard"] < 1.0  # no repeats: both maps accept the slack in the hole


def test_standard_collapse_loses_a_repeated_digit_the_slack_collapse_keeps():
    losses = shift_loss.shift_losses(list("100"), 1)  # "1 <slack> 0 0": standard merges the 0s into "10"
    assert losses.ctc["slack"] < 1.0 < 3.0 < losses.ctc["standard"]
    repeat = shift_loss.shift_losses(list("123"), 1, fill="repeat")  # "1 2 2 3": only merging repeats spells it
    assert repeat.ctc["standard"] < 1.0 < 3.0 < repeat.ctc["slack"]
    with pytest.raises(ValueError, match="position 3 must be in 0..2"):
        shift_loss.shift_losses(list("123"), 3)
    with pytest.raises(ValueError, match="empty"):
        shift_loss.shift_losses([], 0)


def test_a_real_decode_renders_every_step_and_its_shift_diverges_from_the_shift_on(tiny_model):
    prompt = torch.tensor([[10, 11, 12]])
    kw = dict(steps=8, gen_length=16, block_length=8, record_trace=True)
    clean = mv.generate(tiny_model, prompt, **kw).trace
    step, pos = next((s.index, p) for s in clean.steps[:3] for p in range(7)
                     if s.canvas[p] != clean.mask_id and s.canvas[p + 1] == clean.mask_id)
    shifted = mv.generate(tiny_model, prompt, interventions=[mv.Shift(step, pos, 1)], **kw).trace
    for s in range(8):
        html = viewer.canvas_html(shifted, s, str)
        assert html.count("data-pos=") == 16 and f'data-step="{s}"' in html
    div = divergence.divergence(clean, shifted)
    assert div.first_difference[:step] == [None] * step and div.first_difference[step] == pos
    assert len(div.edit_distance) == 8


def test_emissions_at_commit_are_the_models_distributions_when_each_position_was_decided(tiny_model):
    trace = mv.generate(tiny_model, torch.tensor([[10, 11, 12]]), steps=4, gen_length=8, block_length=8,
                        record_trace=True).trace
    em = alignment.emissions_at_commit(tiny_model, trace, chunk=2)
    assert em.shape == (8, 300) and torch.allclose(em.logsumexp(-1), torch.zeros(8), atol=1e-4)
    p = trace.steps[2].positions[0]
    with torch.no_grad():
        x = torch.tensor([trace.prompt + trace.canvas_at(1)])
        expected = torch.log_softmax(tiny_model(x).logits[0, 3 + p].float(), -1)
    assert torch.allclose(em[p], expected, atol=1e-5)
    assert alignment.alignment_length(trace, 3) >= 3


def test_app_figures_draw_the_numbers_they_are_given():
    fig = figures.edit_distance_figure({"ce": [0, 2, 3], "ctc": [0, 1, 0]}, shift_steps=[1])
    assert [list(t.y) for t in fig.data] == [[0, 2, 3], [0, 1, 0]] and len(fig.layout.shapes) == 1
    losses = shift_loss.shift_losses(list("100"), 1)
    fig = figures.shift_loss_figure(losses.reference, losses.prediction, losses.ce_per_position, losses.ctc)
    per_position, totals = fig.data
    assert list(per_position.y) == pytest.approx(losses.ce_per_position)
    assert list(totals.x) == ["CE (sum)", "CTC (slack)", "CTC (standard)"]
    assert totals.y[1] == pytest.approx(losses.ctc["slack"])


def test_shiftable_tokens_are_marked_and_the_others_explained():
    from mdlm_viz.trace import Step, Trace
    from mdlm_viz import viewer as vw

    M, E = 9, 1
    tr = Trace(prompt=[0], gen_length=6, steps_total=6, block_length=3, mask_id=M, settings={}, eos_id=E)
    canvases = ([4, M, M, M, M, M], [4, M, 5, M, M, M], [4, 6, 5, M, M, M], [4, 6, 5, E, M, M],
                [4, 6, 5, E, 7, M], [4, 6, 5, E, 7, 8])
    for i, c in enumerate(canvases):
        tr.steps.append(Step(index=i, block=i // 3, canvas=list(c), positions=[], tokens=[], confidences=[]))
    assert vw.shiftable_at(tr, 0) == [0]
    assert vw.shiftable_at(tr, 1) == [0]  # 5 sits at the block's edge
    assert vw.shiftable_at(tr, 2) == []  # the block is full
    assert vw.shiftable_at(tr, 3) == []  # EOS moves no text
    assert vw.shiftable_at(tr, 4) == [4]
    assert vw.shiftable_at(tr, 5) == []  # after the last step
    html_ = vw.canvas_html(tr, 0, str, shiftable=vw.shiftable_at(tr, 0))
    assert html_.count("mv-shiftable") == 1 and 'mv-shiftable" data-pos="0"' in html_
    assert vw.why_not_shiftable(tr, 0, 0) is None
    assert "still masked" in vw.why_not_shiftable(tr, 0, 1)
    assert "edge of the block" in vw.why_not_shiftable(tr, 1, 2)
    assert "already committed" in vw.why_not_shiftable(tr, 2, 0)
    assert "EOS padding" in vw.why_not_shiftable(tr, 4, 3)
    assert "last step" in vw.why_not_shiftable(tr, 5, 4)
    assert "outside the answer" in vw.why_not_shiftable(tr, 0, 9)
