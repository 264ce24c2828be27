"""CTC over a masked diffusion LM's outputs, with a <slack> token as CTC's blank.

An alignment is the sequence of T tokens the model emits; a collapse map turns
it into the target it spells:

- ``standard``: merge adjacent repeats, then drop <slack> (classic CTC, slack = blank).
- ``slack``:    drop <slack> only, never merge. Each position either emits slack or
                the next target token, so "100" stays "100" (standard gives "10").

The loss is -log sum over alignments that collapse to the target of
prod_t p_t(alignment_t). For the ``slack`` map the lattice is a grid: after t
positions the state is (j target tokens, d slacks) with t = j + d, so only
U+1 x (T-U+1) nodes exist and the forward/backward passes loop over the short
side of that grid with vectorised scans along the long side. The ``standard``
map uses the classic 2U+1-state lattice looped over time.

Gradients are exact for any emissions (rows need not be normalised):
d loss / d log_probs[b, t, k] = -(posterior probability that position t emits k).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

COLLAPSE_MAPS = ("slack", "standard")
DEFAULT_COLLAPSE = "slack"  # the paper's map: <slack> is dropped, repeats are kept
REDUCTIONS = ("none", "sum", "mean")
NEG_INF = float("-inf")


def _check_collapse(collapse: str) -> None:
    if collapse not in COLLAPSE_MAPS:
        raise ValueError(f"collapse must be one of {COLLAPSE_MAPS}, got {collapse!r}")


def _int_list(tokens) -> list[int]:
    if isinstance(tokens, torch.Tensor):
        if tokens.dim() != 1:
            raise ValueError(f"expected a 1-D sequence of token ids, got shape {tuple(tokens.shape)}")
        return [int(t) for t in tokens.tolist()]
    return [int(t) for t in tokens]


# -----------------------------------------------------------------------------
# collapse maps on plain sequences

def collapse(tokens, slack_id: int, collapse: str = "slack") -> list[int]:
    """Target spelled by an alignment: `standard` merges repeats then drops slack,
    `slack` only drops slack."""
    _check_collapse(collapse)
    toks = _int_list(tokens)
    if collapse == "standard":
        toks = [t for i, t in enumerate(toks) if i == 0 or t != toks[i - 1]]
    return [t for t in toks if t != slack_id]


def min_alignment_length(target, collapse: str = "slack") -> int:
    """Fewest positions that can spell `target`: U for slack; standard CTC also
    needs a blank between each pair of equal adjacent tokens."""
    _check_collapse(collapse)
    tgt = _int_list(target)
    if collapse == "slack":
        return len(tgt)
    return len(tgt) + sum(a == b for a, b in zip(tgt, tgt[1:]))


# -----------------------------------------------------------------------------
# input normalisation

def _as_lengths(x, B: int, name: str, device) -> torch.Tensor:
    t = torch.as_tensor(x, device=device).to(device=device, dtype=torch.long).reshape(-1)
    if t.numel() != B:
        raise ValueError(f"{name} must have one entry per batch element ({B}), got {t.numel()}")
    if (t < 0).any():
        raise ValueError(f"{name} must be non-negative")
    return t


def _pad_targets(targets, tgt_len: torch.Tensor, B: int) -> torch.Tensor:
    """Padded [B, S] or concatenated [sum(U)] targets -> [B, Umax] long, pad = 0."""
    device = tgt_len.device
    targets = torch.as_tensor(targets, device=device).to(device=device, dtype=torch.long)
    U_max = int(tgt_len.max()) if B else 0
    pos = torch.arange(U_max, device=device)
    inside = pos[None, :] < tgt_len[:, None]  # [B, Umax]
    if targets.dim() == 1:
        if targets.numel() != int(tgt_len.sum()):
            raise ValueError(
                f"concatenated targets have {targets.numel()} tokens but target_lengths sum to {int(tgt_len.sum())}")
        if U_max == 0:
            return targets.new_zeros(B, 0)
        start = torch.cumsum(tgt_len, 0) - tgt_len
        idx = (start[:, None] + pos[None, :]).clamp(max=max(targets.numel() - 1, 0))
        padded = targets[idx]
    elif targets.dim() == 2:
        if targets.shape[0] != B or targets.shape[1] < U_max:
            raise ValueError(f"padded targets must be [B={B}, S>={U_max}], got {tuple(targets.shape)}")
        padded = targets[:, :U_max]
    else:
        raise ValueError(f"targets must be 1-D (concatenated) or 2-D (padded), got {targets.dim()}-D")
    return torch.where(inside, padded, torch.zeros_like(padded))


def _adjacent_repeats(tgt: torch.Tensor, tgt_len: torch.Tensor) -> torch.Tensor:
    """[B] number of i with tgt[i] == tgt[i+1] inside each target."""
    if tgt.shape[1] < 2:
        return torch.zeros_like(tgt_len)
    same = tgt[:, 1:] == tgt[:, :-1]
    inside = torch.arange(1, tgt.shape[1], device=tgt.device)[None, :] < tgt_len[:, None]
    return (same & inside).sum(1)


# -----------------------------------------------------------------------------
# slack map: grid lattice. Node (j, d) = j target tokens and d slacks emitted
# after t = j + d positions; both steps into (j, d) (token from (j-1, d), slack
# from (j, d-1)) emit at position t = j + d - 1. The grid is stored as rows x
# cols with rows along its shorter side (a Python loop) and cols along the
# longer one (a vectorised scan):
#   V[b, r, c]: log-weight of the step (r-1, c) -> (r, c)
#   H[b, r, c]: log-weight of the step (r, c-1) -> (r, c)
# Either way the step into (r, c) sits at position t = r + c - 1.

def _prefix(H: torch.Tensor, floor: float | None = None) -> torch.Tensor:
    """K[b, r, c] = sum_{k=1..c} H[b, r, k], the running weight of a row scan."""
    K = H.clone() if floor is None else H.clamp_min(floor)
    K[:, :, 0] = 0.0  # no step enters column 0 from the left
    return K.cumsum_(2)


def _starts(rows: torch.Tensor, cols: torch.Tensor) -> dict:
    """{row: (batch_idx, col_idx)} for per-sample start nodes."""
    starts = {}
    for b, (r, c) in enumerate(zip(rows.tolist(), cols.tolist())):
        starts.setdefault(r, ([], []))
        starts[r][0].append(b)
        starts[r][1].append(c)
    return starts


def _scan(V: torch.Tensor, K: torch.Tensor, starts: dict, reverse: bool = False) -> torch.Tensor:
    """Log-space DP over the grid, one vectorised scan per row. [B, R, C] -> [B, R, C].

    forward: x[r, c] = lse(start, x[r-1, c] + V[r, c], x[r, c-1] + H[r, c]);
             in a row x_c = lse(a_c, x_{c-1} + H_c) unrolls to K_c + logcumsumexp_{i<=c}(a_i - K_i)
    reverse: x[r, c] = lse(start, x[r+1, c] + V[r+1, c], x[r, c+1] + H[r, c+1])
             = -K_c + logcumsumexp_{i>=c}(a_i + K_i)
    K = _prefix(H) must be finite: -inf steps in H are floored beforehand (see _floor).
    """
    B, R, C = V.shape
    out = V.new_empty(B, R, C)
    x = V.new_full((B, C), NEG_INF)
    for r in (range(R - 1, -1, -1) if reverse else range(R)):
        if reverse:
            a = x + V[:, r + 1] if r + 1 < R else x.clone()  # arrive from the row below
        else:
            a = x + V[:, r]  # arrive from the row above
        if r in starts:
            b_idx, c_idx = starts[r]
            a[b_idx, c_idx] = 0.0
        k = K[:, r]
        if reverse:
            x = torch.logcumsumexp((a + k).flip(1), 1).flip(1).sub_(k)
        else:
            x = torch.logcumsumexp(a - k, 1).add_(k)
        out[:, r] = x
    return out


def _floor(V: torch.Tensor, H: torch.Tensor) -> tuple[float, float]:
    """Finite stand-in for -inf steps in H, and the log-likelihood below which a
    sample has no real path. With M = max |finite step| and n >= any path
    length, a real path scores >= -n*M while a path through a floored step
    scores <= floor + n*M; the margins make such fake paths >= 1000 nats
    smaller than any real one, so they vanish exactly in float64."""
    M = max(float(x.nan_to_num(neginf=0.0).abs_().max()) if x.numel() else 0.0 for x in (V, H))
    n = V.shape[1] + V.shape[2]
    return -2.0 * (n + 1) * (M + 1) - 2000.0, -(n + 1) * (M + 1) - 1000.0


def _slack_forward(lp, tgt, L, U, slack_id, forced=None):
    """alpha pass of the slack map. lp [B, T, V]; tgt [B, >=Umax]; L, U [B] with L >= U.
    Returns logZ [B] float64, possible [B] bool, state for the backward pass."""
    B, T, _ = lp.shape
    dev = lp.device
    D = L - U
    n_tok, n_slk = int(U.max()) + 1, int(D.max()) + 1
    by_tok = n_tok <= n_slk  # rows = target index j, else rows = slack count d
    R, C = (n_tok, n_slk) if by_tok else (n_slk, n_tok)
    r = torch.arange(R, device=dev)[:, None]
    c = torch.arange(C, device=dev)[None, :]
    t = (r + c - 1).clamp(0, T - 1)  # [R, C] position of the steps into (r, c); clamped ones lie past every end
    j = (r if by_tok else c).expand(R, C)
    tok = F.pad(tgt[:, : n_tok - 1], (1, 0))[:, j]  # [B, R, C] target id of the token step into (r, c)
    tok_lp = lp[torch.arange(B, device=dev)[:, None, None], t, tok].double()  # [B, R, C]
    slk_lp = lp[:, :, slack_id].double()[:, t]  # [B, R, C]
    if forced is not None:
        f = forced[:, t]  # [B, R, C] the token forced at the position of each step, -1 = free
        tok_lp = _apply_forced(tok_lp, f, tok)
        slk_lp = _apply_forced(slk_lp, f, slack_id)
    if by_tok:  # j = 0 has no token step in, d = 0 no slack step in
        tok_lp[:, 0] = NEG_INF
        slk_lp[:, :, 0] = NEG_INF
        V, H = tok_lp, slk_lp
    else:
        tok_lp[:, :, 0] = NEG_INF
        slk_lp[:, 0] = NEG_INF
        V, H = slk_lp, tok_lp
    K, threshold = _prefix(H), NEG_INF
    if not torch.isfinite(K[:, :, -1]).all():  # some row has an impossible step: floor it
        floor, threshold = _floor(V, H)
        K = _prefix(H, floor)
    alpha = _scan(V, K, _starts(torch.zeros_like(U), torch.zeros_like(U)))
    end = (U, D) if by_tok else (D, U)
    logZ = alpha[torch.arange(B, device=dev), end[0], end[1]]
    state = dict(kind="slack", V=V, H=H, K=K, alpha=alpha, end=end, by_tok=by_tok, t=t, tok=tok, T=T)
    return logZ, logZ > threshold, state


def _slack_steps(state, logZ):
    """Posterior of each step: P_tok, P_slk [B, n1, n2], the step at index
    (i1, i2) sitting at position t = i1 + i2; for tokens j - 1 = i1 (by_tok) or i2."""
    V, H, K, alpha = state["V"], state["H"], state["K"], state["alpha"]
    beta = _scan(V, K, _starts(*state["end"]), reverse=True)  # log-weight of finishing from each node
    lz = logZ[:, None, None]
    PV = (alpha[:, :-1] + V[:, 1:]).add_(beta[:, 1:]).sub_(lz).exp_()  # steps into rows 1..R-1
    PH = (alpha[:, :, :-1] + H[:, :, 1:]).add_(beta[:, :, 1:]).sub_(lz).exp_()  # steps into cols 1..C-1
    return (PV, PH) if state["by_tok"] else (PH, PV)


def _diag_sum(P: torch.Tensor, T: int) -> torch.Tensor:
    """out[b, t] = sum over i1 + i2 = t of P[b, i1, i2], looping over the short side."""
    B, n1, n2 = P.shape
    out = P.new_zeros(B, max(T, n1 + n2))
    for i in range(n1):
        out[:, i : i + n2] += P[:, i]
    return out[:, :T]


def _slack_occupancy(state, logZ):
    """post_slack [B, T], post_tok [B, T, Umax] (float64)."""
    P_tok, P_slk = _slack_steps(state, logZ)
    T = state["T"]
    B = P_tok.shape[0]
    P_tok = P_tok if state["by_tok"] else P_tok.transpose(1, 2)  # [B, Umax, n_d]: (j - 1, d)
    Umax, n_d = P_tok.shape[1:]
    # token j steps at t = (j-1) + d: a diagonal of a [Tb, Umax] buffer, written through a strided view
    Tb = max(T, Umax + n_d)
    post_tok = P_tok.new_zeros(B, Tb, Umax)
    if Umax:
        post_tok.as_strided((B, Umax, n_d), (Tb * Umax, Umax + 1, Umax)).copy_(P_tok)
    return _diag_sum(P_slk, T), post_tok[:, :T]


def _slack_scatter_grad(state, logZ, w, grad, slack_id):
    """grad[b, t, k] = w[b] * occupancy of emitting k at t, straight from the grid."""
    P_tok, P_slk = _slack_steps(state, logZ)
    B, T, V = grad.shape
    grad[:, :, slack_id] = (_diag_sum(P_slk, T) * w[:, None]).to(grad.dtype)
    t, tok = state["t"], state["tok"]
    if state["by_tok"]:  # token steps enter rows 1.., like P_tok
        t, tok = t[1:], tok[:, 1:]
    else:  # token steps enter cols 1..
        t, tok = t[:, 1:], tok[:, :, 1:]
    idx = t * V + tok  # [B, n1, n2] flat (position, token id) of each token step
    # repeated target tokens hit the same (t, id): scatter_add sums them
    grad.view(B, -1).scatter_add_(1, idx.reshape(B, -1), (P_tok * w[:, None, None]).to(grad.dtype).reshape(B, -1))


# -----------------------------------------------------------------------------
# state lattice over time (both maps): states 0..2U, even = slack before the
# (s/2+1)-th token, odd s = target token (s+1)/2. The maps differ in transitions:
#   standard: every state may repeat; skip s-2 -> s only between different tokens
#   slack:    a token state never repeats (no merging); skip always allowed

def _lattice_labels(tgt: torch.Tensor, slack_id: int) -> torch.Tensor:
    """[B, 2Umax+1]: slack, t1, slack, t2, ..., slack."""
    B, Umax = tgt.shape
    labels = tgt.new_full((B, 2 * Umax + 1), slack_id)
    labels[:, 1::2] = tgt
    return labels


def _lattice_masks(labels: torch.Tensor, collapse: str):
    """Log-weights (0 or -inf) of the stay [S] and skip [B, S] transitions into each state."""
    S = labels.shape[1]
    s = torch.arange(S, device=labels.device)
    is_tok = s % 2 == 1
    stay = torch.zeros(S, dtype=torch.float64, device=labels.device)
    if collapse == "slack":
        stay[is_tok] = NEG_INF
    skip_ok = (is_tok & (s >= 3))[None, :].expand_as(labels)
    if collapse == "standard":
        skip_ok = skip_ok & (labels != labels.roll(2, 1))
    skip = torch.zeros(labels.shape, dtype=torch.float64, device=labels.device).masked_fill_(~skip_ok, NEG_INF)
    return stay, skip


def _shift(x: torch.Tensor, k: int) -> torch.Tensor:
    """x[..., s-k] (k > 0) or x[..., s+|k|] (k < 0) along the last dim, -inf filled."""
    out = torch.full_like(x, NEG_INF)
    n = x.shape[-1]
    if k > 0:
        out[..., k:] = x[..., : max(n - k, 0)]
    else:
        out[..., : max(n + k, 0)] = x[..., -k:]
    return out


def _lattice_forward(lp, tgt, L, U, slack_id, collapse, forced=None):
    B, T, _ = lp.shape
    labels = _lattice_labels(tgt, slack_id)
    stay, skip = _lattice_masks(labels, collapse)
    em = lp[torch.arange(B, device=lp.device)[:, None, None], torch.arange(T, device=lp.device)[None, :, None],
            labels[:, None, :]].double()  # [B, T, S]
    if forced is not None:
        em = _apply_forced(em, forced[:, :, None], labels[:, None, :])
    S = em.shape[2]
    # two -inf columns in front make the s-1 and s-2 predecessors plain slices
    alpha = em.new_full((B, T, S + 2), NEG_INF)
    alpha[:, 0, 2:4] = em[:, 0, :2]  # start in the first slack or on the first token
    for t in range(1, T):
        p = alpha[:, t - 1]
        a = torch.logaddexp(p[:, 2:] + stay, p[:, 1:-1])
        torch.add(torch.logaddexp(a, p[:, :-2] + skip), em[:, t], out=alpha[:, t, 2:])
    alpha = alpha[:, :, 2:]
    # end in the last slack or on the last token
    ar = torch.arange(B, device=lp.device)
    a_end = alpha[ar, (L - 1).clamp(min=0)]
    last_tok = a_end[ar, (2 * U - 1).clamp(min=0)].masked_fill(U == 0, NEG_INF)
    logZ = torch.logaddexp(a_end[ar, 2 * U], last_tok).masked_fill(L == 0, 0.0)
    state = dict(kind="lattice", em=em, alpha=alpha, stay=stay, skip=skip, U=U, L=L, T=T)
    return logZ, torch.isfinite(logZ), state


def _lattice_occupancy(state, logZ):
    """post_slack [B, T] (all slack states), post_tok [B, T, Umax] (float64)."""
    em, alpha, stay, skip, U, L, T = (state[k] for k in ("em", "alpha", "stay", "skip", "U", "L", "T"))
    B, _, S = em.shape
    s = torch.arange(S, device=em.device)
    end = torch.zeros(B, S, dtype=em.dtype, device=em.device).masked_fill_(
        (s[None, :] != 2 * U[:, None]) & ((s[None, :] != 2 * U[:, None] - 1) | (U[:, None] == 0)), NEG_INF)
    skip_up = _shift(skip, -2)  # skip into s+2, seen from s
    ends = {}
    for b, last in enumerate((L - 1).tolist()):
        ends.setdefault(last, []).append(b)
    # beta[t, s]: log-weight of emitting t+1..L-1 given state s at t (emission at t excluded)
    beta = torch.empty_like(em)
    w = em.new_full((B, S + 2), NEG_INF)  # beta[t+1] + em[t+1], two -inf columns behind
    b = em.new_full((B, S), NEG_INF)
    for t in range(T - 1, -1, -1):
        if t < T - 1:
            torch.add(beta[:, t + 1], em[:, t + 1], out=w[:, :S])
            b = torch.logaddexp(torch.logaddexp(w[:, :S] + stay, w[:, 1:-1]), w[:, 2:] + skip_up)
        if t in ends:  # samples whose input ends here start their backward pass
            b[ends[t]] = end[ends[t]]
        beta[:, t] = b
    gamma = (alpha + beta - logZ[:, None, None]).exp_()
    gamma.masked_fill_(torch.arange(T, device=em.device)[None, :, None] >= L[:, None, None], 0.0)
    return gamma[:, :, 0::2].sum(2), gamma[:, :, 1::2]


# -----------------------------------------------------------------------------
# shared driver

def _apply_forced(values, forced, tokens):
    """Emissions at forced positions (forced >= 0): log 1 for the forced token, log 0 otherwise.

    A visible (unmasked) position of the canvas emits its known token with certainty ("forced"
    emissions, as in the Imputer); -1 leaves the model's log-probability in place."""
    hit = torch.where(forced == tokens, 0.0, NEG_INF).to(values.dtype)
    return torch.where(forced >= 0, hit, values)


