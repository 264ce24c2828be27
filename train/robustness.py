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
from pathlib import Path

import torch

import mdlm_viz as mv
from mdlm_viz import robustness as rb
from mdlm_viz.figures import robustness_figure

from .data import DataError, read_records, split_chat


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="+", required=True, metavar="NAME=PATH",
                   help="checkpoints to evaluate, e.g. base=assets/base ce=assets/ce ctc=assets/ctc")
    p.add_argument("--data", nargs="+", required=True, help="held-out SFT JSONL (records with 'answer' are exact)")
    p.add_argument("--out", required=True, help="directory for robustness.json and the figures")
    p.add_argument("--judge", default=None, help="the checkpoint whose likelihood judges open prompts: a NAME from "
                   "--models or a checkpoint directory (default: 'base' if given, else the first)")
    p.add_argument("--reference", default=None, help="the NAME every other checkpoint is compared with, paired on "
                   "the same prompts (default: 'ce' if given)")
    p.add_argument("--prompts", type=int, default=200, help="number of prompts (round-robin over families)")
    p.add_argument("--strengths", type=float, nargs="+", default=[100 * s for s in rb.STRENGTHS],
                   help="intervention strengths in percent of generated tokens")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="shift seeds")
    p.add_argument("--gen-length", type=int, default=32)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--block-length", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for confidence intervals")
    p.add_argument("--slack-bias", type=float, default=0.0, help="lower <slack>'s logit by this much when "
                   "decoding checkpoints that have one (0 = the paper's decoding; an ablation knob)")
    p.add_argument("--eos-last", action="store_true", help="commit EOS predictions last (the sampler's "
                   "confidence_eos_eot_inf; the embedded checkpoints' default)")
    p.add_argument("--decode-r0", action="store_true", help="decode r=0 again instead of reusing the clean run "
                   "(it must give identical outputs; the row reports how many were)")
    p.add_argument("--quick", action="store_true", help="8 prompts, r in {0, 10}%%, one seed, short decodes: "
                   "checks the pipeline in seconds")


def parse_models(specs: list[str]) -> dict[str, str]:
    models = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--models takes NAME=PATH pairs, got {spec!r}")
        models[name] = path
    return models


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


def run(args) -> int:
    specs = parse_models(args.models)
    if not math.isfinite(args.slack_bias):
        raise ValueError(f"--slack-bias must be a finite number, got {args.slack_bias}")
    if args.quick:
        cfg = rb.SweepConfig(strengths=(0.0, 0.10), seeds=(0,), gen_length=16, steps=16, block_length=8,
                             batch_size=8, judge_samples=2, n_boot=100, decode_r0=True, slack_bias=args.slack_bias)
        n = 8
    else:
        if any(not 0 <= s <= 100 for s in args.strengths):
            raise ValueError("--strengths are percentages in [0, 100]")
        cfg = rb.SweepConfig(strengths=tuple(s / 100 for s in args.strengths), seeds=tuple(args.seeds),
                             gen_length=args.gen_length, steps=args.steps, block_length=args.block_length,
                             batch_size=args.batch_size, n_boot=args.bootstrap, decode_r0=args.decode_r0,
                             slack_bias=args.slack_bias, eos_last=args.eos_last)
        n = args.prompts
    prompts = rb.select_prompts(load_prompts(args.data), n)
    checkpoints = {name: tuple(mv.load_checkpoint(path, dtype=torch.float32)) for name, path in specs.items()}
    judge_name = args.judge or ("base" if "base" in checkpoints else next(iter(checkpoints)))
    if judge_name in checkpoints:
        judge = checkpoints[judge_name]
    elif Path(judge_name).is_dir():  # a checkpoint that judges without being swept itself
        judge = tuple(mv.load_checkpoint(judge_name, dtype=torch.float32))
    else:
        raise ValueError(f"--judge {judge_name!r} is neither one of --models ({', '.join(checkpoints)}) "
                         "nor a checkpoint directory")
    with torch.no_grad():
        results = rb.run_sweep(checkpoints, prompts, cfg, judge=judge, reference=args.reference)
    results["judge"]["checkpoint"] = judge_name
    results["checkpoints"] = specs
    results["command"] = "python -m train robustness " + " ".join(
        [f"--models {' '.join(args.models)}", f"--data {' '.join(map(str, args.data))}", f"--out {args.out}"]
        + ([f"--judge {args.judge}"] if args.judge else [])
        + ([f"--reference {args.reference}"] if args.reference else [])
        + (["--quick"] if args.quick else [f"--prompts {n}", f"--seeds {' '.join(map(str, cfg.seeds))}"])
        + ([f"--gen-length {cfg.gen_length} --steps {cfg.steps} --block-length {cfg.block_length}"]
           if not args.quick else [])
        + (["--eos-last"] if cfg.eos_last else [])
        + ([f"--slack-bias {cfg.slack_bias:g}"] if cfg.slack_bias else []))
    out = Path(args.out)
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
    print(rb.markdown_table(results))
    if results["comparisons"]:
        print("\npaired on the same prompts, 95% bootstrap CIs:\n" + rb.comparison_table(results))
    return 0
