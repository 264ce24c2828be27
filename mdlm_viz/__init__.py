"""mdlm-viz: watch, teach and study how masked diffusion language models (LLaDA) decode.

The library is the single source of truth that the app, the training module and the evaluation
call: a native LLaDA model, a sampler that records every step, positional-shift interventions,
and the CTC/<slack> mathematics.
"""

from .checkpoint import Checkpoint, DecodingFacts, load_checkpoint
from .configuration_llada import LLaDAConfig
from .interventions import RandomShifts, Shift, ShiftAtCommit, shiftable_positions
from .modeling_llada import LLaDAModelLM
from .sampling import Generation, generate, stream
from .trace import Displacement, Step, Trace

__all__ = [
    "Checkpoint", "DecodingFacts", "Displacement", "Generation", "LLaDAConfig", "LLaDAModelLM",
    "RandomShifts", "Shift", "ShiftAtCommit", "Step", "Trace", "generate", "load_checkpoint", "shiftable_positions", "stream",
]
__version__ = "0.1.0"
