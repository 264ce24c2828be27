"""The checkpoints the app serves: chosen on the server only (flags or MDLM_VIZ_MODELS), loaded once.

The page lists their names and nothing a visitor types becomes a path. Remote code is never loaded
(see mdlm_viz/checkpoint.py). References use the loader's one syntax: a local directory (as given,
or relative to the repository) or a hub id `owner/name` (`hub:owner/name` to force the hub).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

import mdlm_viz as mv
from mdlm_viz import chat
from mdlm_viz.references import locate_checkpoint, parse_named_refs

from .settings import MAX_MODELS

ROOT = Path(__file__).resolve().parents[1]
REQUIRED_MODELS = {"base": "assets/base", "ce": "assets/ce", "ctc": "assets/ctc"}
OPTIONAL_MODELS = {"ctc-standard": "assets/ctc-standard"}


class ConfigError(ValueError):
    """A problem with how the server was started (flags, environment, checkpoint folders)."""


@dataclass
class LoadedModel:
    name: str
    model: object
    tokenizer: object
    facts: mv.DecodingFacts

    @functools.cached_property
    def token_text(self):
        return functools.lru_cache(maxsize=None)(lambda i: self.tokenizer.decode([int(i)], skip_special_tokens=False))

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def prompt_ids(self, text: str) -> list[int]:
        return chat.prompt_ids(self.tokenizer, text)

    def slack_id(self) -> int | None:
        """The checkpoint's <slack> id, or the tokenizer's when the checkpoint never trained with it."""
        if self.facts.slack_id is not None:
            return self.facts.slack_id
        tid = self.tokenizer.convert_tokens_to_ids("<slack>")
        vocab = self.model.get_input_embeddings().weight.shape[0]
        return tid if isinstance(tid, int) and tid != self.tokenizer.unk_token_id and 0 <= tid < vocab else None



@dataclass
class ModelInfo:
    """What the page shows of a checkpoint before its weights are loaded (read from its JSON)."""

    name: str
    location: str
    defaults: dict  # the sampler defaults of generation_config.json (gen_length, steps, block_length...)
    objective: str | None = None
    collapse: str | None = None  # set for checkpoints with a <slack> token

    @classmethod
    def read(cls, name: str, location: str) -> "ModelInfo":
        """From a local checkpoint's config.json and generation_config.json; a hub id's are
        known only once it is fetched (the page then shows the first model's defaults)."""
        import json

        def read_json(file: str) -> dict:
            try:
                return json.loads((Path(location) / file).read_text())
            except (OSError, ValueError):
                return {}
        config = read_json("config.json")
        slack = config.get("slack_token_id") is not None
        return cls(name, location, read_json("generation_config.json"), config.get("training_objective"),
                   (config.get("ctc_collapse") or "slack") if slack else None)

    @classmethod
    def of(cls, lm: "LoadedModel") -> "ModelInfo":
        return cls(lm.name, "", dict(lm.facts.defaults), lm.facts.objective,
                   lm.facts.collapse if lm.facts.slack_id is not None else None)

    def describe(self) -> str:
        kind = self.objective or "objective not recorded"
        slack = f", &lt;slack&gt; with the {self.collapse} collapse" if self.collapse else ""
        return f"{kind}{slack}"


def parse_model_specs(specs) -> dict[str, str]:
    """["name=path", ...] or "name=path,name=path" -> {name: path}."""
    try:
        out = parse_named_refs(specs)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if len(out) > MAX_MODELS:
        raise ConfigError(f"at most {MAX_MODELS} models side by side, got {len(out)}")
    return out


def model_specs(cli_models) -> dict[str, str]:
    """Which checkpoints to serve: --models, else $MDLM_VIZ_MODELS, else the embedded assets."""
    if cli_models:
        return parse_model_specs(cli_models)
    if os.environ.get("MDLM_VIZ_MODELS"):
        return parse_model_specs(os.environ["MDLM_VIZ_MODELS"])
    specs = dict(REQUIRED_MODELS)
    specs.update({k: v for k, v in OPTIONAL_MODELS.items() if (ROOT / v).is_dir()})
    return specs


def checkpoint_location(ref: str) -> str:
    """Where a reference points (a local directory or a hub id), checked before anything loads."""
    try:
        return str(locate_checkpoint(ref, base_dir=ROOT))
    except FileNotFoundError as err:
        raise ConfigError(f"{err}. Train the embedded models (python -m train recipe embedded), or point the app "
                          "at other checkpoints: python app.py --models NAME=PATH ... (or "
                          "MDLM_VIZ_MODELS=NAME=PATH,...).") from None


def load_models(specs: dict[str, str], load_in_4bit: bool = False) -> dict[str, LoadedModel]:
    return load_located({name: checkpoint_location(path) for name, path in specs.items()}, load_in_4bit)


def load_located(locations: dict[str, str], load_in_4bit: bool = False) -> dict[str, LoadedModel]:
    """Load checkpoints whose locations `checkpoint_location` has checked."""
    from mdlm_viz.inference import for_inference  # the modelling stack: imported once the page is served

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float32 if device == "cpu" else None
    models = {}
    for name, where in locations.items():
        try:
            ck = mv.load_checkpoint(where, device=device, dtype=dtype, load_in_4bit=load_in_4bit)
        except (FileNotFoundError, ValueError) as err:
            raise ConfigError(f"checkpoint {name}={where}: {err}") from None
        if ck.tokenizer is None:
            raise ConfigError(f"checkpoint {where!r} has no tokenizer files")
        # On a CPU the forward runs as a traced graph: bit-identical logits, and two models' passes
        # really run at once on two cores (mdlm_viz/inference.py).
        models[name] = LoadedModel(name, for_inference(ck.model), ck.tokenizer, ck.facts)
    return models