def _forward(lp, tgt, L, U, length_ok, slack_id, collapse, forced=None):
    """logZ [B] float64 (0 where infeasible), feasible [B] bool, state for _occupancy."""
    # infeasible samples become the empty problem (L = U = 0) and are masked out
    L = torch.where(length_ok, L, torch.zeros_like(L))
    U = torch.where(length_ok, U, torch.zeros_like(U))
    tgt = tgt[:, : int(U.max()) if U.numel() else 0]
    if collapse == "slack":
        logZ, possible, state = _slack_forward(lp, tgt, L, U, slack_id, forced)
    else:
        logZ, possible, state = _lattice_forward(lp, tgt, L, U, slack_id, collapse, forced)
    feasible = length_ok & possible
    logZ = torch.where(feasible, logZ, torch.zeros_like(logZ))
    state["tgt"] = tgt
    return logZ, feasible, state


def _occupancy(state, logZ):
    occ = _slack_occupancy if state["kind"] == "slack" else _lattice_occupancy
    return occ(state, logZ)


def _prepare(log_probs, targets, input_lengths, target_lengths, slack_id, collapse):
    _check_collapse(collapse)
    if log_probs.dim() != 3:
        raise ValueError(f"log_probs must be [B, T, V], got shape {tuple(log_probs.shape)}")
    B, T, V = log_probs.shape
    if not 0 <= slack_id < V:
        raise ValueError(f"slack_id {slack_id} outside the vocabulary of size {V}")
    if T == 0:
        raise ValueError("log_probs has no positions (T = 0)")
    L = _as_lengths(input_lengths, B, "input_lengths", log_probs.device)
    U = _as_lengths(target_lengths, B, "target_lengths", log_probs.device)
    if (L > T).any():
        raise ValueError(f"input_lengths must be <= T = {T}, got {L.tolist()}")
    tgt = _pad_targets(targets, U, B)
    inside = torch.arange(tgt.shape[1], device=tgt.device)[None, :] < U[:, None]
    if ((tgt < 0) | (tgt >= V))[inside].any():
        raise ValueError(f"target ids must lie in [0, {V})")
    if (tgt == slack_id)[inside].any():
        raise ValueError(f"targets contain the slack id {slack_id}; slack cannot be a target token")
    need = U + (_adjacent_repeats(tgt, U) if collapse == "standard" else 0)
    return tgt, L, U, L >= need


