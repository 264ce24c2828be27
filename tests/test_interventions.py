"""Positional-shift interventions: explicit shifts, random strengths, pairing, logging."""

import pytest
import torch

import mdlm_viz as mv

PROMPT = torch.tensor([[10, 11, 12, 13, 14]])
KW = dict(steps=16, gen_length=32, block_length=8)


def test_explicit_shift_moves_the_token_and_masks_its_old_place(tiny_model):
    clean = mv.generate(tiny_model, PROMPT, record_trace=True, **KW).trace
    step = 1
    canvas = clean.canvas_at(step)
    mask = clean.mask_id
    pos = next(p for p in range(7) if canvas[p] != mask and canvas[p + 1] == mask)
    shifted = mv.generate(tiny_model, PROMPT, record_trace=True, interventions=[mv.Shift(step, pos, +1)], **KW).trace
    # identical up to the shift (same seed, same model): the runs pair
    assert shifted.steps[:step] == clean.steps[:step]
    after = shifted.steps[step]
    assert after.canvas[pos] == mask and after.canvas[pos + 1] == canvas[pos]
    assert after.displacements == [mv.Displacement(step, pos, pos + 1, canvas[pos])]
    assert shifted.displacements == after.displacements
    assert mask not in shifted.final  # the vacated position was filled later
    assert shifted.commit_steps()[pos + 1] == step


def test_left_shift(tiny_model):
    clean = mv.generate(tiny_model, PROMPT, record_trace=True, **KW).trace
    canvas = clean.canvas_at(0)
    pos = next(p for p in range(1, 8) if canvas[p] != clean.mask_id and canvas[p - 1] == clean.mask_id)
    g = mv.generate(tiny_model, PROMPT, record_trace=True, interventions=[mv.Shift(0, pos, -1)], **KW)
    assert g.trace.steps[0].canvas[pos - 1] == canvas[pos]


def test_impossible_shifts_are_refused_with_a_reason(tiny_model):
    clean = mv.generate(tiny_model, PROMPT, record_trace=True, **KW).trace
    masked = clean.canvas_at(0).index(clean.mask_id)
    with pytest.raises(ValueError, match="must be committed"):
        mv.generate(tiny_model, PROMPT, interventions=[mv.Shift(0, masked, +1)], **KW)
    with pytest.raises(ValueError, match="last step"):
        mv.generate(tiny_model, PROMPT, interventions=[mv.Shift(15, 3, +1)], **KW)
    with pytest.raises(ValueError, match="outside the response"):
        mv.generate(tiny_model, PROMPT, interventions=[mv.Shift(0, 40, +1)], **KW)
    with pytest.raises(ValueError, match="direction"):
        mv.Shift(0, 1, 2)
    with pytest.raises(ValueError, match="fraction"):
        mv.RandomShifts(5.0)


def test_strength_zero_is_the_unintervened_run(tiny_model):
    torch.manual_seed(1)
    a = mv.generate(tiny_model, PROMPT, temperature=0.7, **KW)
    torch.manual_seed(1)
    b = mv.generate(tiny_model, PROMPT, temperature=0.7, interventions=[mv.RandomShifts(0.0, seed=5)], **KW)
    assert torch.equal(a.tokens, b.tokens)


def test_random_shifts_are_deterministic_counted_and_logged(tiny_model):
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append(mv.generate(tiny_model, PROMPT, record_trace=True, temperature=0.5,
                                interventions=[mv.RandomShifts(0.25, seed=7)], **KW))
    a, b = runs
    assert torch.equal(a.tokens, b.tokens) and a.trace.displacements == b.trace.displacements
    assert len(a.trace.displacements) + a.unapplied_shifts[0] == 8  # 0.25 * 32 tokens
    assert len(a.trace.displacements) >= 7
    assert a.displacements[0] == a.trace.displacements  # kept on the Generation, trace or not
    for d in a.trace.displacements:
        assert d.target == d.source + 1
    assert a.trace.mask_id not in a.trace.final


def test_random_shifts_do_not_consume_the_sampling_noise(tiny_model):
    """Pairing: the intervened run draws exactly the same Gumbel noise, so the step before the
    first shift is identical."""
    torch.manual_seed(0)
    clean = mv.generate(tiny_model, PROMPT, record_trace=True, temperature=0.9, **KW).trace
    torch.manual_seed(0)
    hit = mv.generate(tiny_model, PROMPT, record_trace=True, temperature=0.9,
                      interventions=[mv.RandomShifts(0.1, seed=3)], **KW).trace
    first = hit.displacements[0].step
    assert hit.steps[:first] == clean.steps[:first]
    assert hit.final != clean.final or first == len(hit.steps) - 1


