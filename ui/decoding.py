"""Decoding for the page: one model's decode advanced a step at a time, several interleaved.

Each decode's RNG state travels with it, so decodes interleaved with other models (or other
visitors) draw exactly what a solo `torch.manual_seed(seed); mv.generate(...)` would. A `Replay`
follows the live trace, so a streamed frame costs O(length), not a replay of the history.
"""

from __future__ import annotations

import contextlib
import threading

import torch

import mdlm_viz as mv
from mdlm_viz.trace import Replay

from .models import LoadedModel
from .settings import DecodeSettings

DEVICE_LOCK = threading.Lock()  # one forward pass at a time: fair interleaving, deterministic RNG


class FramePacer:
    """When each streaming visitor gets a page update (`due`). A decode streams once it has run for
    `after_s`, then a frame every `every_s`; with many visitors decoding at once the server sends
    about `total_per_s` frames a second in all, spread over them, so thirty students' animations do
    not eat the cores their decodes need. A frame the final one would follow within an interval is
    not sent: it would show for less than a frame's time, and a browser spends about as long on it
    as on the final one (a decode shorter than `after_s` shows its result at once; Play replays
    every step)."""

    def __init__(self, every_s: float = 0.1, total_per_s: float = 30.0, after_s: float = 0.0):
        self.every_s, self.total_per_s, self.after_s = every_s, total_per_s, after_s
        self.active = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def streaming(self):
        with self._lock:
            self.active += 1
        try:
            yield self
        finally:
            with self._lock:
                self.active -= 1

    def interval(self) -> float:
        return max(self.every_s, self.active / self.total_per_s)

    def due(self, since_last: float | None, elapsed: float, done: float) -> bool:
        """Whether to send a frame `elapsed` seconds into a decode of which the share `done` is
        computed (its slowest model), `since_last` seconds after the last frame (None: none yet)."""
        gap = self.interval()
        if elapsed < self.after_s or (since_last is not None and since_last < gap):
            return False
        left = elapsed * (1 - done) / done if done > 0 else float("inf")  # at the pace so far
        return left >= gap


class SeededDecode:
    def __init__(self, lm: LoadedModel, prompt_ids: list[int], settings: DecodeSettings, interventions=()):
        self.lm, self.prompt_ids, self.settings = lm, prompt_ids, settings
        kw = settings.sampler_kwargs(lm)
        self.stream = mv.stream(lm.model, torch.tensor([prompt_ids]), interventions=list(interventions), **kw)
        self.steps = iter(self.stream)
        self.rng = None  # (cpu, cuda) states after the last step; None: seed on first use
        self.live = mv.Trace(prompt=prompt_ids, gen_length=settings.gen_length, steps_total=settings.steps,
                             block_length=settings.block_length, mask_id=lm.facts.mask_id, settings={},
                             eos_id=lm.facts.eos_id, slack_id=lm.facts.slack_id, collapse=kw.get("collapse"))
        self.replay = Replay(self.live)

    def advance(self) -> mv.Step | None:
        """Run one step; None when the decode is over (then `.trace` is the recorded Trace)."""
        with DEVICE_LOCK:
            if self.rng is None:
                torch.manual_seed(self.settings.seed)
            else:
                torch.set_rng_state(self.rng[0])
                if self.rng[1] is not None:
                    torch.cuda.set_rng_state(self.rng[1])
            try:
                with torch.inference_mode():
                    step = next(self.steps)
            except StopIteration:
                return None
            finally:
                self.rng = (torch.get_rng_state(), torch.cuda.get_rng_state() if torch.cuda.is_available() else None)
        self.live.steps.append(step)
        return step

    @property
    def trace(self) -> mv.Trace:
        """The recorded trace, with its model's name and token texts (it replays without the model)."""
        tr = self.stream.result.trace
        tr.model = self.lm.name
        return tr.with_token_texts(self.lm.token_text)


def interleave(decodes: dict[str, SeededDecode]):
    """Round-robin over the decodes, yielding (name, Step | None when done, error message | None)."""
    pending = dict(decodes)
    while pending:
        for name in list(pending):
            try:
                step = pending[name].advance()
            except ValueError as err:  # the sampler explains what is wrong (settings, shift, length)
                del pending[name]
                yield name, None, str(err)
                continue
            if step is None:
                del pending[name]
            yield name, step, None


def decode_all(models: dict[str, LoadedModel], prompt: str, settings: DecodeSettings,
               interventions=()) -> dict[str, mv.Trace]:
    """Every model's full decode of `prompt`, one after another (recording the lesson, the
    preset checks): name -> Trace."""
    out = {}
    for name, lm in models.items():
        d = SeededDecode(lm, lm.prompt_ids(prompt), settings, interventions)
        while d.advance() is not None:
            pass
        out[name] = d.trace
    return out
