"""Tests for mdlm_viz.ctc: brute force on tiny lattices, gradcheck, agreement with
torch's ctc_loss for the standard map, and the edge cases (infeasible, -inf, bf16)."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from mdlm_viz import ctc
from mdlm_viz.ctc import alignment, collapse, min_alignment_length, slack_ctc_loss

SLACK = 0
INF = float("inf")


def rand_lp(*shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).log_softmax(-1)


# -----------------------------------------------------------------------------
# collapse maps

def test_collapse_examples():
    S = 9
    assert collapse([1, 1, S, 1, 2, 2], S, "standard") == [1, 1, 2]
    assert collapse([1, 1, S, 1, 2, 2], S, "slack") == [1, 1, 1, 2, 2]
    assert collapse([S, S, 3, S, S], S, "standard") == [3]
    assert collapse(torch.tensor([1, S, S, 1]), S, "standard") == [1, 1]
    assert collapse((4, 4, 4), S) == [4, 4, 4]  # slack map by default


def test_collapse_hundred_becomes_ten_under_standard():
    # the paper's failure case: digits "100" spelled position by position
    assert collapse([1, 0, 0], slack_id=5, collapse="standard") == [1, 0]
    assert collapse([1, 0, 0], slack_id=5, collapse="slack") == [1, 0, 0]


def test_min_alignment_length():
    assert min_alignment_length([1, 0, 0], "slack") == 3
    assert min_alignment_length([1, 0, 0], "standard") == 4
    assert min_alignment_length([2, 2, 2, 3], "standard") == 6
    assert min_alignment_length([], "standard") == 0


def test_collapse_validated_everywhere():
    lp = rand_lp(1, 4, 5)
    for call in (lambda: collapse([1], 0, "ctc"),
                 lambda: min_alignment_length([1], "ctc"),
                 lambda: slack_ctc_loss(lp, [[1]], [4], [1], slack_id=0, collapse="ctc"),
                 lambda: alignment(lp[0], [1], slack_id=0, collapse="ctc")):
        with pytest.raises(ValueError, match="slack.*standard"):
            call()
    with pytest.raises(ValueError, match="reduction"):
        slack_ctc_loss(lp, [[1]], [4], [1], slack_id=0, reduction="avg")
    with pytest.raises(ValueError, match="slack"):
        slack_ctc_loss(lp, [[0]], [4], [1], slack_id=0)


# -----------------------------------------------------------------------------
# brute force over every alignment

def alignment_states(a, slack_id, collapse_map):
    """State per position of one alignment: 0 = slack, j = j-th target token."""
    states, j = [], 0
    for t, tok in enumerate(a):
        if tok == slack_id:
            states.append(0)
            continue
        if collapse_map == "slack" or t == 0 or a[t - 1] != tok:
            j += 1  # a new target token (standard: a new run of equal tokens)
        states.append(j)
    return states


def brute_force(lp, target, slack_id, collapse_map):
    """log p(target), posterior [T, U+1], best path and its log-prob, by enumeration."""
    T = lp.shape[0]
    alphabet = [slack_id] + sorted(set(target))
    scores, paths = [], []
    for a in itertools.product(alphabet, repeat=T):
        if collapse(a, slack_id, collapse_map) == list(target):
            scores.append(sum(lp[t, a[t]] for t in range(T)))
            paths.append(alignment_states(a, slack_id, collapse_map))
    scores = torch.stack(scores)
    logZ = torch.logsumexp(scores, 0)
    post = torch.zeros(T, len(target) + 1, dtype=lp.dtype)
    for s, states in zip(scores, paths):
        for t, st in enumerate(states):
            post[t, st] += (s - logZ).exp()
    best = int(scores.argmax())
    return float(logZ), post, paths[best], float(scores[best])


CASES = [([1, 2], 5), ([1, 1], 4), ([2, 1, 1], 6), ([3, 3, 3], 6), ([2], 3), ([1, 2, 3], 4)]


@pytest.mark.parametrize("collapse_map", ctc.COLLAPSE_MAPS)
@pytest.mark.parametrize("target,T", CASES)
def test_brute_force(collapse_map, target, T):
    if T < min_alignment_length(target, collapse_map):
        pytest.skip("infeasible")
    lp = rand_lp(T, 5, seed=T + len(target)) + 0.3 * torch.randn(T, 5, dtype=torch.float64)  # unnormalised rows
    logZ, post, path, path_lp = brute_force(lp, target, SLACK, collapse_map)

    lp_b = lp[None].clone().requires_grad_()
    loss = slack_ctc_loss(lp_b, torch.tensor([target]), [T], [len(target)], slack_id=SLACK,
                          collapse=collapse_map, reduction="sum")
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(-logZ, abs=1e-10)

    al = alignment(lp, target, slack_id=SLACK, collapse=collapse_map)
    assert al.log_likelihood == pytest.approx(logZ, abs=1e-10)
    torch.testing.assert_close(al.posterior, post, atol=1e-10, rtol=0)
    torch.testing.assert_close(al.posterior.sum(1), torch.ones(T, dtype=torch.float64))
    assert al.path == path
    assert al.path_log_prob == pytest.approx(path_lp, abs=1e-10)
    assert al.collapse == collapse_map

    # gradient = -occupancy, summed over target slots sharing a token id; zero elsewhere
    loss.backward()
    expected = torch.zeros_like(lp)
    expected[:, SLACK] = -post[:, 0]
    for j, tok in enumerate(target, start=1):
        expected[:, tok] -= post[:, j]
    torch.testing.assert_close(lp_b.grad[0], expected, atol=1e-10, rtol=0)


def test_alignment_path_and_emissions():
    lp = rand_lp(12, 7, seed=3)
    target = [4, 4, 2, 5]
    for collapse_map in ctc.COLLAPSE_MAPS:
        al = alignment(lp.float(), target, slack_id=SLACK, collapse=collapse_map)
        assert al.posterior.shape == (12, 5) and al.posterior.dtype == torch.float32
        torch.testing.assert_close(al.posterior.sum(1), torch.ones(12))
        toks = [SLACK if s == 0 else target[s - 1] for s in al.path]
        assert collapse(toks, SLACK, collapse_map) == target
        picked = al.emission_log_probs[torch.arange(12), torch.tensor(al.path)]
        assert float(picked.sum()) == pytest.approx(al.path_log_prob, abs=1e-4)
        torch.testing.assert_close(al.emission_log_probs[:, 1:], lp.float()[:, target])


def test_alignment_errors():
    lp = rand_lp(3, 5)
    with pytest.raises(ValueError, match="at least 4 positions"):
        alignment(lp, [1, 1, 2], slack_id=SLACK, collapse="standard")
    forced = torch.full((3, 5), -INF, dtype=torch.float64)
    forced[:, 3] = 0.0  # every position forced to token 3
    with pytest.raises(ValueError, match="nonzero probability"):
        alignment(forced, [1], slack_id=SLACK)


# -----------------------------------------------------------------------------
# the fast slack grid against the 2U+1 time lattice with slack transitions

@pytest.mark.parametrize("T,U", [(40, 10), (40, 33), (25, 25), (30, 0)])
def test_slack_grid_matches_time_lattice(T, U):
    B, V = 4, 9
    lp = rand_lp(B, T, V, seed=T + U)
    tgt = torch.randint(1, V, (B, max(U, 1)), generator=torch.Generator().manual_seed(U))
    tgt[:, 1::3] = tgt[:, 0::3][:, : tgt[:, 1::3].shape[1]]  # some repeats
    lp[1, 5] = -INF
    lp[1, 5, tgt[1, 0]] = 0.0  # a forced position
    lp[2, :, SLACK] = lp[2, :, SLACK].masked_fill(torch.arange(T) % 4 == 0, -INF)
    L = torch.tensor([T, T - 3, T, max(U, T - 7)])
    Ul = torch.tensor([U, max(U - 3, 0), U, U])
    tgt_, L, Ul, ok = ctc._prepare(lp, tgt, L, Ul, SLACK, "slack")
    grid = ctc._forward(lp, tgt_, L, Ul, ok, SLACK, "slack")
    ref = ctc._lattice_forward(lp, tgt_, L, Ul, SLACK, "slack")
    ok = grid[1]
    assert ok.tolist() == torch.isfinite(ref[0]).tolist()
    assert ok.sum() >= 2
    torch.testing.assert_close(grid[0][ok], ref[0][ok], atol=1e-9, rtol=0)
    for a, b in zip(ctc._occupancy(grid[2], grid[0]), ctc._lattice_occupancy(ref[2], ref[0])):
        b = b[:, :, : a.shape[2]] if a.dim() == 3 else b
        torch.testing.assert_close(a[ok], b[ok], atol=1e-9, rtol=0)
        assert (a[~ok] == 0).all()


# -----------------------------------------------------------------------------
# gradcheck with per-sample lengths, padding and a forced (-inf) row

@pytest.mark.parametrize("collapse_map", ctc.COLLAPSE_MAPS)
def test_gradcheck(collapse_map):
    B, T, V = 3, 7, 6
    lp = rand_lp(B, T, V, seed=1) + 0.2  # unnormalised
    targets = torch.tensor([[1, 2, 2], [3, 4, 0], [5, 0, 0]])  # padded with 0 (= slack, ignored)
    lp[0, 2] = -INF
    lp[0, 2, 2] = 0.0  # position 2 of sample 0 forced to token 2
    lp[2, 1, 4] = -INF
    lp.requires_grad_()
    lengths = ([7, 5, 4], [3, 2, 1])
    for reduction in ("none", "mean"):
        f = lambda x: slack_ctc_loss(x, targets, *lengths, slack_id=SLACK, collapse=collapse_map,
                                     reduction=reduction)
        assert torch.autograd.gradcheck(f, (lp,), eps=1e-6, atol=1e-6)


# -----------------------------------------------------------------------------
# standard map == torch's CTC on normalised emissions (gradients w.r.t. logits)

def test_standard_matches_torch_ctc():
    B, T, V = 4, 30, 8
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(B, T, V, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(1, V, (B, 12), generator=g)
    targets[0, 3] = targets[0, 2]  # adjacent repeat
    il = torch.tensor([30, 25, 30, 14])
    tl = torch.tensor([12, 9, 5, 3])
    for reduction in ("none", "sum", "mean"):
        ours = slack_ctc_loss(logits.log_softmax(-1), targets, il, tl, slack_id=SLACK,
                              collapse="standard", reduction=reduction)
        (g_ours,) = torch.autograd.grad(ours.sum(), logits)
        ref = F.ctc_loss(logits.log_softmax(-1).transpose(0, 1), targets, il, tl, blank=SLACK, reduction=reduction)
        (g_ref,) = torch.autograd.grad(ref.sum(), logits)
        torch.testing.assert_close(ours, ref, atol=1e-9, rtol=1e-9)
        torch.testing.assert_close(g_ours, g_ref, atol=1e-9, rtol=1e-7)


def test_padded_and_concatenated_targets_agree():
    lp = rand_lp(3, 20, 7).requires_grad_()
    padded = torch.tensor([[1, 2, 3, 4], [5, 5, 0, 0], [6, 0, 0, 0]])
    tl = torch.tensor([4, 2, 1])
    concat = torch.tensor([1, 2, 3, 4, 5, 5, 6])
    for collapse_map in ctc.COLLAPSE_MAPS:
        a = slack_ctc_loss(lp, padded, [20, 18, 9], tl, slack_id=SLACK, collapse=collapse_map, reduction="none")
        b = slack_ctc_loss(lp, concat, [20, 18, 9], tl.tolist(), slack_id=SLACK, collapse=collapse_map,
                           reduction="none")
        torch.testing.assert_close(a, b)
        ga, = torch.autograd.grad(a.sum(), lp)
        gb, = torch.autograd.grad(b.sum(), lp)
        torch.testing.assert_close(ga, gb)
        # a non-contiguous (time-major storage) view gives the same too
        lp_tm = lp.detach().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()
        c = slack_ctc_loss(lp_tm, padded, [20, 18, 9], tl, slack_id=SLACK, collapse=collapse_map, reduction="none")
        torch.testing.assert_close(a, c)
        gc, = torch.autograd.grad(c.sum(), lp_tm)
        torch.testing.assert_close(ga, gc)


# -----------------------------------------------------------------------------
# infeasible samples, -inf emissions, dtypes

@pytest.mark.parametrize("collapse_map", ctc.COLLAPSE_MAPS)
def test_infeasible_samples(collapse_map):
    B, T, V = 4, 6, 6
    lp = rand_lp(B, T, V, dtype=torch.float32).requires_grad_()
    targets = torch.tensor([[1, 2, 3], [1, 1, 2], [4, 5, 1], [2, 2, 2]])
    il = torch.tensor([6, 3, 2, 6])  # sample 1: standard needs 4; sample 2 needs 3
    tl = torch.tensor([3, 3, 3, 3])
    none, feasible = slack_ctc_loss(lp, targets, il, tl, slack_id=SLACK, collapse=collapse_map,
                                    reduction="none", return_feasible=True)
    expect = [True, collapse_map == "slack", False, True]
    assert feasible.tolist() == expect
    assert none[2] == 0 and (none[~feasible] == 0).all() and (none[feasible] > 0).all()
    mean = slack_ctc_loss(lp, targets, il, tl, slack_id=SLACK, collapse=collapse_map)
    assert mean.item() == pytest.approx((none / 3)[feasible].mean().item(), rel=1e-6)
    (grad,) = torch.autograd.grad(mean, lp)
    assert torch.isfinite(grad).all()
    assert (grad[~feasible] == 0).all() and (grad[feasible] != 0).any()


def test_no_feasible_sample_gives_connected_zero():
    lp = rand_lp(2, 3, 5, dtype=torch.float32).requires_grad_()
    loss, feasible = slack_ctc_loss(lp, [[1, 2, 3, 4], [1, 2, 3, 4]], [3, 2], [4, 4], slack_id=SLACK,
                                    return_feasible=True)
    assert not feasible.any() and loss.item() == 0.0 and loss.grad_fn is not None
    loss.backward()
    assert (lp.grad == 0).all()


@pytest.mark.parametrize("collapse_map", ctc.COLLAPSE_MAPS)
def test_forced_emissions_no_nan(collapse_map):
    """Visible positions put log-prob 0 on their token, -inf elsewhere. A target that
    contradicts them has no path: reported infeasible, zero loss and gradient."""
    B, T, V = 3, 48, 11
    lp = rand_lp(B, T, V, dtype=torch.float32, seed=5)
    targets = torch.randint(1, V, (B, 20), generator=torch.Generator().manual_seed(2))
    for b in range(B):
        for t in range(0, T, 6):  # every 6th position is visible, showing slack
            lp[b, t] = -INF
            lp[b, t, SLACK] = 0.0
    lp[2, 1] = -INF
    lp[2, 1, SLACK] = 0.0
    lp[2, 2:] = -INF  # sample 2: nothing can be emitted after position 1
    lp[2, 2:, SLACK] = 0.0
    lp.requires_grad_()
    loss, feasible = slack_ctc_loss(lp, targets, [T, 40, T], [20, 20, 20], slack_id=SLACK,
                                    collapse=collapse_map, reduction="none", return_feasible=True)
    assert feasible.tolist() == [True, True, False]
    assert torch.isfinite(loss).all() and loss[2] == 0
    loss.sum().backward()
    assert torch.isfinite(lp.grad).all() and (lp.grad[2] == 0).all()
    # -d loss / d log p at each position sums to 1 inside the input, 0 after
    occ = -lp.grad.sum(-1)
    torch.testing.assert_close(occ[0], torch.ones(T), atol=1e-5, rtol=0)
    torch.testing.assert_close(occ[1, :40], torch.ones(40), atol=1e-5, rtol=0)
    assert (occ[1, 40:] == 0).all()


def test_bfloat16_input():
    lp32 = rand_lp(2, 16, 9, dtype=torch.float32)
    lp16 = lp32.bfloat16().requires_grad_()
    targets, il, tl = torch.tensor([[1, 2, 3], [4, 4, 0]]), [16, 12], [3, 2]
    for collapse_map in ctc.COLLAPSE_MAPS:
        loss = slack_ctc_loss(lp16, targets, il, tl, slack_id=SLACK, collapse=collapse_map)
        assert loss.dtype == torch.float32
        ref = slack_ctc_loss(lp16.detach().float(), targets, il, tl, slack_id=SLACK, collapse=collapse_map)
        torch.testing.assert_close(loss, ref)
        (grad,) = torch.autograd.grad(loss, lp16)
        assert grad.dtype == torch.bfloat16 and torch.isfinite(grad.float()).all()


def test_loss_matches_alignment_posterior():
    """The heatmap's posterior is exactly the (negated) gradient of the loss."""
    T, V = 30, 12
    lp = rand_lp(T, V, dtype=torch.float32, seed=4)
    target = [3, 7, 7, 1, 3]
    for collapse_map in ctc.COLLAPSE_MAPS:
        x = lp[None].clone().requires_grad_()
        loss = slack_ctc_loss(x, torch.tensor([target]), [T], [5], slack_id=SLACK, collapse=collapse_map,
                              reduction="sum")
        loss.backward()
        al = alignment(lp, target, slack_id=SLACK, collapse=collapse_map)
        assert al.log_likelihood == pytest.approx(-loss.item(), rel=1e-6)
        torch.testing.assert_close(-x.grad[0, :, SLACK], al.posterior[:, 0])
        for tok in set(target):
            cols = [j + 1 for j, t in enumerate(target) if t == tok]
            torch.testing.assert_close(-x.grad[0, :, tok], al.posterior[:, cols].sum(1))