def test_batched_random_shifts_plan_each_sequence(tiny_model):
    batch = torch.tensor([[10, 11, 12], [13, 14, 15]])
    g = mv.generate(tiny_model, batch, record_trace=True, interventions=[mv.RandomShifts(0.2, seed=1, directions=(1, -1))], **KW)
    assert len(g.traces) == 2
    for tr in g.traces:
        assert tr.displacements and tr.mask_id not in tr.final
        assert {d.target - d.source for d in tr.displacements} <= {1, -1}


def test_paired_runs_consume_the_same_global_random_numbers(tiny_model):
    states = []
    for iv in ([], [mv.RandomShifts(0.2, seed=3)]):
        torch.manual_seed(0)
        g = mv.generate(tiny_model, PROMPT, temperature=0.9, remasking="random", interventions=iv, **KW)
        states.append(torch.get_rng_state())
    assert torch.equal(states[0], states[1])
    assert g.displacements[0]


def test_random_shifts_reach_the_requested_strength_with_blocks(tiny_model):
    g = mv.generate(tiny_model, PROMPT, interventions=[mv.RandomShifts(0.25, seed=2)],
                    steps=16, gen_length=32, block_length=8)
    assert len(g.displacements[0]) == 8 and g.unapplied_shifts == [0]
    one_step_blocks = mv.generate(tiny_model, PROMPT, interventions=[mv.RandomShifts(0.25, seed=2)],
                                  steps=4, gen_length=32, block_length=8)
    assert one_step_blocks.displacements == [[]] and one_step_blocks.unapplied_shifts == [8]


def test_trace_replay_is_consistent_with_shifts_and_merges():
    """Replaying commits, merges and displacements step by step reproduces each recorded canvas."""
    from tests.test_sampling import ScriptedModel
    cfg = mv.LLaDAConfig.small(vocab_size=60, slack_token_id=40)
    cfg.ctc_collapse = "standard"
    script = [0] * 5 + [50, 50, 51, 52, 52, 53, 54, 54]
    model = ScriptedModel(cfg, script, [1.0] * 5 + [3, 9, 2, 8, 4, 7, 5, 6])
    g = mv.generate(model, PROMPT, steps=8, gen_length=8, block_length=8, record_trace=True,
                    interventions=[mv.Shift(1, 1, -1)])
    tr = g.trace
    assert tr.displacements
    for st in tr.steps:
        prev = tr.canvas_at(st.index - 1)
        for p, t in zip(st.positions, st.tokens):
            prev[p] = t
        for d in st.displacements:
            prev[d.target], prev[d.source] = prev[d.source], tr.mask_id
        for p in st.merged:
            prev[p] = tr.slack_id
        assert st.canvas == prev
    assert tr.mask_id not in tr.final


def test_random_shifts_move_content_not_eos_or_slack(tiny_model):
    # Make two ids very likely everywhere, then call them EOS and slack: no random shift may pick them.
    torch.manual_seed(0)
    out = mv.generate(tiny_model, PROMPT, record_trace=True, interventions=[mv.RandomShifts(0.5, seed=3)], **KW)
    common = torch.bincount(out.tokens[0, PROMPT.shape[1]:]).topk(2).indices.tolist()
    torch.manual_seed(0)
    out = mv.generate(tiny_model, PROMPT, record_trace=True, eos_id=common[0], slack_id=common[1],
                      interventions=[mv.RandomShifts(0.5, seed=3)], **KW)
    moved = [d.token for d in out.trace.displacements]
    assert moved and not set(moved) & set(common)


def test_a_random_shift_with_no_eligible_token_waits_for_the_next_step():
    from mdlm_viz.interventions import ShiftPlanner
    M, EOS = 9, 7
    planner = ShiftPlanner([mv.RandomShifts(0.5, seed=0)], batch_size=1, prompt_length=2, gen_length=4,
                           total_steps=4, skip_ids=(EOS,))
    planner.due = [{0: 1}]  # one shift due after step 0
    x = torch.tensor([[1, 2, M, M, M, EOS]])  # only EOS committed: nothing may move
    assert planner.apply(x, 0, 6, M, [[5]]) == [[]] and planner.unapplied == [1]
    x = torch.tensor([[1, 2, 3, M, M, EOS]])  # a content token with a masked right neighbour
    assert planner.apply(x, 1, 6, M, [[2]]) == [[(2, 3, 3)]] and planner.unapplied == [0]
    assert x.tolist() == [[1, 2, M, 3, M, EOS]]
