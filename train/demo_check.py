"""`python -m train demo-check`: can a visitor see one shifted token break CE while CTC absorbs it?

Decodes every held-out exact-answer prompt (or --limit of them, round-robin over families) with a
baseline and a candidate checkpoint, clean and once per comparable shift (`mdlm_viz.ShiftAtCommit`
at each position of the reference answer, up to --max-shifts), at the first checkpoint's sampler
defaults. Prints the demo-ability figures and writes every decode as JSON (--out). The measurement
code is `mdlm_viz.reveal`.

    python -m train demo-check --models ce=assets/ce ctc=assets/ctc --data runs/embedded/corpus/sft_heldout.jsonl
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

import mdlm_viz as mv
from mdlm_viz import reveal
from mdlm_viz.inference import load_for_inference
from mdlm_viz.references import parse_named_refs
from mdlm_viz.robustness import select_prompts

from .config import StageConfig
from .robustness import load_prompts


@dataclass
class DemoCheckConfig(StageConfig):
    models: dict[str, str] = field(default_factory=dict)  # the baseline (CE), then the candidate (CTC): name -> path
    data: list[str] = field(default_factory=list)  # held-out SFT JSONL (required on the command line)
    limit: int = 10_000  # at most this many prompts, round-robin over families
    max_shifts: int = 24  # shifts tried per prompt
    steps: int | None = None  # sampler settings; None: the baseline's
    gen_length: int | None = None
    block_length: int | None = None
    batch_size: int = 128
    out: str | None = None  # the summary and every decode as JSON
    quick: bool = False  # 12 prompts, 4 shifts each

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DemoCheckConfig:
        return super().from_args(argparse.Namespace(**{**vars(args), "models": parse_named_refs(args.models)}))


def add_arguments(p: argparse.ArgumentParser) -> None:
    DemoCheckConfig.set_cli_defaults(p)
    p.add_argument("--models", nargs=2, required=True, metavar="NAME=PATH",
                   help="the baseline (CE) then the candidate (CTC), e.g. ce=assets/ce ctc=assets/ctc")
    p.add_argument("--data", nargs="+", required=True, help="held-out SFT JSONL (records with 'answer' are used)")
    p.add_argument("--limit", type=int, help="at most this many prompts, round-robin over families")
    p.add_argument("--max-shifts", type=int, help="shifts tried per prompt (answer positions 0..K-1)")
    p.add_argument("--steps", type=int, help="sampler steps (default: the baseline's)")
    p.add_argument("--gen-length", type=int)
    p.add_argument("--block-length", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--out", help="write the summary and every decode as JSON here")
    p.add_argument("--quick", action="store_true", help="12 prompts, 4 shifts each: checks the pipeline in seconds")


def run(cfg: DemoCheckConfig) -> int:
    specs = cfg.models
    if len(specs) != 2:
        raise ValueError("--models takes two different names: the baseline, then the candidate")
    models = {name: tuple(load_for_inference(path)) for name, path in specs.items()}
    baseline, candidate = specs
    facts = models[baseline][2]
    sampler = {"steps": 48, "gen_length": 48, "block_length": 48, **facts.defaults}
    for key in ("steps", "gen_length", "block_length"):
        if getattr(cfg, key) is not None:
            sampler[key] = getattr(cfg, key)
    limit, shifts = (12, 4) if cfg.quick else (cfg.limit, cfg.max_shifts)
    if limit < 1 or shifts < 1:
        raise ValueError("--limit and --max-shifts must be at least 1")
    prompts = select_prompts([p for p in load_prompts(cfg.data) if p.exact], limit)
    if not prompts:
        raise ValueError(f"no exact-answer prompt in {' '.join(cfg.data)}")
    results = reveal.check(models, prompts, sampler, max_shifts=shifts, batch_size=cfg.batch_size,
                         progress=lambda s: print(s, flush=True))
    summary = reveal.summarise(results, baseline, candidate)
    summary.update(baseline=baseline, candidate=candidate, checkpoints=specs, sampler=sampler,
                   max_shifts=shifts)
    print(json.dumps(summary, indent=2))
    if cfg.out:
        out = Path(cfg.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps({"summary": summary, "prompts": [reveal.to_dict(r) for r in results]},
                                  indent=1, ensure_ascii=False))
        tmp.replace(out)
    return 0
