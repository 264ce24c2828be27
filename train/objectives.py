"""LLaDA's training objectives, and the paper's CTC + <slack> term, as pure tensor functions.

Forward process (LLaDA): each sequence draws t ~ U(0, 1), p_mask = (1 - eps) t + eps, and every
maskable token is replaced by the mask token independently with probability p_mask.

- Pre-training: sum over masked tokens of CE / p_mask, divided by B * L.
- SFT: the prompt is never masked; responses are padded with EOS and the padding counts as
  response; each masked token's CE / p_mask / answer_length, summed, divided by B.
- SFT with `weighting="flat"`: the mean CE over masked tokens, without 1 / p_mask. Not an ELBO,
  but far lower variance: the small embedded base model learns copy-like tasks about 2.5x faster
  with it (a 4-layer model on a synthetic copy task: 48% exact at 600 steps flat, 0% with 1 / p_mask).
- CTC (paper, SFT): `<slack>` tokens are inserted into the response at random (ratio s ~ U(0, s_max));
  CE is computed on the slack-augmented response, plus lambda * CTC of the *original* response
  under all alignments to the augmented response region. Visible positions emit their known token
  ("forced", the default) or the model's distribution ("free"). The same log-softmax tensor feeds
  both terms, so the CTC term costs no second B x L x V tensor.

`Objective` names a run's choice among these (stage, CE or CE + CTC, weighting, collapse...) and
`objective_loss` turns one collated batch into that loss; the trainer and the studies in `bench/`
both call it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mdlm_viz import ctc
from mdlm_viz.ctc import DEFAULT_COLLAPSE

EMISSIONS = ("forced", "free")
PLACEMENTS = ("uniform", "one-gap")  # where insert_slack puts the <slack> tokens
WEIGHTINGS = ("elbo", "flat")  # SFT CE: LLaDA's 1 / p_mask, or the plain mean over masked tokens


@dataclass
class Noised:
    noisy: torch.Tensor  # [B, L] input ids with masked positions replaced by the mask id
    masked: torch.Tensor  # [B, L] bool
    p_mask: torch.Tensor  # [B, 1] masking probability of each sequence


def forward_mask(input_ids: torch.Tensor, *, mask_id: int, eps: float = 1e-3, maskable: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> Noised:
    """LLaDA's forward process. `maskable` [B, L] bool (default: everything) protects the prompt in SFT."""
    B, L = input_ids.shape
    dev = input_ids.device
    where = generator.device if generator is not None else dev
    t = torch.rand(B, 1, generator=generator, device=where).to(dev)  # drawn first: independent of L
    p_mask = (1 - eps) * t + eps
    masked = torch.rand(B, L, generator=generator, device=where).to(dev) < p_mask
    if maskable is not None:
        masked &= maskable
    return Noised(torch.where(masked, mask_id, input_ids), masked, p_mask)


