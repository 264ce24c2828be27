"""The demo-ability check: does one shifted token visibly break a CE model while a CTC model absorbs it?

For each exact-answer prompt, both models decode it clean and once per comparable shift: a
`ShiftAtCommit(p)` for each position p of the reference answer, "the token that lands at p arrives
one place to the right", which names the same intervention in two models whose decode orders
differ. Each shifted answer is compared with the reference (broken or intact) and with the clean
answer (token edit distance, `<slack>` added). A prompt is demo-able when both models answer it
right clean and some shift breaks the baseline while the candidate stays right: what the app's
"Find a revealing shift" looks for.

Everything is greedy, so a shifted run differs from its clean run only by the shift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .chat import decode, prompt_ids
from .interventions import ShiftAtCommit, shiftable_positions
from .robustness import EvalPrompt
from .stats import edit_distance


@dataclass
class Decode:
    text: str  # answer, <slack> stripped, cut at EOS
    tokens: list[int]  # the same as ids
    slack: int  # <slack> committed in the response
    applied: bool  # the shift (if any) was applied


@dataclass
class ShiftResult:
    position: int
    runs: dict[str, Decode]  # model name -> the shifted decode


@dataclass
class PromptResult:
    prompt: str
    family: str
    answer: str
    clean: dict[str, Decode]
    opportunities: dict[str, int]  # (step, position) pairs where a +1 shift of content was valid
    shifts: list[ShiftResult] = field(default_factory=list)


def shift_opportunities(trace, skip_ids=(), direction: int = 1) -> int:
    """How many (step, position) pairs of a decode allow a shift in `direction`: content committed
    with a masked neighbour in its block, after every step but the last of each block."""
    n = 0
    for step in trace.steps:
        hi = min((step.block + 1) * trace.block_length, trace.gen_length)
        n += len(shiftable_positions(step.canvas, trace.mask_id, hi, direction, skip_ids))
    return n


def decode_rows(model, tokenizer, facts, prompts: Sequence[list[int]], shifts: Sequence[int | None], sampler: dict,
                trace: bool = False):
    """One batched greedy decode: row i is prompts[i] (token ids, chat template applied) with
    ShiftAtCommit(shifts[i]) (None: clean). Returns a Decode per row and the Generation."""
    interventions = [ShiftAtCommit(p, batch=i) for i, p in enumerate(shifts) if p is not None]
    out = decode(model, facts, prompts, {**sampler, "top_k": 0, "temperature": 0.0}, interventions, trace)
    texts = out.texts(tokenizer)
    rows = []
    for i in range(len(prompts)):
        raw = out.response_ids(i, strip_slack=False)
        tokens = [t for t in raw if t != facts.slack_id]
        slack = sum(t == facts.slack_id for t in raw) if facts.slack_id is not None else 0
        rows.append(Decode(texts[i].strip(), tokens, slack, bool(out.displacements[i])))
    return rows, out


def _decodes(model, tokenizer, facts, messages: list[list[dict]], shifts: list[int | None], sampler: dict,
             trace: bool = False):
    prompts = [prompt_ids(tokenizer, m) for m in messages]
    return decode_rows(model, tokenizer, facts, prompts, shifts, sampler, trace)


def check(models: dict[str, tuple], prompts: Sequence[EvalPrompt], sampler: dict, max_shifts: int = 24,
          batch_size: int = 64, progress=lambda s: None) -> list[PromptResult]:
    """Clean and comparable-shift decodes of every exact prompt by every model (name -> model,
    tokenizer, facts). Shifts are tried at the first `max_shifts` positions of the reference answer."""
    prompts = [p for p in prompts if p.exact]
    results = []
    first_tok = next(iter(models.values()))[1]
    for p in prompts:
        n = len(first_tok(p.reference, add_special_tokens=False)["input_ids"])
        results.append(PromptResult(p.messages[-1]["content"], p.family, p.reference, {}, {},
                                    [ShiftResult(pos, {}) for pos in range(min(n, max_shifts, sampler["gen_length"]))]))
    for name, (model, tok, facts) in models.items():
        skip = (facts.eos_id, facts.eot_id, facts.slack_id)
        for i in range(0, len(prompts), batch_size):  # clean, with traces to count the opportunities
            chunk = prompts[i:i + batch_size]
            rows, out = _decodes(model, tok, facts, [p.messages for p in chunk], [None] * len(chunk), sampler, True)
            for j, row in enumerate(rows):
                results[i + j].clean[name] = row
                results[i + j].opportunities[name] = shift_opportunities(out.traces[j], skip)
        jobs = [(r, s) for r, res in enumerate(results) for s in range(len(res.shifts))]
        for i in range(0, len(jobs), batch_size):
            chunk = jobs[i:i + batch_size]
            rows, _ = _decodes(model, tok, facts, [prompts[r].messages for r, _ in chunk],
                               [results[r].shifts[s].position for r, s in chunk], sampler)
            for (r, s), row in zip(chunk, rows):
                results[r].shifts[s].runs[name] = row
            progress(f"{name}: {min(i + batch_size, len(jobs))}/{len(jobs)} shifted decodes")
    return results


def _mean(xs) -> float | None:
    xs = list(xs)
    return round(sum(xs) / len(xs), 4) if xs else None


def intact(result: PromptResult, shift: ShiftResult, name: str) -> bool:
    """Whether `name`'s shifted answer is right: equal to the reference answer, or where there is
    none (a free prompt in the app), to its own clean answer."""
    want = result.answer if result.answer is not None else result.clean[name].text
    return shift.runs[name].text == want


def summarise(results: Sequence[PromptResult], baseline: str, candidate: str) -> dict:
    """The issue's demo-ability figures for a baseline (CE) and a candidate (CTC) model."""
    both_right = [r for r in results if r.clean[baseline].text == r.answer and r.clean[candidate].text == r.answer]
    pairs = [(r, s) for r in both_right for s in r.shifts if s.runs[baseline].applied and s.runs[candidate].applied]
    reveal = {id(r) for r, s in pairs if not intact(r, s, baseline) and intact(r, s, candidate)}
    reverse = {id(r) for r, s in pairs if intact(r, s, baseline) and not intact(r, s, candidate)}
    breaking = [(r, s) for r, s in pairs if not intact(r, s, baseline)]
    families = sorted({r.family for r in results})
    models = (baseline, candidate)
    return {
        "prompts": len(results),
        "clean_accuracy": {m: _mean(r.clean[m].text == r.answer for r in results) for m in models},
        "clean_accuracy_by_family": {m: {f: _mean(r.clean[m].text == r.answer for r in results if r.family == f)
                                         for f in families} for m in models},
        "opportunities_per_decode": {m: _mean(r.opportunities[m] for r in results) for m in models},
        "both_right": len(both_right),
        "demoable": _mean(id(r) in reveal for r in results),
        "reverse_case": _mean(id(r) in reverse for r in results),
        "shifts_on_both_right": len(pairs),
        "baseline_broken_per_shift": _mean(not intact(r, s, baseline) for r, s in pairs),
        "candidate_intact_per_shift": _mean(intact(r, s, candidate) for r, s in pairs),
        "baseline_edit_distance_when_broken": _mean(edit_distance(s.runs[baseline].tokens, r.clean[baseline].tokens)
                                                    for r, s in breaking),
        "candidate_slack_added_per_shift": _mean(s.runs[candidate].slack - r.clean[candidate].slack for r, s in pairs),
        "applied_share": {m: _mean(s.runs[m].applied for r in results for s in r.shifts) for m in models},
        "demoable_by_family": {f: _mean(id(r) in reveal for r in results if r.family == f) for f in families},
    }


def rank_shifts(result: PromptResult, baseline: str, candidate: str) -> list[ShiftResult]:
    """Shifts applied in both models, most revealing first: baseline broken and candidate intact,
    then the baseline's token edit distance from its clean answer (the app's ranking)."""
    applied = [s for s in result.shifts if s.runs[baseline].applied and s.runs[candidate].applied]
    return sorted(applied, key=lambda s: (not intact(result, s, baseline), intact(result, s, candidate),
                                          edit_distance(s.runs[baseline].tokens, result.clean[baseline].tokens)),
                  reverse=True)


def best_shift(result: PromptResult, baseline: str, candidate: str) -> ShiftResult | None:
    ranked = rank_shifts(result, baseline, candidate)
    return ranked[0] if ranked else None


def to_dict(result: PromptResult) -> dict:
    def d(x: Decode) -> dict:
        return {"text": x.text, "slack": x.slack, "applied": x.applied}

    return {"prompt": result.prompt, "family": result.family, "answer": result.answer,
            "clean": {m: d(x) for m, x in result.clean.items()}, "opportunities": result.opportunities,
            "shifts": [{"position": s.position, **{m: d(x) for m, x in s.runs.items()}} for s in result.shifts]}