class _SlackCTC(torch.autograd.Function):
    @staticmethod
    def forward(ctx, log_probs, tgt, L, U, length_ok, slack_id, collapse, forced):
        logZ, feasible, state = _forward(log_probs, tgt, L, U, length_ok, slack_id, collapse, forced)
        ctx.forced = forced
        ctx.state, ctx.logZ, ctx.feasible = state, logZ, feasible
        ctx.lp_meta = (log_probs.shape, log_probs.dtype, log_probs.device, slack_id)
        ctx.mark_non_differentiable(feasible)
        out_dtype = torch.float64 if log_probs.dtype == torch.float64 else torch.float32
        return (-logZ).to(out_dtype), feasible

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_nll, _grad_feasible):
        (B, T, V), dtype, device, slack_id = ctx.lp_meta
        w = torch.where(ctx.feasible, -grad_nll.double(), 0.0)  # d nll / d log p = -occupancy
        grad = torch.zeros(B, T, V, dtype=dtype, device=device)  # the one B x T x V allocation
        state = ctx.state
        if state["kind"] == "slack":
            _slack_scatter_grad(state, ctx.logZ, w, grad, slack_id)
        else:
            post_slack, post_tok = _lattice_occupancy(state, ctx.logZ)
            tgt = state["tgt"]
            if tgt.shape[1]:  # repeated target tokens share a vocabulary column: scatter_add sums them
                grad.scatter_add_(2, tgt[:, None, :].expand(B, T, -1), (w[:, None, None] * post_tok).to(dtype))
            grad[:, :, slack_id] = (w[:, None] * post_slack).to(dtype)
        if ctx.forced is not None:  # a forced emission is a constant, not the model's output
            grad.masked_fill_((ctx.forced >= 0)[:, :, None], 0)
        return grad, None, None, None, None, None, None, None


