"""The record of one decode: what the canvas held after every step, and why.

A `Trace` is plain data (ints, floats, strings): it serialises to JSON, and everything the app
draws (animation, commit-step heatmap, confidences, top-k hovers, shifts) is computed from it
with no model. Positions are relative to the start of the response (0 .. gen_length-1).
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

TRACE_FORMAT = "mdlm-viz.trace/1"


def clean_response(tokens, eos_id: int | None, slack_id: int | None, *, strip_slack: bool = True,
                   stop_at_eos: bool = True) -> list[int]:
    """Response ids as text: cut at the first EOS, `<slack>` removed (the raw canvas keeps both)."""
    out = []
    for t in tokens:
        if stop_at_eos and eos_id is not None and t == eos_id:
            break
        if not (strip_slack and slack_id is not None and t == slack_id):
            out.append(t)
    return out


@dataclass
class Displacement:
    """One positional shift: the token at `source` moved to `target`, `source` masked again."""

    step: int
    source: int
    target: int
    token: int


class TopK(Sequence):
    """One step's top-k candidates: a sequence of (position, k token ids, k probabilities).

    Packed in flat arrays rather than lists of Python numbers: they are most of a trace (about 80% of
    its memory as lists), and a classroom server keeps every visitor's traces."""

    __slots__ = ("k", "_positions", "_ids", "_probs")

    def __init__(self, rows=()):
        rows = list(rows)
        self.k = len(rows[0][1]) if rows else 0
        if any(len(ids) != self.k or len(probs) != self.k for _, ids, probs in rows):
            raise ValueError("every candidate row needs the same number of token ids and probabilities")
        self._positions = array("i", (int(p) for p, _, _ in rows))
        self._ids = array("i", (int(t) for _, ids, _ in rows for t in ids))
        self._probs = array("d", (float(x) for _, _, probs in rows for x in probs))

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError("candidate row out of range")
        i %= len(self)
        a, b = i * self.k, (i + 1) * self.k
        return self._positions[i], self._ids[a:b].tolist(), self._probs[a:b].tolist()

    def token_ids(self) -> set[int]:
        """Every candidate token id of the step."""
        return set(self._ids)

    def __eq__(self, other) -> bool:
        if isinstance(other, TopK):
            return (self.k, self._positions, self._ids, self._probs) == (other.k, other._positions, other._ids,
                                                                       other._probs)
        return isinstance(other, Sequence) and [tuple(r) for r in self] == [tuple(r) for r in other]

    def __repr__(self) -> str:
        return f"TopK({len(self)} positions, k={self.k})"


@dataclass
class Step:
    """What one denoising step did to one sequence."""

    index: int  # global step number, 0-based
    block: int
    canvas: list[int]  # response tokens after the step (mask id where still masked)
    positions: list[int]  # positions committed this step
    tokens: list[int]  # tokens committed there
    confidences: list[float]  # the remasking score of each commit
    candidates: TopK = field(default_factory=TopK)
    # (position, top-k token ids, their probabilities) where a commit was possible this step
    merged: list[int] = field(default_factory=list)  # turned into <slack> by the standard collapse
    displacements: list[Displacement] = field(default_factory=list)

    def __post_init__(self):
        if not isinstance(self.candidates, TopK):  # rows as lists (the sampler, a JSON file)
            self.candidates = TopK(self.candidates)


