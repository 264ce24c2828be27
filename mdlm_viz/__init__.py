"""mdlm-viz: watch, teach and study how masked diffusion language models (LLaDA) decode.

The library is the single source of truth that the app, the training module and the evaluation
call: a native LLaDA model, a sampler that records every step, positional-shift interventions,
and the CTC/<slack> mathematics.

The names below are imported on first use: the model and checkpoint code pull in transformers'
modelling stack (seconds), which the app's page, the trace replay and the CTC maths do not need.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Checkpoint": "checkpoint", "DecodingFacts": "checkpoint", "load_checkpoint": "checkpoint",
    "LLaDAConfig": "configuration_llada", "LLaDAModelLM": "modeling_llada",
    "RandomShifts": "interventions", "Shift": "interventions", "ShiftAtCommit": "interventions",
    "shiftable_positions": "interventions",
    "Generation": "sampling", "generate": "sampling", "stream": "sampling",
    "Displacement": "trace", "Step": "trace", "TopK": "trace", "Trace": "trace",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'mdlm_viz' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
