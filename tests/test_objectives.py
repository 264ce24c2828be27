"""Training objectives: LLaDA's masking and CE losses, slack insertion, the CTC term."""

import random

import pytest
import torch

from mdlm_viz import ctc
from train import objectives as obj

MASK, SLACK = 9, 8


def test_forward_mask_protects_the_prompt_and_follows_p_mask():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 8, (64, 400), generator=g)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, :50] = False
    n = obj.forward_mask(ids, mask_id=MASK, maskable=maskable, generator=g)
    assert not n.masked[:, :50].any()
    assert torch.equal(n.noisy[n.masked], torch.full((int(n.masked.sum()),), MASK))
    assert torch.equal(n.noisy[~n.masked], ids[~n.masked])
    assert ((n.p_mask >= 1e-3) & (n.p_mask <= 1)).all()
    frac = n.masked[:, 50:].float().mean(1)
    assert torch.allclose(frac, n.p_mask.squeeze(1), atol=0.12)  # 350 Bernoulli draws per row


def _fixed_case():
    torch.manual_seed(0)
    log_probs = torch.log_softmax(torch.randn(2, 4, 5), -1)
    targets = torch.tensor([[1, 2, 3, 4], [0, 1, 2, 3]])
    masked = torch.tensor([[True, False, True, False], [False, False, True, True]])
    p_mask = torch.tensor([[0.5], [0.25]])
    return log_probs, targets, masked, p_mask


def test_pretrain_loss_equals_a_hand_computed_value():
    lp, tg, m, p = _fixed_case()
    want = (-(lp[0, 0, 1] + lp[0, 2, 3]) / 0.5 - (lp[1, 2, 2] + lp[1, 3, 3]) / 0.25) / (2 * 4)
    torch.testing.assert_close(obj.pretrain_loss(lp, tg, m, p), want)


def test_sft_loss_equals_a_hand_computed_value():
    lp, tg, m, p = _fixed_case()
    ans = torch.tensor([3, 2])
    want = (-(lp[0, 0, 1] + lp[0, 2, 3]) / 0.5 / 3 - (lp[1, 2, 2] + lp[1, 3, 3]) / 0.25 / 2) / 2
    torch.testing.assert_close(obj.sft_loss(lp, tg, m, p, ans), want)


@pytest.mark.parametrize("collapse_map", ["slack", "standard"])
@pytest.mark.parametrize("response", [[1, 0, 0], [3, 3, 3, 4], [5, 6, 7, 7, 1, 0, 0, 0], [2]])
@pytest.mark.parametrize("placement", obj.PLACEMENTS)
def test_slack_insertion_keeps_the_collapse_equal_to_the_target(collapse_map, response, placement):
    rng = random.Random(0)
    for ratio in (0.0, 0.2, 0.5):
        aug = obj.insert_slack(response, SLACK, ratio, rng, collapse=collapse_map, placement=placement)
        assert ctc.collapse(aug, SLACK, collapse_map) == response
        extra = sum(a == b for a, b in zip(response, response[1:])) if collapse_map == "standard" else 0
        assert aug.count(SLACK) == round(ratio * len(response)) + extra


def test_one_gap_placement_puts_every_slack_in_a_single_run():
    rng = random.Random(1)
    response = [1, 2, 3, 4, 5, 6, 7, 10, 11, 12]  # no SLACK among them
    for _ in range(20):
        aug = obj.insert_slack(response, SLACK, 0.5, rng, placement="one-gap")
        where = [i for i, t in enumerate(aug) if t == SLACK]
        assert len(where) == 5 and where == list(range(where[0], where[0] + 5))  # one contiguous run
    with pytest.raises(ValueError, match="placement"):
        obj.insert_slack(response, SLACK, 0.5, rng, placement="edges")


