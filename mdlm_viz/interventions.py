"""Positional-shift interventions: make a committed token land one position off.

The paper's controlled experiment: during decoding, a committed response token at position i moves
to i+1 (or i-1) when that position is still masked, and i is masked again, so the sampler must fill
it later. Either name each shift (`Shift`, for the app) or ask for a strength (`RandomShifts`: a
fraction r of the generated tokens displaced over the decode, for the evaluation). Random shifts
draw from their own seeded generator, never from torch's global one, so a run with and without
them consumes the same sampling noise and the two outputs pair up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shift:
    """Move the token at response position `position` by `direction` (+1 or -1) right after
    global step `step` has committed. `batch` selects the sequence in a batched decode."""

    step: int
    position: int
    direction: int = 1
    batch: int = 0

    def __post_init__(self):
        if self.direction not in (1, -1):
            raise ValueError(f"Shift.direction must be +1 or -1, got {self.direction}")


@dataclass(frozen=True)
class ShiftAtCommit:
    """Move the token committed at response position `position` by `direction` in the very step
    it is committed. Unlike `Shift` (a step and a position, valid only in a decode that has
    committed that position by then and left its neighbour masked), this names the same
    intervention for any model: "the token that lands at position p arrives one place off". It
    applies when that token is content (not EOS, EoT or `<slack>`) and its neighbour is still
    masked in the block; otherwise it is counted in `Generation.unapplied_shifts`."""

    position: int
    direction: int = 1
    batch: int = 0

    def __post_init__(self):
        if self.direction not in (1, -1):
            raise ValueError(f"ShiftAtCommit.direction must be +1 or -1, got {self.direction}")


@dataclass(frozen=True)
class RandomShifts:
    """Displace round(strength * gen_length) tokens per sequence (stochastic rounding), at random
    steps, deterministic under `seed`. Freshly committed tokens are preferred: they model a token
    that was predicted one position off. A shift due at a step with no movable token waits for the
    next step; those never applied are reported (`Generation.unapplied_shifts`)."""

    strength: float
    seed: int = 0
    directions: tuple[int, ...] = (1,)

    def __post_init__(self):
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"RandomShifts.strength is a fraction in [0, 1], got {self.strength}")
        if not self.directions or any(d not in (1, -1) for d in self.directions):
            raise ValueError(f"RandomShifts.directions must be a non-empty tuple of +1/-1, got {self.directions}")


def can_shift(row: torch.Tensor, source: int, direction: int, lo: int, hi: int, mask_id: int) -> bool:
    """True if canvas position `source` holds a committed token and its neighbour in `direction`
    is still masked, both within [lo, hi) (the response up to the end of the current block)."""
    target = source + direction
    return lo <= source < hi and lo <= target < hi and row[source] != mask_id and row[target] == mask_id


def shiftable_positions(canvas: list[int], mask_id: int, hi: int | None = None, direction: int = 1,
                        skip_ids=()) -> list[int]:
    """Response positions of `canvas` (a Step's canvas) whose token a shift in `direction` can move
    now: committed content (not in `skip_ids`) with a masked neighbour, both before `hi` (the end
    of the current block). The rule `Shift` enforces, for marking tokens a visitor may pick."""
    hi = len(canvas) if hi is None else hi
    skip = {int(t) for t in skip_ids if t is not None}
    return [p for p in range(hi) if canvas[p] != mask_id and canvas[p] not in skip
            and 0 <= p + direction < hi and canvas[p + direction] == mask_id]


def shift_token(row: torch.Tensor, source: int, direction: int, mask_id: int) -> int:
    """Move row[source] to row[source + direction] in place and mask `source`; returns the token."""
    token = int(row[source])
    row[source + direction] = token
    row[source] = mask_id
    return token


class ShiftPlanner:
    """Decides, step by step, which shifts to apply to each sequence of a decode."""

    def __init__(self, interventions, batch_size: int, prompt_length: int, gen_length: int, total_steps: int,
                 steps_per_block: int | None = None, skip_ids=()):
        self.response_start = prompt_length  # canvas index of response position 0
        # Random shifts move content only: displacing EOS padding or a <slack> changes no text,
        # and a model that emits more of them would look robust for free.
        self.skip_ids = {int(t) for t in skip_ids if t is not None}
        self.explicit: dict[int, list[Shift]] = {}
        self.on_commit: list[ShiftAtCommit] = []  # pending until their position is committed
        self.random: RandomShifts | None = None
        for iv in interventions or ():
            if isinstance(iv, Shift):
                if not 0 <= iv.batch < batch_size:
                    raise ValueError(f"Shift.batch={iv.batch} is outside the batch of {batch_size}")
                if not 0 <= iv.position < gen_length:
                    raise ValueError(f"Shift.position={iv.position} is outside the response (0..{gen_length - 1})")
                if not 0 <= iv.step < total_steps - 1:
                    raise ValueError(
                        f"Shift.step={iv.step} must be in 0..{total_steps - 2}: a position vacated after the "
                        "last step could never be filled again"
                    )
                self.explicit.setdefault(iv.step, []).append(iv)
            elif isinstance(iv, ShiftAtCommit):
                if not 0 <= iv.batch < batch_size:
                    raise ValueError(f"ShiftAtCommit.batch={iv.batch} is outside the batch of {batch_size}")
                if not 0 <= iv.position < gen_length:
                    raise ValueError(f"ShiftAtCommit.position={iv.position} is outside the response "
                                     f"(0..{gen_length - 1})")
                self.on_commit.append(iv)
            elif isinstance(iv, RandomShifts):
                if self.random is not None:
                    raise ValueError("Give at most one RandomShifts")
                self.random = iv
            else:
                raise ValueError(f"Unknown intervention {iv!r}: use Shift, ShiftAtCommit or RandomShifts")
        # Per sequence: how many random shifts are due at each step.
        self.due: list[dict[int, int]] = [{} for _ in range(batch_size)]
        self.gen = None
        self.unapplied = [0] * batch_size  # random shifts due but not applied (yet): no eligible token
        self.refused = [0] * batch_size  # ShiftAtCommit whose token was not content or had no masked neighbour
        per_block = steps_per_block or total_steps
        # After the last step of a block the block is full: no masked neighbour is left to move into.
        eligible = [s for s in range(total_steps) if s % per_block != per_block - 1]
        if self.random is not None and self.random.strength > 0 and eligible:
            self.gen = torch.Generator().manual_seed(self.random.seed)
            for b in range(batch_size):
                expected = self.random.strength * gen_length
                n = math.floor(expected) + int(torch.rand((), generator=self.gen) < expected - math.floor(expected))
                for i in torch.randint(0, len(eligible), (n,), generator=self.gen).tolist():
                    self.due[b][eligible[i]] = self.due[b].get(eligible[i], 0) + 1
        elif self.random is not None and self.random.strength > 0:  # one step per block: no room to shift
            self.unapplied = [round(self.random.strength * gen_length)] * batch_size

    def apply(self, x: torch.Tensor, step: int, hi: int, mask_id: int,
              fresh: list[list[int]]) -> list[list[tuple[int, int, int]]]:
        """Apply the shifts due after `step` to canvas `x` [B, L] in place.

        `fresh[b]` lists the canvas positions sequence b committed this step. Returns, per
        sequence, (source, target, token) canvas positions of each applied shift."""
        done: list[list[tuple[int, int, int]]] = [[] for _ in range(x.shape[0])]
        for sh in self.explicit.get(step, []):
            src = self.response_start + sh.position
            row = x[sh.batch]
            if not can_shift(row, src, sh.direction, self.response_start, hi, mask_id):
                raise ValueError(
                    f"Cannot shift position {sh.position} by {sh.direction:+d} after step {step}: the token "
                    "there must be committed and its neighbour still masked within the current block. "
                    "Pick a committed token next to a masked one in the trace of that step."
                )
            done[sh.batch].append((src, src + sh.direction, shift_token(row, src, sh.direction, mask_id)))
        for sh in [sh for sh in self.on_commit if self.response_start + sh.position in fresh[sh.batch]]:
            self.on_commit.remove(sh)  # decided now, applied or not: a re-commit there never shifts again
            src, row = self.response_start + sh.position, x[sh.batch]
            if int(row[src]) in self.skip_ids or not can_shift(row, src, sh.direction, self.response_start, hi,
                                                                mask_id):
                self.refused[sh.batch] += 1
                continue
            done[sh.batch].append((src, src + sh.direction, shift_token(row, src, sh.direction, mask_id)))
        if self.gen is not None:
            for b in range(x.shape[0]):
                # A shift that finds no eligible token (early steps often commit only EOS padding)
                # waits for the next step, so the applied strength is the nominal one wherever the
                # decode allows it; `unapplied` counts those still waiting.
                applied = 0
                for _ in range(self.due[b].get(step, 0) + self.unapplied[b]):
                    pick = self._pick(x[b], fresh[b], hi, mask_id)
                    if pick is None:
                        break
                    src, d = pick
                    done[b].append((src, src + d, shift_token(x[b], src, d, mask_id)))
                    applied += 1
                self.unapplied[b] += self.due[b].get(step, 0) - applied
        return done

    def _pick(self, row, fresh, hi, mask_id):
        lo = self.response_start
        for pool in (fresh, range(lo, hi)):
            options = [(p, d) for p in pool for d in self.random.directions
                       if int(row[p]) not in self.skip_ids and can_shift(row, p, d, lo, hi, mask_id)]
            if options:
                return options[int(torch.randint(len(options), (), generator=self.gen))]
        return None
