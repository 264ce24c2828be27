""""Find a revealing shift": the comparable shift that breaks CE's answer while CTC absorbs it.

Tries `ShiftAtCommit(p)` at every position p of the CE model's clean answer in both roles'
models (greedy, one batched decode per model: `mdlm_viz.reveal`), ranks them (CE broken, CTC
intact, then CE's edit distance) and explains what was found in words.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mdlm_viz import reveal

from .decoding import DEVICE_LOCK, decode_all
from .models import LoadedModel
from .session import Session
from .settings import DecodeSettings, UserError, parse_settings

MAX_FINDER_SHIFTS = 24  # answer positions tried (one batched decode per model)


@dataclass
class Found:
    best: int  # the answer position whose ShiftAtCommit is applied
    choices: list[tuple[str, int]]  # the next candidates: (label, position)
    message: str
    revealing: bool  # the best shift breaks CE and leaves CTC intact


def finder_roles(names, models: dict[str, LoadedModel]) -> tuple[str, str]:
    """The CE-side and CTC-side models among `names`: 'ce' and 'ctc' when present, else the first
    without and the first with a <slack> token."""
    plain = [n for n in names if models[n].facts.slack_id is None]
    slack = [n for n in names if models[n].facts.slack_id is not None]
    if not plain or not slack:
        raise UserError("the finder compares a model without <slack> (CE) and one with it (CTC): decode with both "
                        "ticked")
    return ("ce" if "ce" in plain else plain[0]), ("ctc" if "ctc" in slack else slack[0])


def find_revealing(models: dict[str, LoadedModel], session: Session | None, answers: dict[str, str]) -> Found:
    if session is None or not session.clean:
        raise UserError("decode a prompt first: the finder shifts tokens of that decode")
    if any(n not in models for n in session.clean):
        raise UserError("this decode was recorded (a lesson example or an import): decode the prompt to search it")
    base, cand = finder_roles(list(session.clean), models)
    settings, answer = session.settings, answers.get(session.prompt)
    text = models[base].decode(session.clean[base].response())
    n = len(models[base].tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0
    positions = list(range(min(n, MAX_FINDER_SHIFTS, settings.gen_length)))
    if not positions:
        raise UserError(f"{base}'s answer is empty: there is no token to shift")
    result = reveal.PromptResult(session.prompt, "", answer, {}, {}, [reveal.ShiftResult(p, {}) for p in positions])
    for name in (base, cand):
        lm = models[name]
        with DEVICE_LOCK, torch.inference_mode():
            prompts = [session.prompt_ids[name]] * (1 + len(positions))
            rows, _ = reveal.decode_rows(lm.model, lm.tokenizer, lm.facts, prompts, [None, *positions],
                                         settings.sampler_kwargs(lm))
        result.clean[name] = rows[0]
        for shift, row in zip(result.shifts, rows[1:]):
            shift.runs[name] = row
    ranked = reveal.rank_shifts(result, base, cand)
    if not ranked:
        raise UserError(f"no shift applies in both {base} and {cand}: every answer token's right neighbour was "
                        "already committed when it landed. Try a longer answer.")
    wrong = [n for n in (base, cand) if answer is not None and result.clean[n].text != answer]
    best = ranked[0]
    revealing = not reveal.intact(result, best, base) and reveal.intact(result, best, cand)
    if wrong:
        message = (f"the clean answer of {' and '.join(wrong)} is already wrong (expected {answer!r}), so a shift has "
                   "nothing to break; showing the shift that changes the most.")
    elif revealing:
        count = sum(not reveal.intact(result, s, base) and reveal.intact(result, s, cand) for s in ranked)
        message = (f"found: the token that lands at position {best.position} moved one place right breaks {base}'s "
                   f"answer ({best.runs[base].text!r}) while {cand} absorbs it ({best.runs[cand].text!r}). "
                   f"{count} of {len(ranked)} shifts tried reveal this.")
    else:
        message = (f"no shift of the {len(ranked)} tried breaks {base} while {cand} stays intact; showing the one "
                   "that changes the most.")
    choices = [(f"position {s.position}: {base} {s.runs[base].text!r} · {cand} {s.runs[cand].text!r}", s.position)
               for s in ranked[:6]]
    return Found(best.position, choices, message, revealing and not wrong)


def shipped_settings(models: dict[str, LoadedModel]) -> DecodeSettings:
    """Greedy decoding at the first model's shipped defaults (what the page starts with)."""
    first = next(iter(models.values())).facts.defaults
    return parse_settings(first.get("gen_length", 48), first.get("steps", 48), first.get("block_length", 48),
                          "low_confidence", 0.0, 0.0, 0)


def reveal_prompt(models: dict[str, LoadedModel], prompt: str, settings: DecodeSettings,
                  answers: dict[str, str]) -> tuple[Session, Found]:
    """Decode `prompt` with every model, then run the finder on it (a UserError when it cannot)."""
    clean = decode_all(models, prompt, settings)
    session = Session(prompt, settings, clean, {n: models[n].prompt_ids(prompt) for n in clean})
    return session, find_revealing(models, session, answers)