def test_ctc_term_reads_the_canvas_in_place_and_matches_the_sliced_loss():
    """Forcing <slack> before the region equals computing CTC on the region alone (free emissions)."""
    torch.manual_seed(1)
    B, L, V = 2, 12, 10
    lp = torch.log_softmax(torch.randn(B, L, V, dtype=torch.float64), -1)
    noisy = torch.full((B, L), MASK)
    masked = torch.ones(B, L, dtype=torch.bool)
    start, length = torch.tensor([3, 5]), torch.tensor([7, 6])
    targets = torch.tensor([[1, 2, 2, 3], [4, 5, 6, 0]])
    tlen = torch.tensor([4, 3])
    loss, feasible = obj.ctc_term(lp, noisy, masked, start, length, targets, tlen, slack_id=SLACK, emission="free")
    per = [ctc.slack_ctc_loss(lp[b:b + 1, start[b]:start[b] + length[b]], targets[b:b + 1, :tlen[b]],
                              [int(length[b])], [int(tlen[b])], slack_id=SLACK) for b in range(B)]
    torch.testing.assert_close(loss, torch.stack(per).mean())
    assert feasible.all()


def test_ctc_gradient_reaches_the_slack_logits_and_skips_forced_positions():
    torch.manual_seed(2)
    B, L, V = 1, 10, 10
    logits = torch.randn(B, L, V, requires_grad=True)
    response = [1, 2, 2, 3]
    aug = obj.insert_slack(response, SLACK, 0.5, random.Random(3))
    canvas = torch.tensor([[4, 5] + aug + [0] * (L - 2 - len(aug))])
    masked = torch.zeros(B, L, dtype=torch.bool)
    masked[0, 2:2 + len(aug):2] = True  # half the region masked, half visible
    noisy = torch.where(masked, MASK, canvas)
    loss, feasible = obj.ctc_term(obj.log_softmax32(logits), noisy, masked, torch.tensor([2]),
                                  torch.tensor([len(aug)]), torch.tensor([response]), torch.tensor([4]),
                                  slack_id=SLACK)
    loss.backward()
    assert feasible.all() and torch.isfinite(loss)
    g = logits.grad[0]
    assert g[masked[0], SLACK].abs().sum() > 0  # the model learns when to emit <slack>
    forced_rows = ~masked[0]
    assert torch.all(g[forced_rows] == 0)  # prompt, visible tokens and padding: no CTC gradient


def test_flat_sft_loss_is_the_mean_over_masked_tokens():
    lp, tg, m, p = _fixed_case()
    want = -(lp[0, 0, 1] + lp[0, 2, 3] + lp[1, 2, 2] + lp[1, 3, 3]) / 4
    torch.testing.assert_close(obj.sft_loss_flat(lp, tg, m), want)


def test_padding_after_the_answers_eos_is_weighted_down():
    """--pad-weight: the collator records where each answer's own EOS is; the EOS padding after it
    counts pad_weight times a real token in the flat CE."""
    from train.data import SFTCollator, SFTExample
    from train.objectives import Objective, objective_loss

    batch = SFTCollator(eos_id=0, answer_length=6)([SFTExample([5, 6], [1, 2, 0]), SFTExample([5], [4, 0])])
    assert batch["response_lengths"].tolist() == [3, 2] and batch["input_ids"].shape[1] == 8
    w = obj.padding_weights(batch["input_ids"].shape, batch["prompt_lengths"], batch["response_lengths"], 0.25)
    assert w[0].tolist() == [1] * 5 + [0.25] * 3 and w[1].tolist() == [1] * 3 + [0.25] * 5
    ids = batch["input_ids"]
    masked = torch.arange(8)[None, :] >= batch["prompt_lengths"][:, None]  # every answer token masked
    lp = torch.log_softmax(torch.randn(2, 8, 10, dtype=torch.float64), -1)
    nll = -lp.gather(-1, ids[..., None]).squeeze(-1)
    want = (nll * w * masked).sum() / (w * masked).sum()
    noised = obj.Noised(noisy=ids.masked_fill(masked, MASK), masked=masked, p_mask=torch.full((2, 1), 0.5))
    loss, _ = objective_loss(Objective(stage="sft", mask_id=MASK, weighting="flat", pad_weight=0.25), lp, ids, noised,
                             batch)
    torch.testing.assert_close(loss, want)
    plain, _ = objective_loss(Objective(stage="sft", mask_id=MASK, weighting="flat"), lp, ids, noised, batch)
    torch.testing.assert_close(plain, obj.sft_loss_flat(lp, ids, masked))
    assert not torch.isclose(loss, plain)
    with pytest.raises(ValueError, match="flat"):
        Objective(stage="sft", mask_id=MASK, pad_weight=0.5)  # LLaDA's 1 / p_mask weighting has no pad weight


