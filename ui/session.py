"""A visitor's session (what gr.State holds) and what every handler shares (the app context)."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from mdlm_viz.trace import Replay, Trace

from .decoding import FramePacer, SeededDecode
from .models import ConfigError, LoadedModel, ModelInfo, load_located
from .scheduler import BatchedDecode, BatchScheduler, batchable
from .settings import MAX_PROMPT_CHARS, PRESET_ANSWERS, STREAM_AFTER_S, STREAM_EVERY_S, DecodeSettings, UserError

SESSION_FORMAT = "mdlm-viz.session/1"


@dataclass
class AppContext:
    """Fixed for the life of the server: the models (loaded, or loading while the page is already
    served), what the page shows of them, and the page's limits."""

    models: dict[str, LoadedModel] = field(default_factory=dict)  # filled once loaded
    max_prompt_chars: int = MAX_PROMPT_CHARS
    answers: dict[str, str] = field(default_factory=lambda: dict(PRESET_ANSWERS))  # prompt -> exact answer
    scheduler: BatchScheduler = field(default_factory=BatchScheduler)  # shares forward passes across visitors
    # when each streaming visitor gets a frame
    pacer: FramePacer = field(default_factory=lambda: FramePacer(STREAM_EVERY_S, after_s=STREAM_AFTER_S))
    infos: dict[str, ModelInfo] = field(default_factory=dict)  # name -> what the page shows before loading
    load_error: str | None = None
    _ready: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self):
        if self.models:
            self.infos = self.infos or {n: ModelInfo.of(lm) for n, lm in self.models.items()}
            self._ready.set()

    @property
    def names(self) -> list[str]:
        return list(self.infos)

    @property
    def settled(self) -> bool:
        """Loading is over: the models are in, or `load_error` says why not."""
        return self._ready.is_set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.load_error is None

    def load_in_background(self, locations: dict[str, str], load_in_4bit: bool = False,
                           then: Callable[[], None] | None = None) -> threading.Thread:
        """Load the checkpoints while the page is served (then call `then`); `wait_models` blocks
        until they are in."""
        def load():
            try:
                self.models.update(load_located(locations, load_in_4bit))
                for n, lm in self.models.items():  # a hub checkpoint's defaults are known now
                    self.infos[n] = ModelInfo.of(lm)
            except (ConfigError, OSError, ValueError) as err:
                self.load_error = str(err)
            finally:
                self._ready.set()
                if then is not None:
                    then()
        thread = threading.Thread(target=load, name="mdlm-viz-load", daemon=True)
        thread.start()
        return thread

    def wait_models(self, timeout: float = 600) -> dict[str, LoadedModel]:
        if not self._ready.wait(timeout):
            raise UserError("the models are still loading: try again in a minute")
        if self.load_error:
            raise UserError(f"the models could not be loaded: {self.load_error}")
        return self.models

    def readiness(self) -> str:
        if self.load_error:
            return f"⚠ the models could not be loaded: {self.load_error}"
        if not self._ready.is_set():
            return f"⏳ loading the models ({len(self.models)} of {len(self.infos)})… you can open the **Lesson** meanwhile"
        return "Pick a prompt and press **Decode**."

    def decode(self, name: str, prompt_ids: list[int], settings: DecodeSettings, interventions=()):
        """A step-by-step decode of one model: in a shared batch when that gives the same tokens
        (greedy, at most ShiftAtCommit), else alone with its own seed."""
        lm = self.models[name]
        if batchable(settings, interventions):
            return BatchedDecode(self.scheduler, lm, prompt_ids, settings, interventions)
        return SeededDecode(lm, prompt_ids, settings, interventions)


@dataclass
class Session:
    """The last decode of one visitor: the clean runs, the shifted re-runs, and how they were made.
    Traces carry their token texts, so a session replays (scrubbing, the lesson, an import)
    without any model."""

    prompt: str
    settings: DecodeSettings
    clean: dict[str, Trace]
    prompt_ids: dict[str, list[int]] = field(default_factory=dict)
    shifted: dict[str, Trace] = field(default_factory=dict)
    shift: str | None = None  # the intervention of the shifted runs, in words
    replays: dict[tuple[str, str], Replay] = field(default_factory=dict, repr=False, compare=False)

    @property
    def last_step(self) -> int:
        return self.settings.steps - 1

    def clamp(self, step) -> int:
        return int(min(max(0, step or 0), self.last_step))

    def replay(self, kind: str, name: str) -> Replay:
        """A replay kept per run, so playing forward costs only the new steps."""
        trace = (self.clean if kind == "clean" else self.shifted)[name]
        key = (kind, name)
        if key not in self.replays or self.replays[key].trace is not trace:
            self.replays[key] = Replay(trace)
        return self.replays[key]

    # ---- a recorded session (the lesson's examples) ----
    def to_dict(self) -> dict:
        return {"format": SESSION_FORMAT, "prompt": self.prompt, "settings": asdict(self.settings),
                "shift": self.shift, "prompt_ids": self.prompt_ids,
                "clean": {n: t.to_dict() for n, t in self.clean.items()},
                "shifted": {n: t.to_dict() for n, t in self.shifted.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "Session":
        if not isinstance(data, dict) or data.get("format") != SESSION_FORMAT:
            raise ValueError(f"not a recorded session of format {SESSION_FORMAT!r}")
        return cls(prompt=str(data["prompt"]), settings=DecodeSettings(**data["settings"]),
                   clean={n: Trace.from_dict(t) for n, t in data["clean"].items()},
                   prompt_ids={n: list(v) for n, v in data.get("prompt_ids", {}).items()},
                   shifted={n: Trace.from_dict(t) for n, t in data.get("shifted", {}).items()},
                   shift=data.get("shift"))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")))

    @classmethod
    def load(cls, path: str | Path) -> "Session":
        return cls.from_dict(json.loads(Path(path).read_text()))
