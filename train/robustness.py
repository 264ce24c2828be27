"""`python -m train robustness`: the paper's shift-intervention sweep over checkpoints.

Each checkpoint decodes the same held-out prompts (a round-robin mix of exact-answer task
families and open prompts) greedily, once clean and once per strength r and shift seed with r of
the generated tokens displaced by one position. Each intervened output is judged against the
clean output of the same model (exact-answer prompts by the reference; open prompts by the judge
checkpoint's masked-diffusion likelihood). The measurement code is `mdlm_viz.robustness`.

Writes OUT/robustness.json (every number, plus samples and changed outputs), OUT/prompts.jsonl
(the prompts evaluated) and Plotly figures OUT/robustness_win_rate.html and
OUT/robustness_accuracy.html; prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

import mdlm_viz as mv
from mdlm_viz import robustness as rb
from mdlm_viz.inference import load_for_inference
from mdlm_viz.references import parse_named_refs
from mdlm_viz.figures import robustness_figure
from mdlm_viz.report import comparison_table, markdown_table

from .config import StageConfig
from .data import DataError, read_records, split_chat


@dataclass
class RobustnessConfig(StageConfig):
    models: dict[str, str] = field(default_factory=dict)  # name -> checkpoint (required on the command line)
    data: list[str] = field(default_factory=list)  # held-out SFT JSONL (required on the command line)
    out: str = ""  # directory for robustness.json and the figures (required on the command line)
    judge: str | None = None  # judges open prompts: a name from `models` or a directory (None: base, else the first)
    reference: str | None = None  # every other model is compared with it (None: "ce" if swept)
    prompts: int = 200
    strengths: list[float] = field(default_factory=lambda: [100 * s for s in rb.STRENGTHS])  # percent
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    gen_length: int = 32
    steps: int = 32
    block_length: int = 16
    batch_size: int = 100
    bootstrap: int = 1000
    slack_bias: float = 0.0
    eos_last: bool = False
    decode_r0: bool = False
    quick: bool = False  # 8 prompts, r in {0, 10}%, one seed, short decodes

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RobustnessConfig:
        return super().from_args(argparse.Namespace(**{**vars(args), "models": parse_named_refs(args.models)}))


def add_arguments(p: argparse.ArgumentParser) -> None:
    RobustnessConfig.set_cli_defaults(p)
    p.add_argument("--models", nargs="+", required=True, metavar="NAME=PATH",
                   help="checkpoints to evaluate, e.g. base=assets/base ce=assets/ce ctc=assets/ctc")
    p.add_argument("--data", nargs="+", required=True, help="held-out SFT JSONL (records with 'answer' are exact)")
    p.add_argument("--out", required=True, help="directory for robustness.json and the figures")
    p.add_argument("--judge", help="the checkpoint whose likelihood judges open prompts: a NAME from "
                   "--models or a checkpoint directory (default: 'base' if given, else the first)")
    p.add_argument("--reference", help="the NAME every other checkpoint is compared with, paired on "
                   "the same prompts (default: 'ce' if given)")
    p.add_argument("--prompts", type=int, help="number of prompts (round-robin over families)")
    p.add_argument("--strengths", type=float, nargs="+",
                   help="intervention strengths in percent of generated tokens")
    p.add_argument("--seeds", type=int, nargs="+", help="shift seeds")
    p.add_argument("--gen-length", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--block-length", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--bootstrap", type=int, help="bootstrap resamples for confidence intervals")
    p.add_argument("--slack-bias", type=float, help="lower <slack>'s logit by this much when "
                   "decoding checkpoints that have one (0 = the paper's decoding; an ablation knob)")
    p.add_argument("--eos-last", action="store_true", help="commit EOS predictions last (the sampler's "
                   "confidence_eos_eot_inf; the embedded checkpoints' default)")
    p.add_argument("--decode-r0", action="store_true", help="decode r=0 again instead of reusing the clean run "
                   "(it must give identical outputs; the row reports how many were)")
    p.add_argument("--quick", action="store_true", help="8 prompts, r in {0, 10}%%, one seed, short decodes: "
                   "checks the pipeline in seconds")


def load_prompts(paths) -> list[rb.EvalPrompt]:
    prompts = []
    for path in paths:
        for rec in read_records(path):
            messages, response = split_chat(rec)
            exact = rec.get("answer") not in (None, "")
            prompts.append(rb.EvalPrompt(messages, str(rec["answer"]) if exact else response,
                                         rec.get("family", "all"), exact))
    if not prompts:
        raise DataError(f"no prompts in {' '.join(map(str, paths))}")
    return prompts


def run(cfg: RobustnessConfig) -> int:
    specs = cfg.models
    if not math.isfinite(cfg.slack_bias):
        raise ValueError(f"--slack-bias must be a finite number, got {cfg.slack_bias}")
    if cfg.quick:
        sweep = rb.SweepConfig(strengths=(0.0, 0.10), seeds=(0,), gen_length=16, steps=16, block_length=8,
                               batch_size=8, judge_samples=2, n_boot=100, decode_r0=True, slack_bias=cfg.slack_bias)
        n = 8
    else:
        if any(not 0 <= s <= 100 for s in cfg.strengths):
            raise ValueError("--strengths are percentages in [0, 100]")
        sweep = rb.SweepConfig(strengths=tuple(s / 100 for s in cfg.strengths), seeds=tuple(cfg.seeds),
                               gen_length=cfg.gen_length, steps=cfg.steps, block_length=cfg.block_length,
                               batch_size=cfg.batch_size, n_boot=cfg.bootstrap, decode_r0=cfg.decode_r0,
                               slack_bias=cfg.slack_bias, eos_last=cfg.eos_last)
        n = cfg.prompts
    prompts = rb.select_prompts(load_prompts(cfg.data), n)
    checkpoints = {name: tuple(load_for_inference(path)) for name, path in specs.items()}
    judge_name = cfg.judge or ("base" if "base" in checkpoints else next(iter(checkpoints)))
    if judge_name in checkpoints:
        judge = checkpoints[judge_name]
    elif Path(judge_name).is_dir():  # a checkpoint that judges without being swept itself
        judge = tuple(load_for_inference(judge_name))
    else:
        raise ValueError(f"--judge {judge_name!r} is neither one of --models ({', '.join(checkpoints)}) "
                         "nor a checkpoint directory")
    with torch.no_grad():
        results = rb.run_sweep(checkpoints, prompts, sweep, judge=judge, reference=cfg.reference)
    results["judge"]["checkpoint"] = judge_name
    results["checkpoints"] = specs
    results["command"] = "python -m train robustness " + " ".join(
        [f"--models {' '.join(f'{k}={v}' for k, v in specs.items())}", f"--data {' '.join(map(str, cfg.data))}",
         f"--out {cfg.out}"]
        + ([f"--judge {cfg.judge}"] if cfg.judge else [])
        + ([f"--reference {cfg.reference}"] if cfg.reference else [])
        + (["--quick"] if cfg.quick else [f"--prompts {n}", f"--seeds {' '.join(map(str, sweep.seeds))}"])
        + ([f"--gen-length {sweep.gen_length} --steps {sweep.steps} --block-length {sweep.block_length}"]
           if not cfg.quick else [])
        + (["--eos-last"] if sweep.eos_last else [])
        + ([f"--slack-bias {sweep.slack_bias:g}"] if sweep.slack_bias else []))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "robustness.json.tmp"
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    tmp.replace(out / "robustness.json")
    # The exact prompts, so anyone can re-decode them (the test suite checks the shipped outputs).
    (out / "prompts.jsonl").write_text("".join(json.dumps(dataclasses.asdict(p), ensure_ascii=False) + "\n"
                                               for p in prompts))
    for metric in ("win_rate", "accuracy"):
        # Plotly's JS from its CDN keeps the file small; the app draws the same figure offline.
        robustness_figure(results, metric).write_html(out / f"robustness_{metric}.html", include_plotlyjs="cdn")
    print(markdown_table(results))
    if results["comparisons"]:
        print("\npaired on the same prompts, 95% bootstrap CIs:\n" + comparison_table(results))
    return 0