def slack_ctc_loss(log_probs, targets, input_lengths, target_lengths, *, slack_id: int,
                   collapse: str = "slack", reduction: str = "mean", return_feasible: bool = False,
                   forced: torch.Tensor | None = None):
    """Negative log-likelihood of each target under all alignments of its first
    input_lengths[b] positions.

    log_probs [B, T, V] batch-first log-probabilities (any float dtype; lattice in
    float64). targets: padded [B, S] or concatenated [sum(target_lengths)].
    reduction: "none" -> [B] (0 for infeasible samples), "sum", or "mean" (each
    loss divided by its target length, averaged over the feasible samples; a
    connected 0 if none is). A sample is infeasible when its input is shorter
    than min_alignment_length or when no alignment has nonzero probability (e.g.
    forced emissions contradict the target); it gets loss 0 and gradient 0.
    forced [B, T] (optional, long): a token id where position t emits that known token with
    certainty (log-prob 0, others -inf; no gradient there), -1 where the model's log_probs are
    the emissions. This is the training module's "forced" emission mode for visible positions,
    without building a second B x T x V tensor.
    Returns loss, or (loss, feasible [B] bool) with return_feasible=True.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    tgt, L, U, length_ok = _prepare(log_probs, targets, input_lengths, target_lengths, slack_id, collapse)
    if forced is not None:
        forced = torch.as_tensor(forced, dtype=torch.long, device=log_probs.device)
        if forced.shape != log_probs.shape[:2]:
            raise ValueError(f"forced must be [B, T] = {tuple(log_probs.shape[:2])}, got {tuple(forced.shape)}")
    nll, feasible = _SlackCTC.apply(log_probs, tgt, L, U, length_ok, slack_id, collapse, forced)
    if reduction == "none":
        loss = nll
    elif reduction == "sum":
        loss = nll.sum()
    else:  # torch's convention, over feasible samples only; 0/1 keeps the graph when none is
        per_token = nll / U.clamp(min=1).to(nll.dtype)
        loss = per_token.sum() / feasible.sum().clamp(min=1).to(nll.dtype)
    return (loss, feasible) if return_feasible else loss


# -----------------------------------------------------------------------------
# one sequence, for display

@dataclass
class Alignment:
    """Posterior and best alignment of one sequence. Columns: 0 = slack, j = j-th target token."""
    posterior: torch.Tensor           # [T, U+1], rows sum to 1
    path: list[int]                   # [T] Viterbi state per position (0 = slack, j = token j)
    log_likelihood: float             # log p(target) = -loss
    path_log_prob: float              # log-prob of the Viterbi path
    collapse: str
    emission_log_probs: torch.Tensor  # [T, U+1] log p_t(slack), log p_t(target_j)


def _viterbi(em: torch.Tensor, stay: torch.Tensor, skip: torch.Tensor, U: int) -> tuple[list[int], float]:
    """Best state path through the 2U+1 lattice. em [T, S] float64; stay [S], skip [S]."""
    T, S = em.shape
    delta = torch.full((S,), NEG_INF, dtype=em.dtype)
    delta[:2] = em[0, :2]
    back = torch.zeros(T, S, dtype=torch.long)  # 0 = stayed, 1 = from s-1, 2 = from s-2
    for t in range(1, T):
        cand = torch.stack([delta + stay, _shift(delta, 1), _shift(delta, 2) + skip])
        delta, back[t] = cand.max(0)
        delta = delta + em[t]
    ends = [2 * U] + ([2 * U - 1] if U else [])
    s = max(ends, key=lambda e: float(delta[e]))
    score = float(delta[s])
    states = [0] * T
    for t in range(T - 1, -1, -1):
        states[t] = s
        s -= int(back[t, s])
    return [(st + 1) // 2 if st % 2 else 0 for st in states], score


def alignment(log_probs: torch.Tensor, target, *, slack_id: int, collapse: str = "slack") -> Alignment:
    """Posterior occupancy and Viterbi alignment of one sequence.
    log_probs [T, V]; target [U] ints. posterior[t, j] is exactly -d loss / d emission."""
    _check_collapse(collapse)
    if log_probs.dim() != 2:
        raise ValueError(f"log_probs must be [T, V] for one sequence, got shape {tuple(log_probs.shape)}")
    tgt_list = _int_list(target)
    T, U = log_probs.shape[0], len(tgt_list)
    need = min_alignment_length(tgt_list, collapse)
    if T < need:
        raise ValueError(f"target of {U} tokens needs at least {need} positions under the {collapse!r} "
                         f"collapse map, but the sequence has T = {T}")
    lp = log_probs[None].detach()
    tgt, L, Ul, length_ok = _prepare(lp, torch.tensor([tgt_list], dtype=torch.long), [T], [U], slack_id, collapse)
    with torch.no_grad():
        logZ, feasible, state = _forward(lp, tgt, L, Ul, length_ok, slack_id, collapse)
        if not bool(feasible[0]):
            raise ValueError("no alignment of this target has nonzero probability under these emissions "
                             "(e.g. forced tokens contradict the target)")
        post_slack, post_tok = _occupancy(state, logZ)
        emissions = torch.cat([lp[0, :, slack_id, None], lp[0][:, tgt[0]]], 1).double()  # [T, U+1]
        stay, skip = _lattice_masks(_lattice_labels(tgt, slack_id), collapse)
        em_ext = emissions[:, [0 if s % 2 == 0 else (s + 1) // 2 for s in range(2 * U + 1)]]
        path, path_lp = _viterbi(em_ext.cpu(), stay.cpu(), skip[0].cpu(), U)
    out_dtype = torch.float64 if log_probs.dtype == torch.float64 else torch.float32
    posterior = torch.cat([post_slack[0, :, None], post_tok[0]], 1)
    return Alignment(posterior=posterior.to(out_dtype), path=path, log_likelihood=float(logZ[0]),
                     path_log_prob=path_lp, collapse=collapse, emission_log_probs=emissions.to(out_dtype))
