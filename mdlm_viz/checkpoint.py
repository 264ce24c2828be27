"""Load a LLaDA checkpoint (a local directory or a hub repo id) with what it takes to decode it.

Everything else (the sampler, the app, training, evaluation) gets its model through
`load_checkpoint`, so local paths and hub ids, full models and LoRA adapters, CE and CTC
checkpoints all go through one code path. Remote code is never executed: the config's `auto_map`
is ignored, `*.py` files are never downloaded, and our native `LLaDAModelLM` does the work.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError

from .configuration_llada import LLaDAConfig
from .references import HUB_PREFIX, locate_checkpoint
from .ctc import DEFAULT_COLLAPSE
from .modeling_llada import LLaDAModelLM

# What a checkpoint directory may hold that we read; code files are deliberately absent.
_ALLOW = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.md"]
GENERATION_FILE = "generation_config.json"
# The keys of generation_config.json that are sampler defaults; HF's own keys there are ignored.
SAMPLER_KEYS = ("steps", "gen_length", "block_length", "temperature", "cfg_scale", "remasking",
                "logits_eos_inf", "confidence_eos_eot_inf", "slack_bias")
_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


@dataclass
class DecodingFacts:
    """Ids and choices a sampler must know to decode this checkpoint correctly."""

    mask_id: int
    eos_id: int | None
    eot_id: int | None = None
    pad_id: int | None = None
    slack_id: int | None = None  # set for checkpoints trained with the CTC/<slack> objective
    objective: str | None = None  # "pretrain", "pretrain-ctc", "ce", "ctc"; None if unknown (LLaDA-8B)
    collapse: str | None = None  # "slack" or "standard" for CTC checkpoints
    defaults: dict = field(default_factory=dict)  # sampler defaults: steps, gen_length, block_length...

    def sampler_kwargs(self) -> dict:
        """The ids and collapse map as keyword arguments for `generate`."""
        kw = dict(mask_id=self.mask_id, eos_id=self.eos_id, eot_id=self.eot_id, slack_id=self.slack_id)
        if self.slack_id is not None:
            kw["collapse"] = self.collapse or DEFAULT_COLLAPSE
        return kw


@dataclass
class Checkpoint:
    model: LLaDAModelLM
    tokenizer: object
    facts: DecodingFacts
    source: str

    def __iter__(self):  # model, tokenizer, facts = load_checkpoint(...)
        return iter((self.model, self.tokenizer, self.facts))


def resolve_checkpoint_dir(path_or_repo: str | os.PathLike, revision: str | None = None) -> Path:
    """A local directory as is; otherwise a hub repo id, fetched (config, weights, tokenizer only)
    or found in the local cache. Offline, an uncached repo id fails with a message saying what to do."""
    where_to = locate_checkpoint(path_or_repo)
    if isinstance(where_to, Path):
        return where_to
    name = where_to
    where = f"There is no local directory {name!r} either; " if not str(path_or_repo).startswith(HUB_PREFIX) else ""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(name, revision=revision, allow_patterns=_ALLOW))
    except LocalEntryNotFoundError as err:
        raise FileNotFoundError(
            f"{where}Checkpoint {name!r} is not in the local Hugging Face cache and the hub cannot be reached "
            f"(offline, or HF_HUB_OFFLINE=1). Download it on a connected machine with "
            f"`hf download {name}` (then copy the cache), or pass a local directory."
        ) from err
    except (HfHubHTTPError, OSError) as err:
        raise FileNotFoundError(f"Could not fetch checkpoint {name!r} from the hub: {err}") from err


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_checkpoint(
    path_or_repo: str | os.PathLike,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    load_in_4bit: bool = False,
    revision: str | None = None,
) -> Checkpoint:
    """Model (eval mode), tokenizer and `DecodingFacts` of a checkpoint.

    `dtype` defaults to bfloat16 on CUDA and float32 on CPU. `load_in_4bit` quantises the linear
    layers with bitsandbytes (CUDA only). A directory holding a PEFT adapter
    (`adapter_config.json`) loads its base model first, then the adapter.
    """
    directory = resolve_checkpoint_dir(path_or_repo, revision)
    device = torch.device(device or _default_device())
    if isinstance(dtype, str):
        name = _DTYPES.get(dtype, dtype)
        if name not in ("bfloat16", "float16", "float32", "float64"):
            raise ValueError(f"dtype {dtype!r}: use bfloat16/bf16, float16/fp16 or float32/fp32")
        dtype = getattr(torch, name)
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)

    adapter = (directory / "adapter_config.json").is_file()
    weights_dir = directory
    if adapter:
        base = json.loads((directory / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if not base:
            raise ValueError(f"{directory}/adapter_config.json names no base_model_name_or_path")
        weights_dir = resolve_checkpoint_dir(base)

    kwargs: dict = {"dtype": dtype}
    if load_in_4bit:
        if device.type != "cuda":
            raise ValueError("load_in_4bit needs a CUDA GPU (bitsandbytes); on a CPU load in float32 or bfloat16")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype,
            # Keep the LM head unquantised (as QLoRA does); block MLPs' ff_out are quantised.
            llm_int8_skip_modules=["transformer.ff_out"],
        )
        kwargs["device_map"] = {"": device.index or 0}
    try:
        config = LLaDAConfig.from_pretrained(weights_dir)
    except (OSError, ValueError) as err:  # missing or unparsable config.json
        raise ValueError(f"{weights_dir}/config.json could not be read ({err}); is {weights_dir} a checkpoint "
                         "directory (save_pretrained)?") from err
    try:
        model = LLaDAModelLM.from_pretrained(weights_dir, config=config, **kwargs)
    except (SafetensorError, OSError, RuntimeError) as err:  # truncated or corrupted weights: name the file
        files = sorted(p.name for p in weights_dir.glob("*.safetensors")) or ["model.safetensors"]
        raise ValueError(f"the weights in {weights_dir} ({', '.join(files)}) could not be read: {err}. The file is "
                         "probably truncated or corrupted: export or download the checkpoint again") from err
    tokenizer = _load_tokenizer(directory if _has_tokenizer(directory) else weights_dir)
    if adapter:
        from peft import PeftModel

        if tokenizer is not None and len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))
        model = PeftModel.from_pretrained(model, directory)
        config = model.base_model.model.config
        for key, value in _read_json(directory / "config.json").items():
            if key in ("slack_token_id", "ctc_collapse", "training_objective"):
                setattr(config, key, value)
    if not load_in_4bit:
        model.to(device)
    model.eval()

    facts = DecodingFacts(
        mask_id=config.mask_token_id,
        eos_id=config.eos_token_id,
        eot_id=getattr(config, "eot_token_id", None),
        pad_id=config.pad_token_id,
        slack_id=getattr(config, "slack_token_id", None),
        objective=config.training_objective,
        collapse=config.decode_collapse,
        defaults={k: v for k, v in _read_json(directory / GENERATION_FILE).items() if k in SAMPLER_KEYS},
    )
    return Checkpoint(model=model, tokenizer=tokenizer, facts=facts, source=str(path_or_repo))


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _has_tokenizer(directory: Path) -> bool:
    return any((directory / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"))


def _load_tokenizer(directory: Path):
    if not _has_tokenizer(directory):
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