@dataclass
class Trace:
    prompt: list[int]  # prompt ids, left padding removed
    gen_length: int
    steps_total: int
    block_length: int
    mask_id: int
    settings: dict  # remasking, temperature, cfg_scale, ... as passed to the sampler
    eos_id: int | None = None
    slack_id: int | None = None
    collapse: str | None = None
    steps: list[Step] = field(default_factory=list)
    format: str = TRACE_FORMAT
    # Optional, so a trace replays without its tokenizer (an imported LLaDA-8B run, a lesson):
    model: str | None = None  # which checkpoint decoded it, as the app names it
    token_texts: dict[int, str] = field(default_factory=dict)  # id -> text of every id the trace holds

    def token_text(self, token_id: int) -> str:
        """The token's text as recorded, else `#id` (a trace saved without its vocabulary)."""
        return self.token_texts.get(int(token_id), f"#{int(token_id)}")

    def token_ids(self) -> set[int]:
        """Every id that appears in the trace: prompt, canvases and the recorded candidates."""
        ids = set(self.prompt)
        for st in self.steps:
            ids.update(st.canvas)
            ids.update(st.candidates.token_ids())
        return ids

    def with_token_texts(self, token_text) -> "Trace":
        """Records `token_text(id)` for every id in the trace (in place; returns the trace)."""
        self.token_texts = {i: token_text(i) for i in sorted(self.token_ids())}
        return self

    # ---- replay: everything below needs no model ----
    @property
    def final(self) -> list[int]:
        return list(self.steps[-1].canvas) if self.steps else [self.mask_id] * self.gen_length

    def canvas_at(self, step: int) -> list[int]:
        """Canvas after `step` (-1 = before the first step: all masked)."""
        if step < 0:
            return [self.mask_id] * self.gen_length
        return list(self.steps[step].canvas)

    def replay(self, step: int | None = None) -> "Replay":
        """The history folded up to `step` (default: the last step)."""
        return Replay(self).advance_to(len(self.steps) - 1 if step is None else step)

    def commit_steps(self) -> list[int | None]:
        """For each position, the step at which its final token was committed (None: never).

        A displaced token counts as committed at the step that moved it to its final place.
        """
        commits = self.replay().commits
        return [commits[p][0] if p in commits else None for p in range(self.gen_length)]

    def commit_confidences(self) -> list[float | None]:
        commits = self.replay().commits
        return [commits[p][1] if p in commits else None for p in range(self.gen_length)]

    @property
    def displacements(self) -> list[Displacement]:
        return [d for st in self.steps for d in st.displacements]

    def response(self, *, strip_slack: bool = True, stop_at_eos: bool = True) -> list[int]:
        """Final response ids: cut at the first EOS, `<slack>` removed (the raw canvas keeps both)."""
        return clean_response(self.final, self.eos_id, self.slack_id, strip_slack=strip_slack, stop_at_eos=stop_at_eos)

    # ---- serialisation ----
    def to_dict(self) -> dict:
        data = asdict(self)
        for step, st in zip(data["steps"], self.steps):
            step["candidates"] = [tuple(row) for row in st.candidates]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Trace":
        """A trace from its dict; anything malformed raises ValueError saying what is wrong."""
        if not isinstance(data, dict) or data.get("format") != TRACE_FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"Not a trace of format {TRACE_FORMAT!r}: format={got!r}")
        data = dict(data)
        try:
            steps = []
            for s in data.pop("steps"):
                s = dict(s)
                s["displacements"] = [Displacement(**d) for d in s.get("displacements", [])]
                s["candidates"] = TopK((c[0], list(c[1]), list(c[2])) for c in s.get("candidates", []))
                steps.append(Step(**s))
            data["token_texts"] = {int(k): str(v) for k, v in (data.get("token_texts") or {}).items()}  # JSON keys
            trace = cls(steps=steps, **data)
        except (TypeError, KeyError, IndexError, AttributeError) as err:  # a field missing, extra or mistyped
            raise ValueError(f"the trace's fields do not match format {TRACE_FORMAT!r}: {err}") from None
        trace.check()
        return trace

    def check(self) -> None:
        """Raises ValueError unless the trace is consistent enough to replay and draw."""
        def whole(x, what, lo=0):
            if not isinstance(x, int) or isinstance(x, bool) or x < lo:
                raise ValueError(f"{what} must be a whole number >= {lo}, got {x!r}")
        whole(self.gen_length, "gen_length", 1)
        whole(self.steps_total, "steps_total", 1)
        whole(self.block_length, "block_length", 1)
        whole(self.mask_id, "mask_id")
        if not isinstance(self.prompt, list) or not all(isinstance(t, int) for t in self.prompt):
            raise ValueError("prompt must be a list of token ids")
        if len(self.steps) > self.steps_total:
            raise ValueError(f"{len(self.steps)} steps recorded but steps_total is {self.steps_total}")
        for i, st in enumerate(self.steps):
            if len(st.canvas) != self.gen_length or not all(isinstance(t, int) for t in st.canvas):
                raise ValueError(f"step {i}: the canvas must hold {self.gen_length} token ids")
            if len(st.positions) != len(st.tokens) or len(st.positions) != len(st.confidences):
                raise ValueError(f"step {i}: positions, tokens and confidences differ in length")
            moved = [p for d in st.displacements for p in (d.source, d.target)]
            if not all(isinstance(p, int) and 0 <= p < self.gen_length for p in [*st.positions, *moved]):
                raise ValueError(f"step {i}: a position lies outside 0..{self.gen_length - 1}")

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), separators=(",", ":"))
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> "Trace":
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls.from_dict(json.loads(text))


class Replay:
    """A trace's history folded up to one step: the one replay of commits and moves.

    `commits` maps each position holding a committed token to (the step it was committed or moved
    there, its confidence); `moves` maps each position a shift put a token at to the direction.
    Going forward applies only the new steps (a streamed or played decode costs O(changes) per
    frame); going back starts again from the beginning."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self.step = -1  # the last step applied (-1: none, all masked)
        self.commits: dict[int, tuple[int, float]] = {}
        self.moves: dict[int, int] = {}

    def advance_to(self, step: int) -> "Replay":
        step = min(step, len(self.trace.steps) - 1)
        if step < self.step:
            self.step, self.commits, self.moves = -1, {}, {}
        for st in self.trace.steps[self.step + 1: step + 1]:
            for p, c in zip(st.positions, st.confidences):
                self.commits[p] = (st.index, c)
            for d in st.displacements:  # a moved token keeps its confidence, committed when it moved
                if d.source in self.commits:
                    self.commits[d.target] = (st.index, self.commits.pop(d.source)[1])
                self.moves.pop(d.source, None)
                self.moves[d.target] = 1 if d.target > d.source else -1
        self.step = max(step, -1)
        return self
