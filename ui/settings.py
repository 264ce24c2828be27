"""What a visitor may ask for: the one table of limits, the decode settings, the prompt checks.

Every control's range comes from `LIMITS` (sliders and Number fields are built from it), and every
value a visitor sends is checked here, so the page and the API answer bad input with the same
message: what to change. The decode schedule's rules belong to the sampler (`check_schedule`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mdlm_viz.sampling import REMASKING, check_schedule

MAX_PROMPT_CHARS = 1000
MAX_PROMPT_TOKENS = 256  # after the chat template: the page refuses longer prompts with this number
MAX_MODELS = 4
STREAM_EVERY_S = 0.1  # at most ~10 page updates a second while decoding
STREAM_AFTER_S = 0.25  # ... once a decode has run this long: a shorter one shows its result at once

# Inclusive ranges of the settings a visitor may choose: small enough to keep a run interactive.
LIMITS = {"gen_length": (1, 512), "steps": (1, 512), "block_length": (1, 512), "temperature": (0.0, 5.0),
          "cfg_scale": (0.0, 10.0), "seed": (0, 2**31 - 1), "slack_bias": (-10.0, 10.0), "strength": (0.0, 1.0),
          "step": (0, 511), "position": (0, 511), "speed": (1, 20), "epsilon": (0.01, 0.5)}
LABELS = {"gen_length": "generation length", "block_length": "block length", "cfg_scale": "CFG scale",
          "slack_bias": "slack bias", "strength": "the random strength r", "epsilon": "ε"}

# (prompt, exact answer or None): held-out prompts of the trained families, so the finder can say
# whether a clean answer is right. tests/test_assets.py checks each exact one is demo-able.
PRESET_PAIRS = [
    ("Repeat exactly: 6 6 3 4 8 0 9 1", "6 6 3 4 8 0 9 1"),
    ("Write these in reverse order: ship star nest sheep table cow", "cow table sheep nest star ship"),
    ("Write this again: lamp leaf yard banana", "lamp leaf yard banana"),
    ("Reverse the order: 5 6 9", "9 6 5"),
    ("Write 78 in words.", "seventy-eight"),
    ("How many words are there: table stone rain?", "3"),
    ("Write a short story about Ella the mouse.", None),
    ("Tell me a story about Sam the frog.", None),
]
PRESETS = [p for p, _ in PRESET_PAIRS]
PRESET_ANSWERS = {p: a for p, a in PRESET_PAIRS if a is not None}


class UserError(ValueError):
    """A problem with what the visitor asked for; its message is shown on the page."""


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def as_number(value, name: str, kind=int):
    """`value` as an int or float inside LIMITS[name], or a UserError naming the field and range.
    Refuses NaN, infinities, text, None and booleans (JSON clients send all of them)."""
    lo, hi = LIMITS[name]
    what = "a whole number" if kind is int else "a number"
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise UserError(f"{label(name)} must be {what} between {lo} and {hi}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{label(name)} must be {what} between {lo} and {hi}, got {value!r}") from None
    if not math.isfinite(number):
        raise UserError(f"{label(name)} must be a finite number between {lo} and {hi}, got {value!r}")
    if kind is int and number != int(number):
        raise UserError(f"{label(name)} must be a whole number, got {value!r}")
    if not lo <= number <= hi:
        raise UserError(f"{label(name)} must be between {lo} and {hi}, got {value!r}")
    return int(number) if kind is int else number


def as_int(value, name: str) -> int:
    return as_number(value, name if name in LIMITS else "position", int)


def as_choice(value, name: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise UserError(f"{label(name)} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


@dataclass(frozen=True)
class DecodeSettings:
    gen_length: int
    steps: int
    block_length: int
    remasking: str
    temperature: float
    cfg_scale: float
    seed: int
    slack_bias: float = 0.0  # CTC checkpoints only: lowers <slack>'s logit (0 = the paper's decoding)

    def sampler_kwargs(self, lm) -> dict:
        """The sampler's keywords for one loaded model: these settings, the checkpoint's EOS
        handling and ids, and the slack bias only where the model has a <slack>."""
        kw = dict(steps=self.steps, gen_length=self.gen_length, block_length=self.block_length,
                  remasking=self.remasking, temperature=self.temperature, cfg_scale=self.cfg_scale)
        kw.update({k: lm.facts.defaults[k] for k in ("logits_eos_inf", "confidence_eos_eot_inf")
                   if k in lm.facts.defaults})
        kw.update(lm.facts.sampler_kwargs())
        if lm.facts.slack_id is not None:
            kw["slack_bias"] = self.slack_bias
        return kw


def parse_settings(gen_length, steps, block_length, remasking, temperature, cfg_scale, seed,
                   slack_bias=0.0) -> DecodeSettings:
    """Visitor settings -> DecodeSettings, or a UserError saying what to change."""
    s = DecodeSettings(as_number(gen_length, "gen_length"), as_number(steps, "steps"),
                       as_number(block_length, "block_length"), as_choice(remasking, "remasking", REMASKING),
                       as_number(temperature, "temperature", float), as_number(cfg_scale, "cfg_scale", float),
                       as_number(seed, "seed"), as_number(slack_bias, "slack_bias", float))
    try:
        check_schedule(s.gen_length, s.block_length, s.steps, s.remasking)
    except ValueError as err:
        raise UserError(str(err)) from None
    return s


def check_prompt(prompt, max_chars: int = MAX_PROMPT_CHARS) -> str:
    if prompt is not None and not isinstance(prompt, str):
        raise UserError(f"the prompt must be text, got {type(prompt).__name__}")
    prompt = (prompt or "").strip()
    if not prompt:
        raise UserError("the prompt is empty: type a question or pick a preset")
    if len(prompt) > max_chars:
        raise UserError(f"the prompt has {len(prompt)} characters; the limit is {max_chars}")
    return prompt


def check_prompt_tokens(n_tokens: int, model_name: str, max_tokens: int = MAX_PROMPT_TOKENS) -> None:
    if n_tokens > max_tokens:
        raise UserError(f"the prompt is {n_tokens} tokens long for {model_name} (with the chat template); the "
                        f"limit is {max_tokens} tokens: shorten it")