@pytest.mark.parametrize("collapse_map", ["slack", "standard"])
def test_forced_argument_equals_materialised_forced_emissions(collapse_map):
    """forced=[B, T] gives the loss of log-probs with the forced rows written out (0 on the known
    token, -inf elsewhere), and no gradient on those rows, without a second B x T x V tensor."""
    B, T, V = 2, 9, 7
    lp = rand_lp(B, T, V, seed=4).requires_grad_()
    targets = torch.tensor([[1, 2, 2, 3], [4, 5, 6, 0]])
    tlen, ilen = torch.tensor([4, 3]), torch.tensor([9, 8])
    forced = torch.full((B, T), -1)
    forced[0, 0], forced[0, 4], forced[1, 2] = 1, SLACK, 5  # visible tokens the alignment can use
    written = lp.detach().clone()
    for b, t in (forced >= 0).nonzero().tolist():
        written[b, t] = float("-inf")
        written[b, t, forced[b, t]] = 0.0
    written.requires_grad_()
    a = slack_ctc_loss(lp, targets, ilen, tlen, slack_id=SLACK, collapse=collapse_map, forced=forced)
    b = slack_ctc_loss(written, targets, ilen, tlen, slack_id=SLACK, collapse=collapse_map)
    torch.testing.assert_close(a, b)
    a.backward()
    b.backward()
    free = forced < 0
    torch.testing.assert_close(lp.grad[free], written.grad[free])
    assert torch.all(lp.grad[~free] == 0) and torch.isfinite(lp.grad).all()
    with pytest.raises(ValueError, match="forced must be"):
        slack_ctc_loss(lp, targets, ilen, tlen, slack_id=SLACK, forced=forced[:, :3])
