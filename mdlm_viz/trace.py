"""The record of one decode: what the canvas held after every step, and why.

A `Trace` is plain data (ints, floats, strings): it serialises to JSON, and everything the app
draws (animation, commit-step heatmap, confidences, top-k hovers, shifts) is computed from it
with no model. Positions are relative to the start of the response (0 .. gen_length-1).
"""

from __future__ import annotations

import json
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


@dataclass
class Step:
    """What one denoising step did to one sequence."""

    index: int  # global step number, 0-based
    block: int
    canvas: list[int]  # response tokens after the step (mask id where still masked)
    positions: list[int]  # positions committed this step
    tokens: list[int]  # tokens committed there
    confidences: list[float]  # the remasking score of each commit
    candidates: list[tuple[int, list[int], list[float]]] = field(default_factory=list)
    # (position, top-k token ids, their probabilities) where a commit was possible this step
    merged: list[int] = field(default_factory=list)  # turned into <slack> by the standard collapse
    displacements: list[Displacement] = field(default_factory=list)


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

    # ---- replay: everything below needs no model ----
    @property
    def final(self) -> list[int]:
        return list(self.steps[-1].canvas) if self.steps else [self.mask_id] * self.gen_length

    def canvas_at(self, step: int) -> list[int]:
        """Canvas after `step` (-1 = before the first step: all masked)."""
        if step < 0:
            return [self.mask_id] * self.gen_length
        return list(self.steps[step].canvas)

    def commit_steps(self) -> list[int | None]:
        """For each position, the step at which its final token was committed (None: never).

        A displaced token counts as committed at the step that moved it to its final place.
        """
        when: list[int | None] = [None] * self.gen_length
        for st in self.steps:
            for p in st.positions:
                when[p] = st.index
            for d in st.displacements:
                when[d.source] = None
                when[d.target] = st.index
        return when

    def commit_confidences(self) -> list[float | None]:
        conf: list[float | None] = [None] * self.gen_length
        for st in self.steps:
            for p, c in zip(st.positions, st.confidences):
                conf[p] = c
            for d in st.displacements:
                conf[d.target], conf[d.source] = conf[d.source], None
        return conf

    @property
    def displacements(self) -> list[Displacement]:
        return [d for st in self.steps for d in st.displacements]

    def response(self, *, strip_slack: bool = True, stop_at_eos: bool = True) -> list[int]:
        """Final response ids: cut at the first EOS, `<slack>` removed (the raw canvas keeps both)."""
        return clean_response(self.final, self.eos_id, self.slack_id, strip_slack=strip_slack, stop_at_eos=stop_at_eos)

    # ---- serialisation ----
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Trace":
        if data.get("format") != TRACE_FORMAT:
            raise ValueError(f"Not a trace of format {TRACE_FORMAT!r}: format={data.get('format')!r}")
        data = dict(data)
        steps = []
        for s in data.pop("steps"):
            s = dict(s)
            s["displacements"] = [Displacement(**d) for d in s.get("displacements", [])]
            s["candidates"] = [(c[0], list(c[1]), list(c[2])) for c in s.get("candidates", [])]
            steps.append(Step(**s))
        return cls(steps=steps, **data)

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