def test_objective_loss_is_ce_plus_lambda_ctc_on_a_collated_batch():
    """The trainer's loss (shared with bench/bench_ctc_capacity.py): CE on the augmented batch, plus
    lambda times the CTC term for the ctc objective; CE alone otherwise."""
    from train.data import SFTCollator, SFTExample
    from train.objectives import Objective, objective_loss

    torch.manual_seed(4)
    examples = [SFTExample([5, 6], [1, 2, 2, 3, 0]), SFTExample([5], [4, 1, 0])]
    batch = SFTCollator(eos_id=0, slack_id=SLACK, s_max=0.5, seed=1)(examples)
    ids = batch["input_ids"]
    maskable = torch.arange(ids.shape[1])[None, :] >= batch["prompt_lengths"][:, None]
    noised = obj.forward_mask(ids, mask_id=MASK, maskable=maskable, generator=torch.Generator().manual_seed(0))
    lp = torch.log_softmax(torch.randn(*ids.shape, 10, dtype=torch.float64), -1)
    o = Objective(stage="sft", mask_id=MASK, kind="ctc", slack_id=SLACK, lam=0.3, weighting="flat")
    loss, parts = objective_loss(o, lp, ids, noised, batch)
    ce = obj.sft_loss_flat(lp, ids, noised.masked)
    ctc_loss, _ = obj.ctc_term(lp, noised.noisy, noised.masked, batch["prompt_lengths"], batch["ctc_region_lengths"],
                               batch["ctc_targets"], batch["ctc_target_lengths"], slack_id=SLACK)
    torch.testing.assert_close(parts["ce"], ce)
    torch.testing.assert_close(loss, ce + 0.3 * ctc_loss)
    assert int(parts["ctc_infeasible"]) == 0
    ce_only, ce_parts = objective_loss(Objective(stage="sft", mask_id=MASK, weighting="flat"), lp, ids, noised, batch)
    torch.testing.assert_close(ce_only, ce)
    assert set(ce_parts) == {"ce"}


def test_slack_share_leaves_the_rest_of_the_responses_clean():
    """--slack-share: that share of a batch's responses gets <slack> (the CTC term sees all of them);
    1 keeps the draws of a run where every response is slacked."""
    from train.data import SFTCollator, SFTExample

    examples = [SFTExample([5], [1, 2, 3, 4, 1, 2, 3, 4, 0]) for _ in range(400)]
    examples = [SFTExample(ex.prompt, ex.response[:-1] + [i % 7 + 1, 0]) for i, ex in enumerate(examples)]

    def slacked(share):
        batch = SFTCollator(eos_id=0, slack_id=SLACK, s_max=0.5, seed=3, slack_share=share)(examples)
        rows = (batch["input_ids"] == SLACK).any(1)
        assert (batch["ctc_target_lengths"] == 10).all()  # the CTC targets are the clean responses
        return rows.float().mean().item(), batch

    share_all, batch_all = slacked(1.0)
    default = SFTCollator(eos_id=0, slack_id=SLACK, s_max=0.5, seed=3)(examples)
    assert torch.equal(batch_all["input_ids"], default["input_ids"])
    half, batch = slacked(0.5)
    assert share_all > 0.8 and 0.4 * share_all < half < 0.6 * share_all  # some ratios round to no slack
    clean = ~(batch["input_ids"] == SLACK).any(1)
    assert (batch["ctc_region_lengths"][clean] == 10).all()  # a clean row's region is its response
    assert slacked(0.0)[0] == 0.0
