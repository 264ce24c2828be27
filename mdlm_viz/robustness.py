"""Shift-robustness evaluation: the paper's controlled intervention, measured.

For every checkpoint, every held-out prompt and every shift seed, the same decode runs once
clean and once per strength r with `RandomShifts(r)`: a fraction r of the generated tokens is
displaced by one position during decoding (see `interventions.py`). Decoding is greedy
(temperature 0), so the only randomness is where the shifts land and the two runs pair up
exactly; at r = 0 the "intervened" output must equal the clean one.

Each intervened output is judged against the same model's clean output (win 1, tie 0.5, loss 0):
- prompts with an exact answer: by the reference, (exact match, edit similarity) compared in
  that order;
- open prompts: by a fluency judge, the judge checkpoint's masked-diffusion likelihood estimate
  of the response (LLaDA's ELBO, per token, with masks fixed per prompt so both texts are
  scored with the same noise). Identical texts always tie.
Summaries: win rate, accuracy and edit similarity per strength, the Pearson correlation between
strength and win rate with a bootstrap confidence interval over prompts, slack tokens added per
displacement, and exact match on collapse-prone answers (adjacent repeated tokens, such as
"100" or "0 0 0") per collapse map.

This module decodes, judges and builds the results dict (`RESULTS_FORMAT`); the statistics are in
`stats.py` and the Markdown tables of a results dict in `report.py`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch

from .chat import decode_chats, left_pad, prompt_ids
from .interventions import RandomShifts
from .stats import (correlation_difference, edit_similarity, mean_ci, paired_difference, pairwise_win,
                    strength_correlation)

STRENGTHS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.10)  # the paper's sweep, as fractions
RESULTS_FORMAT = "mdlm-viz.robustness/1"


@dataclass
class EvalPrompt:
    messages: list[dict]  # chat turns before the answer
    reference: str  # the held-out response
    family: str = "all"
    exact: bool = False  # True: `reference` is the one right answer


@dataclass
class Judged:
    """One intervened output judged against the clean output of the same model and prompt."""

    prompt: int
    seed: int
    strength: float
    text: str
    win: float  # 1 / 0.5 / 0
    correct: bool | None  # exact match to the reference (exact prompts only)
    similarity: float  # normalised edit similarity to the reference
    displacements: int
    unapplied: int
    slack_added: int  # slack tokens in the raw response minus those of the clean run


# ----------------------------------------------------------------------------- prompts
def has_adjacent_repeat(ids: Sequence[int]) -> bool:
    """True if two neighbouring tokens are equal: the standard CTC collapse would merge them."""
    return any(a == b for a, b in zip(ids, ids[1:]))


def select_prompts(prompts: Sequence[EvalPrompt], n: int) -> list[EvalPrompt]:
    """Up to n prompts taken round-robin over families (file order within a family), so every
    family is represented equally while it has prompts left."""
    by_family: dict[str, list[EvalPrompt]] = {}
    for p in prompts:
        by_family.setdefault(p.family, []).append(p)
    queues = [list(reversed(v)) for _, v in sorted(by_family.items())]
    out: list[EvalPrompt] = []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop())
    return out


# ----------------------------------------------------------------------------- model calls
@torch.no_grad()
def diffusion_log_likelihood(model, prompts: Sequence[list[int]], responses: Sequence[list[int]], *, mask_id: int,
                             eos_id: int, samples: int = 4, seed: int = 0) -> list[float]:
    """Per-token masked-diffusion likelihood estimate of each response (+ EOS) given its prompt.

    LLaDA's bound: log p(r | p) >= E_t E_mask[(1/t) sum over masked i of log p(r_i | masked r, p)].
    Mask ratios are stratified, t_k = (k + 0.5) / samples, and the masks come from a generator
    seeded per row by `seed`, so two responses of one prompt are scored under the same noise."""
    device = next(model.parameters()).device
    seqs = [list(p) + list(r) + [eos_id] for p, r in zip(prompts, responses)]
    ids, attn = left_pad(seqs, eos_id)  # [B, L] each
    L = ids.shape[1]
    start = torch.tensor([L - len(r) - 1 for r in responses])  # first response position per row
    is_resp = torch.arange(L)[None, :] >= start[:, None]
    total = torch.zeros(len(seqs), dtype=torch.float64)
    max_resp = max(len(r) + 1 for r in responses)
    for k in range(samples):
        t = (k + 0.5) / samples
        # One draw per k shared by all rows, indexed from each response's start: two responses of
        # one prompt see the same noise whatever batch or padding they come in.
        u_k = torch.rand(max(1024, max_resp), generator=torch.Generator().manual_seed(seed * 1009 + k))
        rel = torch.arange(L)[None, :] - start[:, None]  # position within the response
        masked = is_resp & (u_k[rel.clamp(min=0)] < t)
        first = start.clamp(max=L - 1)
        masked[torch.arange(len(seqs)), first] |= ~masked.any(1)  # at least one masked token per row
        noisy = torch.where(masked, torch.full_like(ids, mask_id), ids)
        logits = model(input_ids=noisy.to(device), attention_mask=attn.to(device)).logits.float().cpu()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[..., None])[..., 0]
        total += (logp * masked).sum(1).double() / t
    lengths = torch.tensor([len(r) + 1 for r in responses], dtype=torch.float64)
    return (total / samples / lengths).tolist()


@dataclass
class Decoded:
    text: list[str]
    raw: list[list[int]]  # raw response ids up to the first EOS (slack kept)
    displacements: list[int]
    unapplied: list[int]


def decode_prompts(model, tokenizer, facts, prompts: Sequence[EvalPrompt], sampler: dict,
                   strength: float = 0.0, shift_seed: int = 0, shifts: bool = True) -> Decoded:
    """Greedy decode of a batch of prompts, with RandomShifts(strength, shift_seed) when `shifts`."""
    interventions = [RandomShifts(strength, seed=shift_seed)] if shifts else []
    out = decode_chats(model, tokenizer, facts, [p.messages for p in prompts], sampler, interventions)
    raw = [out.response_ids(i, strip_slack=False) for i in range(len(prompts))]
    return Decoded(text=[t.strip() for t in out.texts(tokenizer)], raw=raw,
                   displacements=[len(d) for d in out.displacements], unapplied=list(out.unapplied_shifts))


# ----------------------------------------------------------------------------- the sweep
@dataclass
class SweepConfig:
    strengths: tuple[float, ...] = STRENGTHS
    seeds: tuple[int, ...] = (0, 1, 2)
    gen_length: int = 48
    steps: int = 48
    block_length: int = 16
    batch_size: int = 64
    judge_samples: int = 4
    n_boot: int = 1000
    # r = 0 decodes the exact code path of the clean run (no shift is ever drawn), so by default
    # its row reuses the clean outputs; True decodes it again (the tests check the pairing).
    decode_r0: bool = False
    slack_bias: float = 0.0  # the sampler's slack_bias for checkpoints with a <slack> token (0 = the paper's)
    eos_last: bool = False  # the sampler's confidence_eos_eot_inf: commit EOS predictions last


def sweep_model(model, tokenizer, facts, prompts: Sequence[EvalPrompt], cfg: SweepConfig,
                fluency: Callable[[list[int], list[str]], list[float]],
                progress: Callable[[str], None] = lambda s: None) -> dict:
    """Every strength and seed for one checkpoint; returns the per-model results block."""
    sampler = dict(steps=cfg.steps, gen_length=cfg.gen_length, block_length=cfg.block_length, temperature=0.0,
                   remasking="low_confidence", confidence_eos_eot_inf=cfg.eos_last)
    if cfg.slack_bias and facts.slack_id is not None:
        sampler["slack_bias"] = cfg.slack_bias
    slack = facts.slack_id
    # Clean runs: one per prompt (greedy decoding does not depend on the shift seed).
    clean = Decoded([], [], [], [])
    for i in range(0, len(prompts), cfg.batch_size):
        d = decode_prompts(model, tokenizer, facts, prompts[i:i + cfg.batch_size], sampler, shifts=False)
        for k in ("text", "raw", "displacements", "unapplied"):
            getattr(clean, k).extend(getattr(d, k))
    clean_sim = [edit_similarity(t, p.reference) for t, p in zip(clean.text, prompts)]
    clean_ok = [t == p.reference.strip() if p.exact else None for t, p in zip(clean.text, prompts)]
    open_rows = [i for i, p in enumerate(prompts) if not p.exact]
    clean_fluency = dict(zip(open_rows, fluency(open_rows, [clean.text[i] for i in open_rows]))) if open_rows else {}

    judged: list[Judged] = []
    for strength in cfg.strengths:
        for seed in cfg.seeds:
            t0 = time.perf_counter()
            for i in range(0, len(prompts), cfg.batch_size):
                rows = list(range(i, min(i + cfg.batch_size, len(prompts))))
                if strength == 0 and not cfg.decode_r0:
                    d = Decoded(*[[getattr(clean, k)[r] for r in rows] for k in ("text", "raw", "displacements",
                                                                                 "unapplied")])
                else:
                    d = decode_prompts(model, tokenizer, facts, [prompts[r] for r in rows], sampler, strength, seed)
                changed_open = [r for r, t in zip(rows, d.text) if not prompts[r].exact and t != clean.text[r]]
                flu = dict(zip(changed_open, fluency(changed_open, [d.text[rows.index(r)] for r in changed_open])))
                for j, r in enumerate(rows):
                    p, text = prompts[r], d.text[j]
                    sim = edit_similarity(text, p.reference)
                    ok = text == p.reference.strip() if p.exact else None
                    same = text == clean.text[r]
                    if p.exact:
                        win = pairwise_win((ok, sim), (clean_ok[r], clean_sim[r]), same)
                    else:
                        win = pairwise_win(flu.get(r), clean_fluency[r], same)
                    slack_added = (sum(t == slack for t in d.raw[j]) - sum(t == slack for t in clean.raw[r])
                                   if slack is not None else 0)
                    judged.append(Judged(r, seed, strength, text, win, ok, sim, d.displacements[j], d.unapplied[j],
                                         slack_added))
            progress(f"r={strength:g} seed={seed}: {time.perf_counter() - t0:.1f}s")
    return summarise(prompts, clean, clean_ok, clean_sim, judged, cfg, facts)


def summarise(prompts, clean: Decoded, clean_ok, clean_sim, judged: list[Judged], cfg: SweepConfig, facts) -> dict:
    n = len(prompts)
    by_point: dict[tuple[float, int], list[Judged]] = {}
    for j in judged:
        by_point.setdefault((j.strength, j.seed), [None] * n)[j.prompt] = j
    wins_pp = {pt: [j.win for j in js] for pt, js in by_point.items()}
    exact_rows = [i for i, p in enumerate(prompts) if p.exact]
    rows = []
    for s in cfg.strengths:
        js = [j for (st, _), v in by_point.items() if st == s for j in v]
        wins = [j.win for j in js]
        disp = sum(j.displacements for j in js)
        per_prompt = [sum(by_point[(s, sd)][i].win for sd in cfg.seeds) / len(cfg.seeds) for i in range(n)]
        exact_js = [j for j in js if j.correct is not None]
        rows.append({
            "strength": s,
            "win_rate": sum(wins) / len(wins),
            "win_ci": mean_ci(per_prompt, cfg.n_boot),
            "win_rate_exact": _mean([j.win for j in exact_js]),
            "win_rate_open": _mean([j.win for j in js if j.correct is None]),
            "accuracy": _mean([float(j.correct) for j in exact_js]),
            "edit_similarity": _mean([j.similarity for j in js]),
            "changed": _mean([float(j.text != clean.text[j.prompt]) for j in js]),
            "displacements": disp,
            "unapplied": sum(j.unapplied for j in js),
            "displacements_per_output": disp / len(js),
            "slack_per_displacement": (sum(j.slack_added for j in js) / disp) if disp and facts.slack_id is not None
            else None,
        })
    families: dict[str, list[int]] = {}
    for i in exact_rows:
        families.setdefault(prompts[i].family, []).append(i)
    return {
        "objective": facts.objective,
        "collapse": facts.collapse if facts.slack_id is not None else None,
        "clean": {
            "accuracy": _mean([float(clean_ok[i]) for i in exact_rows]),
            "per_family": {f: _mean([float(clean_ok[i]) for i in v]) for f, v in sorted(families.items())},
            "edit_similarity": _mean(clean_sim),
            "slack_tokens": sum(sum(t == facts.slack_id for t in r) for r in clean.raw) if facts.slack_id is not None
            else 0,
        },
        "by_strength": rows,
        "pearson": strength_correlation(wins_pp, cfg.n_boot),
        "r0_identical": (sum(j.text == clean.text[j.prompt] for j in judged if j.strength == 0)
                         if 0.0 in cfg.strengths and cfg.decode_r0 else None),
        # Per-prompt values (prompt order), so models swept on the same prompts compare pairwise.
        "per_prompt": {"clean_correct": [None if ok is None else float(ok) for ok in clean_ok],
                       "wins": {f"{s:g}/{sd}": w for (s, sd), w in sorted(wins_pp.items())}},
        "samples": [{"prompt": prompts[i].messages[-1]["content"], "reference": prompts[i].reference,
                     "output": clean.text[i]} for i in _sample_rows(prompts)],
        "outputs": {"clean": clean.text,
                    "intervened": [{"prompt": j.prompt, "seed": j.seed, "strength": j.strength, "text": j.text,
                                    "win": j.win, "displacements": j.displacements, "slack_added": j.slack_added}
                                   for j in judged if j.strength > 0 and j.text != clean.text[j.prompt]][:200]},
    }


def _wins_by_point(res: dict) -> dict[tuple[float, int], list[float]]:
    out = {}
    for key, wins in res["per_prompt"]["wins"].items():
        strength, seed = key.split("/")
        out[(float(strength), int(seed))] = wins
    return out


def compare_models(res_a: dict, res_b: dict, n_boot: int = 1000) -> dict:
    """Model a against model b, both swept on the same prompts: paired differences (a - b) of
    clean accuracy, of the win rate at each strength (seeds averaged per prompt) and of the
    strength / win-rate correlation, each with a bootstrap CI over prompts."""
    ca, cb = res_a["per_prompt"]["clean_correct"], res_b["per_prompt"]["clean_correct"]
    if len(ca) != len(cb):
        raise ValueError(f"the two sweeps have {len(ca)} and {len(cb)} prompts: compare sweeps of the same prompts")
    exact = [i for i, v in enumerate(ca) if v is not None]
    wa, wb = _wins_by_point(res_a), _wins_by_point(res_b)
    win_rate = {}
    for s in sorted({st for st, _ in wa if st > 0}):
        seeds = sorted(sd for st, sd in wa if st == s)
        per_a = [sum(wa[(s, sd)][i] for sd in seeds) / len(seeds) for i in range(len(ca))]
        per_b = [sum(wb[(s, sd)][i] for sd in seeds) / len(seeds) for i in range(len(cb))]
        win_rate[f"{s:g}"] = paired_difference(per_a, per_b, n_boot)
    return {"clean_accuracy": paired_difference([ca[i] for i in exact], [cb[i] for i in exact], n_boot)
            if exact else None,
            "win_rate": win_rate,
            "pearson": correlation_difference(wa, wb, n_boot)}


def surface_form(prompts: Sequence[EvalPrompt], results: dict, tokenizer) -> dict:
    """Exact match, clean runs, on prompts whose answer has adjacent repeated tokens."""
    rows = [i for i, p in enumerate(prompts)
            if p.exact and has_adjacent_repeat(tokenizer(p.reference.strip(), add_special_tokens=False)["input_ids"])]
    out = {"n": len(rows)}
    for name, res in results.items():
        texts = res["outputs"]["clean"]
        out[name] = {"collapse": res["collapse"],
                     "exact_match": _mean([float(texts[i] == prompts[i].reference.strip()) for i in rows])}
    return out


def _sample_rows(prompts, per_family: int = 1) -> list[int]:
    seen: dict[str, int] = {}
    rows = []
    for i, p in enumerate(prompts):
        if seen.get(p.family, 0) < per_family:
            seen[p.family] = seen.get(p.family, 0) + 1
            rows.append(i)
    return rows


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def run_sweep(checkpoints: dict[str, tuple], prompts: Sequence[EvalPrompt], cfg: SweepConfig, judge=None,
              progress: Callable[[str], None] = print, reference: str | None = None) -> dict:
    """The whole evaluation. `checkpoints`: name -> (model, tokenizer, facts); `judge`: the
    (model, tokenizer, facts) whose likelihood scores open prompts (default: the first checkpoint);
    `reference`: the checkpoint every other one is compared with pairwise (default: "ce" if swept)."""
    if reference is None and "ce" in checkpoints:
        reference = "ce"
    if reference is not None and reference not in checkpoints:
        raise ValueError(f"reference {reference!r} is not one of the swept checkpoints ({', '.join(checkpoints)})")
    judge = judge or next(iter(checkpoints.values()))
    jm, jt, jf = judge
    judge_prompts = [prompt_ids(jt, p.messages) for p in prompts]

    def fluency(rows: list[int], texts: list[str]) -> list[float]:
        scores = []
        for i in range(0, len(rows), cfg.batch_size):
            chunk = rows[i:i + cfg.batch_size]
            resp = [jt(t, add_special_tokens=False)["input_ids"] for t in texts[i:i + cfg.batch_size]]
            got = diffusion_log_likelihood(jm, [judge_prompts[r] for r in chunk], resp, mask_id=jf.mask_id,
                                           eos_id=jf.eos_id, samples=cfg.judge_samples, seed=0)
            scores.extend(g if r else -math.inf for g, r in zip(got, resp))  # an empty answer loses
        return scores

    t0 = time.perf_counter()
    results = {}
    for name, (model, tok, facts) in checkpoints.items():
        t = time.perf_counter()
        results[name] = sweep_model(model, tok, facts, prompts, cfg, fluency,
                                    progress=lambda s, n=name: progress(f"[{n}] {s}"))
        results[name]["seconds"] = round(time.perf_counter() - t, 1)
        progress(f"[{name}] done in {results[name]['seconds']}s")
    first_tok = next(iter(checkpoints.values()))[1]
    return {
        "format": RESULTS_FORMAT,
        "config": asdict(cfg),
        "n_prompts": len(prompts),
        "families": {f: sum(p.family == f for p in prompts) for f in sorted({p.family for p in prompts})},
        "judge": {"exact": "reference: (exact match, edit similarity) compared in order",
                  "open": f"masked-diffusion likelihood per token under the judge checkpoint, "
                          f"{cfg.judge_samples} stratified mask ratios"},
        "models": results,
        "reference": reference,
        "comparisons": {name: compare_models(res, results[reference], cfg.n_boot)
                        for name, res in results.items() if reference is not None and name != reference},
        "surface_form": surface_form(prompts, results, first_tok),
        "seconds": round(time.perf_counter() - t0, 1),
    }