def token_nll(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-log p(target) [B, L] from log-probabilities [B, L, V]."""
    return -log_probs.gather(-1, targets[..., None]).squeeze(-1)


def pretrain_loss(log_probs, targets, masked, p_mask) -> torch.Tensor:
    """Sum over masked tokens of CE / p_mask, divided by B * L (LLaDA pre-training)."""
    B, L = targets.shape
    return (token_nll(log_probs, targets) / p_mask).masked_fill(~masked, 0).sum() / (B * L)


def sft_loss(log_probs, targets, masked, p_mask, answer_lengths) -> torch.Tensor:
    """Sum over masked tokens of CE / p_mask / answer_length, divided by B (LLaDA SFT).

    `answer_lengths` [B] counts the response tokens including the EOS padding."""
    B = targets.shape[0]
    per_token = token_nll(log_probs, targets) / p_mask / answer_lengths[:, None].to(log_probs.dtype)
    return per_token.masked_fill(~masked, 0).sum() / B


def sft_loss_flat(log_probs, targets, masked, weights=None) -> torch.Tensor:
    """Mean CE over the masked tokens of the batch (no 1 / p_mask: biased, but low-variance);
    with `weights` [B, L], the weighted mean."""
    w = masked.to(log_probs.dtype) if weights is None else weights * masked
    return (token_nll(log_probs, targets) * w).sum() / w.sum().clamp(min=1e-6)


def padding_weights(shape, prompt_lengths, response_lengths, pad_weight: float) -> torch.Tensor:
    """[B, L] weights: 1 up to and including each answer's own EOS, `pad_weight` on the EOS padding
    after it. On a 24-token canvas a short answer is mostly padding; weighted down, the padding stops
    drowning the answer's tokens in the loss (docs/results.md)."""
    B, L = shape
    end = (prompt_lengths + response_lengths).to(torch.long)[:, None]
    pos = torch.arange(L, device=end.device)[None, :]
    return torch.where(pos < end, 1.0, pad_weight).expand(B, L)


def insert_slack(response: list[int], slack_id: int, ratio: float, rng: random.Random,
                 collapse: str = DEFAULT_COLLAPSE, placement: str = "uniform") -> list[int]:
    """Insert round(ratio * U) slack tokens into the U-token response (U + 1 gaps): each at a
    uniformly random gap, several may share one ("uniform", this project's default), or all in one
    random gap ("one-gap": the response shifted once, as a single displaced token shifts what
    follows it). Under the standard collapse a slack is first put between every pair of equal
    neighbours, or collapsing would merge them ("100" -> "10")."""
    if placement not in PLACEMENTS:
        raise ValueError(f"slack placement must be one of {PLACEMENTS}, got {placement!r}")
    U = len(response)
    per_gap = [0] * (U + 1)
    if collapse == "standard":
        for i in range(1, U):
            if response[i] == response[i - 1]:
                per_gap[i] = 1
    k = round(ratio * U)
    if placement == "one-gap":
        per_gap[rng.randrange(U + 1)] += k
    else:
        for _ in range(k):
            per_gap[rng.randrange(U + 1)] += 1
    out: list[int] = []
    for i, tok in enumerate(response):
        out.extend([slack_id] * per_gap[i])
        out.append(tok)
    out.extend([slack_id] * per_gap[U])
    return out


def ctc_term(log_probs: torch.Tensor, noisy: torch.Tensor, masked: torch.Tensor, region_start: torch.Tensor,
             region_length: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor, *, slack_id: int,
             collapse: str = DEFAULT_COLLAPSE, emission: str = "forced") -> tuple[torch.Tensor, torch.Tensor]:
    """CTC of the original responses over the augmented response regions; (loss, feasible [B]).

    log_probs [B, L, V]: the model's log-softmax over the whole canvas. Sample b's region is
    positions [region_start[b], region_start[b] + region_length[b]). The positions before it are
    forced to emit <slack> (an alignment may start with any number of slacks, so this is the same
    as starting at the region), which lets the loss read the canvas tensor in place."""
    if emission not in EMISSIONS:
        raise ValueError(f"emission must be one of {EMISSIONS}, got {emission!r}")
    B, L, _ = log_probs.shape
    pos = torch.arange(L, device=noisy.device)[None, :]
    before = pos < region_start[:, None]
    forced = torch.where(before, slack_id, -1)
    if emission == "forced":
        visible = ~masked & ~before
        forced = torch.where(visible, noisy, forced)
    return ctc.slack_ctc_loss(log_probs, targets, region_start + region_length, target_lengths, slack_id=slack_id,
                              collapse=collapse, reduction="mean", return_feasible=True, forced=forced)


def log_softmax32(logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities in float32 whatever the model's dtype (bf16 logits lose the tail)."""
    return F.log_softmax(logits.float(), dim=-1)


# ----------------------------------------------------------------------------------------------
# A run's objective: which of the terms above, and how they combine into one batch's loss


@dataclass
class Objective:
    stage: str  # "pretrain" or "sft"
    mask_id: int
    kind: str = "ce"  # "ce" or "ctc" (CE on the slack-augmented target + lam * CTC)
    slack_id: int | None = None
    lam: float = 0.1
    collapse: str = DEFAULT_COLLAPSE
    emission: str = "forced"
    eps: float = 1e-3
    weighting: str = "elbo"  # SFT CE: "elbo" (LLaDA, 1 / p_mask) or "flat" (mean over masked tokens)
    pad_weight: float = 1.0  # flat SFT CE: weight of the EOS padding after each answer's own EOS

    def __post_init__(self):
        if self.stage not in ("pretrain", "sft") or self.kind not in ("ce", "ctc") or self.weighting not in WEIGHTINGS:
            raise ValueError(f"unknown objective {self.stage}/{self.kind}")
        if not 0 <= self.pad_weight <= 1 or (self.pad_weight != 1 and self.weighting != "flat"):
            raise ValueError(f"pad_weight must be in [0, 1] and needs the flat weighting, got {self.pad_weight} "
                             f"with {self.weighting}")
        if self.kind == "ctc" and self.slack_id is None:
            raise ValueError("the ctc objective needs a slack token id")


def objective_loss(o: Objective, log_probs: torch.Tensor, ids: torch.Tensor, noised: Noised,
                   inputs: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training loss of one batch and its logged parts, from the model's log-probabilities [B, L, V].

    `inputs` is a collator's batch (`prompt_lengths`, `answer_lengths`, and for CTC `ctc_targets`,
    `ctc_target_lengths`, `ctc_region_lengths`). The trainer and the studies in `bench/` share it."""
    if o.stage == "sft" and o.weighting == "flat":
        weights = None
        if o.pad_weight != 1:  # needs the collator's response_lengths
            weights = padding_weights(ids.shape, inputs["prompt_lengths"], inputs["response_lengths"], o.pad_weight)
        ce = sft_loss_flat(log_probs, ids, noised.masked, weights)
    elif o.stage == "sft":
        ce = sft_loss(log_probs, ids, noised.masked, noised.p_mask, inputs["answer_lengths"])
    else:
        ce = pretrain_loss(log_probs, ids, noised.masked, noised.p_mask)
    parts = {"ce": ce}
    if o.kind != "ctc" or "ctc_targets" not in inputs:
        return ce, parts
    ctc_loss, feasible = ctc_term(
        log_probs, noised.noisy, noised.masked, inputs["prompt_lengths"], inputs["ctc_region_lengths"],
        inputs["ctc_targets"], inputs["ctc_target_lengths"], slack_id=o.slack_id, collapse=o.collapse,
        emission=o.emission)
    parts.update(ctc=ctc_loss, ctc_infeasible=(~feasible).sum())
    return ce + o.lam * ctc_loss, parts
