"""`python -m train recipe embedded`: every embedded checkpoint in `assets/`, from scratch, in one command.

Stages (each is skipped when its output is complete, so an interrupted recipe picks up where it
stopped; a stage interrupted mid-way resumes from its last complete checkpoint):

    corpus      offline corpus + exact-answer task generator         -> OUT/corpus
    tokenizer   byte-level BPE with LLaDA's special tokens            -> OUT/tokenizer
    pretrain    masked-diffusion pre-training                         -> OUT/pretrain
    base        SFT (CE) of the pre-trained model: the stand-in for LLaDA-8B-Instruct
    export      bfloat16 weights, tokenizer, sampler defaults and a model card -> ASSETS/base
    ce          SFT of the released ASSETS/base, CE only                  } same data, steps, seed:
    ctc         SFT of ASSETS/base, CE + 0.1 * CTC, slack-only collapse   } matched runs
    ctc-standard  the same with the standard collapse (merges repeats: the paper's v1 failure)
    export      each fine-tune -> ASSETS/<name>, its card measured on the exported weights
    evaluate    held-out CE and accuracy per task family on every held-out prompt with an exact
                answer, and each model against ce paired on the same prompts -> ASSETS/eval/accuracy.json
    robustness  the shift-robustness sweep -> ASSETS/eval/robustness.json + figures

`--quick` runs the same pipeline with a tiny model and a few steps (the test suite does).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .trainer import last_complete_checkpoint

SFT_MODELS = ("ce", "ctc", "ctc-standard")


@dataclass
class Recipe:
    corpus: list[str]
    tokenizer: list[str]
    pretrain: list[str]
    base: list[str]
    finetune: list[str]  # shared by ce / ctc / ctc-standard
    sampler: dict  # generation defaults written into every exported checkpoint
    accuracy_limit: int = 1000  # every held-out prompt with an exact answer
    robustness: list[str] = field(default_factory=list)
    generate: list[str] = field(default_factory=list)  # SFT task families, repeated to weight them (empty: all)
    demo_check: list[str] = field(default_factory=list)


# Generated tasks only (no packaged prose: a model this small never became fluent in it, and its
# held-out accuracy was capped by memorising a fixed set of 12,000 examples). Pre-training reads the
# corpus's rendered training tasks; every SFT stage draws a fresh example for every sequence.
EMBEDDED = Recipe(
    corpus=["--tasks", "14000", "--sources"],
    tokenizer=["--vocab-size", "1024"],
    # Tied embeddings: copying a prompt token needs no separate output row per token to be learned
    # (on a copy-only run the loss fell about 30% faster per step than untied; docs/results.md).
    pretrain=["--seq-len", "64", "--d-model", "192", "--layers", "4", "--heads", "6", "--mlp", "512",
              "--tie-embeddings", "--steps", "300", "--batch-size", "32", "--lr", "2e-3", "--warmup", "50",
              "--seed", "0", "--log-every", "50", "--save-every", "100"],
    # SFT stages use the flat CE weighting: with LLaDA's 1 / p_mask the base never learned to copy in
    # 3000 steps (0% exact on copy/reverse/sort); see docs.
    # Copying by position is what a small model learns slowest (8,000 steps of an even mix left copy
    # and reverse near 0%), and what the demo needs most: those families get three shares each.
    generate=["copy"] * 3 + ["reverse"] * 3 + ["sort"] * 2 + ["arithmetic"] * 2 + ["spell"] * 2 + ["count", "story"],
    base=["--steps", "12000", "--batch-size", "32", "--lr", "1.5e-3", "--warmup", "200", "--seed", "0",
          "--max-length", "128", "--weighting", "flat", "--log-every", "100", "--save-every", "500"],
    finetune=["--steps", "3000", "--batch-size", "32", "--lr", "5e-4", "--warmup", "50", "--seed", "1",
              "--generate-seed", "1", "--max-length", "128", "--weighting", "flat", "--log-every", "50",
              "--save-every", "500"],
    sampler={"steps": 48, "gen_length": 48, "block_length": 48, "remasking": "low_confidence", "temperature": 0.0,
             "confidence_eos_eot_inf": True},
    robustness=["--prompts", "200", "--seeds", "0", "1", "--gen-length", "48", "--steps", "48", "--block-length", "48",
                "--eos-last"],
    demo_check=[],
)

QUICK = Recipe(
    corpus=["--tasks", "300", "--sources"],
    tokenizer=["--vocab-size", "512"],
    pretrain=["--seq-len", "32", "--d-model", "32", "--layers", "1", "--heads", "2", "--mlp", "64",
              "--steps", "4", "--batch-size", "4", "--seed", "0", "--log-every", "2", "--save-every", "2"],
    base=["--steps", "2", "--batch-size", "4", "--seed", "0", "--max-length", "96", "--log-every", "1",
          "--save-every", "2"],
    finetune=["--steps", "2", "--batch-size", "4", "--seed", "1", "--max-length", "96", "--log-every", "1",
              "--save-every", "2"],
    sampler={"steps": 8, "gen_length": 8, "block_length": 4, "remasking": "low_confidence", "temperature": 0.0},
    accuracy_limit=8,
    robustness=["--quick"],
    demo_check=["--quick"],
)

OBJECTIVES = {"ce": ["--objective", "ce"],
              "ctc": ["--objective", "ctc", "--lam", "0.1", "--collapse", "slack"],
              "ctc-standard": ["--objective", "ctc", "--lam", "0.1", "--collapse", "standard"]}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=("embedded",), help="the recipe: embedded = the checkpoints shipped in assets/")
    p.add_argument("--out", default="runs/embedded", help="working directory for every stage (resumable)")
    p.add_argument("--assets", default="assets", help="where the exported checkpoints and evaluation go")
    p.add_argument("--quick", action="store_true", help="tiny model, a few steps: checks the pipeline in seconds")
    p.add_argument("--models", nargs="+", default=["base", *SFT_MODELS],
                   help="checkpoints to train and export (base always is: the fine-tunes start from it)")
    p.add_argument("--skip-robustness", action="store_true", help="stop after exporting and per-family accuracy")
    p.add_argument("--jobs", type=int, default=1, help="fine-tunes trained at once, in separate processes sharing "
                   "the CPU cores (one torch thread each on a 2-core machine)")
    p.add_argument("--offline", action="store_true", help="corpus: use only sources already on disk")


def _complete(stage_dir: Path) -> bool:
    return (stage_dir / "last" / "training.json").is_file()


def _run(argv: list[str]) -> None:
    from .__main__ import main

    print("\n$ python -m train " + " ".join(argv), flush=True)
    main(argv)


def _run_parallel(argvs: dict[str, list[str]], jobs: int, out: Path) -> None:
    """Fine-tunes as separate processes, `jobs` at a time, each with an even share of the cores
    (torch threads fight when oversubscribed); logs go to OUT/NAME.log."""
    import os
    import subprocess
    import sys

    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    pending, running = list(argvs.items()), {}
    while pending or running:
        while pending and len(running) < jobs:
            name, argv = pending.pop(0)
            print(f"\n$ python -m train {' '.join(argv)}   (log: {out / (name + '.log')})", flush=True)
            log = open(out / f"{name}.log", "a")
            running[name] = (subprocess.Popen([sys.executable, "-m", "train", *argv], env=env, stdout=log,
                                              stderr=subprocess.STDOUT), log)
        time.sleep(5)
        for name, (proc, log) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                del running[name]
                if proc.returncode:
                    raise RuntimeError(f"fine-tune {name} failed (exit {proc.returncode}); see {out / (name + '.log')}"
                                       "; run the recipe again to resume it")


def run(args) -> int:
    from mdlm_viz.robustness import paired_difference

    recipe = QUICK if args.quick else EMBEDDED
    out, assets = Path(args.out), Path(args.assets)
    out.mkdir(parents=True, exist_ok=True)
    timings = json.loads((out / "timings.json").read_text()) if (out / "timings.json").is_file() else {}

    def stage(name: str, done: bool, argv: list[str]) -> None:
        if done:
            print(f"[{name}] complete, skipped")
            return
        t0 = time.time()
        _run(argv)
        timings[name] = round(time.time() - t0 + timings.get(name, 0), 1)
        (out / "timings.json").write_text(json.dumps(timings, indent=2))

    corpus, tok = out / "corpus", out / "tokenizer"
    stage("corpus", (corpus / "manifest.json").is_file(),
          ["corpus", "--out", str(corpus), *recipe.corpus, *(["--offline"] if args.offline else [])])
    stage("tokenizer", (tok / "tokenizer.json").is_file(),
          ["tokenizer", "--corpus", str(corpus), "--out", str(tok), *recipe.tokenizer])
    resume = lambda d: ["--resume"] if last_complete_checkpoint(d) else []  # noqa: E731
    pre = out / "pretrain"
    stage("pretrain", _complete(pre), ["pretrain", "--tokenizer", str(tok), "--data", str(corpus / "pretrain.jsonl"),
                                      "--heldout", str(corpus / "pretrain_heldout.jsonl"), "--out", str(pre),
                                      *recipe.pretrain, *resume(pre)])
    sft_data = ["--generate", *recipe.generate, "--heldout", str(corpus / "sft_heldout.jsonl")]
    stage("base", _complete(out / "base"), ["sft", "--base", str(pre / "last"), *sft_data, "--out", str(out / "base"),
                                           "--objective", "ce", *recipe.base, *resume(out / "base")])
    heldout = corpus / "sft_heldout.jsonl"
    evaluation = assets / "eval"
    evaluation.mkdir(parents=True, exist_ok=True)
    accuracy = {}
    # The fine-tunes start from the *released* base (bfloat16, as shipped), as the paper fine-tunes
    # the released LLaDA-8B-Instruct: what ships in assets/ is exactly what they descend from.
    accuracy["base"] = export(out / "base" / "last", assets / "base", "base", recipe, heldout, out)
    wanted = [name for name in SFT_MODELS if name in args.models]
    argv = {name: ["sft", "--base", str(assets / "base"), *sft_data, "--out", str(out / name), *OBJECTIVES[name],
                   *recipe.finetune, *resume(out / name)] for name in wanted}
    todo = [name for name in wanted if not _complete(out / name)]
    if args.jobs > 1 and len(todo) > 1:
        t0 = time.time()
        _run_parallel({name: argv[name] for name in todo}, args.jobs, out)
        for name in todo:  # each ran for about the whole span, side by side
            timings[name] = round(time.time() - t0 + timings.get(name, 0), 1)
        (out / "timings.json").write_text(json.dumps(timings, indent=2))
    for name in wanted:
        stage(name, _complete(out / name), argv[name])
        accuracy[name] = export(out / name / "last", assets / name, name, recipe, heldout, out)
    models = [m for m in ("base", *SFT_MODELS) if m in accuracy]
    summary = {name: {k: v for k, v in m.items() if k not in ("correct", "outputs", "slack")}
               for name, m in accuracy.items()}
    if "ce" in accuracy:  # paired on the same prompts: what "at least CE's clean quality" needs
        summary["comparisons"] = {f"{name} - ce": paired_difference(accuracy[name]["correct"], accuracy["ce"]["correct"])
                                  for name in models if name != "ce"}
    (evaluation / "accuracy.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"exported {', '.join(models)} -> {assets}")
    if "ce" in accuracy and "ctc" in accuracy:
        t0 = time.time()
        _run(["demo-check", "--models", f"ce={assets / 'ce'}", f"ctc={assets / 'ctc'}",
              "--data", str(corpus / "sft_heldout.jsonl"), "--out", str(evaluation / "demo.json"), *recipe.demo_check])
        timings["demo-check"] = round(time.time() - t0, 1)
        (out / "timings.json").write_text(json.dumps(timings, indent=2))
    if not args.skip_robustness:
        t0 = time.time()
        _run(["robustness", "--models", *[f"{m}={assets / m}" for m in models],
              "--data", str(corpus / "sft_heldout.jsonl"), "--out", str(evaluation), *recipe.robustness])
        timings["robustness"] = round(time.time() - t0, 1)
        (out / "timings.json").write_text(json.dumps(timings, indent=2))
    print("timings (s): " + json.dumps(timings))
    return 0


SAMPLE_COMMAND = "python -m train eval --checkpoint {path} --data {data} --limit {limit} --batch-size 100 --seed 0"


def evaluate_checkpoint(path: Path, heldout: Path, recipe: Recipe) -> dict:
    """Held-out CE and exact-answer accuracy per family (`python -m train eval`), plus open samples."""
    from mdlm_viz import load_checkpoint

    from .data import read_records, split_chat
    from .evaluate import decode_batch, heldout_loss, task_accuracy
    from .stories import accepts

    model, tok, facts = load_checkpoint(path, dtype=torch.float32)
    torch.manual_seed(0)
    result = {"heldout_ce": round(heldout_loss(model, tok, facts, [heldout], 256, seed=0), 4),
              **task_accuracy(model, tok, facts, [heldout], recipe.accuracy_limit, 100, **recipe.sampler)}
    stories = [r for r in read_records(heldout) if r.get("family") == "story"]
    texts = []
    for i in range(0, len(stories), 100):
        texts += decode_batch(model, tok, facts, [split_chat(r)[0] for r in stories[i:i + 100]], **recipe.sampler)
    # Fluency: the share of story answers the story grammar accepts, about the prompt's character.
    fluent = [accepts(t, r["meta"]["name"], r["meta"]["animal"]) for r, t in zip(stories, texts)]
    result["story_fluency"] = round(sum(fluent) / len(fluent), 4) if fluent else None
    result["story_prompts"] = len(fluent)
    result["open_samples"] = [{"prompt": split_chat(r)[0][-1]["content"], "reference": split_chat(r)[1], "output": t,
                               "grammatical": ok} for r, t, ok in list(zip(stories, texts, fluent))[:6]]
    return result


def export(src: Path, dst: Path, name: str, recipe: Recipe, heldout: Path, out: Path) -> dict:
    """bfloat16 weights (half the bytes; the app computes in float32), tokenizer, sampler defaults,
    and a model card written from the recorded training metadata and from the evaluation of the
    exported weights themselves (what ships is what was measured). Returns that evaluation."""
    from mdlm_viz import load_checkpoint

    model, tok, facts = load_checkpoint(src, dtype=torch.float32)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "generation_config.json").write_text(json.dumps(recipe.sampler, indent=2))
    chain = lineage(src)
    (tmp / "training.json").write_text(json.dumps({"name": name, "lineage": chain}, indent=2, default=str))
    metrics = evaluate_checkpoint(tmp, heldout, recipe)
    (tmp / "README.md").write_text(card(name, chain, metrics, recipe, out, facts))
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    return metrics


def lineage(last: Path) -> list[dict]:
    """The training metadata of every stage a checkpoint descends from, oldest first, following
    each run's --base; an exported checkpoint (assets/NAME) contributes its recorded lineage."""
    chain = []
    path = Path(last)
    while (path / "training.json").is_file():
        meta = json.loads((path / "training.json").read_text())
        if "lineage" in meta:  # an export: its whole history is recorded
            return meta["lineage"] + chain[::-1]
        chain.append(meta)
        if not meta.get("base"):
            break
        path = Path(meta["base"])
    return chain[::-1]


DESCRIPTIONS = {
    "base": "the instruction-tuned base (the stand-in for LLaDA-8B-Instruct): pre-trained, then SFT with CE",
    "ce": "base fine-tuned further with position-wise cross-entropy only (the paper's CE baseline)",
    "ctc": "base fine-tuned with CE + 0.1 * CTC and `<slack>`, slack-only collapse (the paper's v2 method)",
    "ctc-standard": "base fine-tuned with CE + 0.1 * CTC and `<slack>`, standard collapse that also merges "
                    "repeated tokens (the paper's v1; shows the number-collapse failure)",
}


def card(name, chain, metrics, recipe, out, facts) -> str:
    path = f"assets/{name}"
    manifest = json.loads((out / "corpus" / "manifest.json").read_text()) if (out / "corpus" / "manifest.json").is_file() else {}
    sources = ", ".join(f"{k} ({', '.join(f'{p} {v}' for p, v in s.get('packages', {}).items())})"
                        for k, s in manifest.get("sources", {}).items() if s.get("found")) or "no packaged text"
    tags = ["llada", "masked-diffusion", "mdlm-viz"] + (["ctc", "slack"] if facts.slack_id is not None else [])
    lines = ["---", "library_name: transformers", "pipeline_tag: fill-mask", f"tags: [{', '.join(tags)}]", "---", "",
             f"# mdlm-viz embedded checkpoint: `{name}`", "", f"{DESCRIPTIONS.get(name, name)}.", "",
             "A small LLaDA-architecture masked diffusion LM trained on a 2-core CPU by "
             "`python -m train recipe embedded`. Load it with `mdlm_viz.load_checkpoint(\"" + path + "\")`; "
             "weights are stored in bfloat16.", "",
             "## Data", "",
             f"- corpus built by `python -m train corpus` (packaged text: {sources}) with the task generator: "
             "copy, reverse, sort, count, arithmetic, spell (exact answers) and two-sentence stories from a "
             "small grammar; pre-training reads its rendered training tasks, and every SFT stage draws a fresh "
             "generated example per sequence (`python -m train sft --generate`), never one whose task key is "
             "held out.",
             f"- corpus parameters: `{json.dumps(manifest.get('params', {}))}`", "",
             "## Training lineage", "", "| stage | objective | steps | wall time (s) | examples/chunks | "
             "lambda | s_max | collapse | best held-out loss |", "|---|---|---|---|---|---|---|---|---|"]
    for m in chain:
        label = m.get("stage") if m.get("stage") == "pretrain" else "sft"
        ctc = m.get("objective") == "ctc"
        lines.append(f"| {label} | {m.get('objective')} | {m.get('steps')} | {m.get('wall_time_s')} | "
                     f"{m.get('examples') or m.get('chunks')} | {m.get('lam') if ctc else '-'} | "
                     f"{m.get('s_max') if ctc else '-'} | {m.get('collapse') if ctc else '-'} | "
                     f"{_fmt(min((h['eval_loss'] for h in m.get('eval_logs', [])), default=None))} |")
    hp = chain[0].get("hyperparameters", {})
    lines += ["", f"Model: d_model {hp.get('d_model')}, {hp.get('layers')} layers, {hp.get('heads')} heads, "
              f"MLP {hp.get('mlp')}, {chain[0].get('params')} parameters, context {hp.get('seq_len')} in pre-training.",
              "", "Hyper-parameters of the last stage:", "", "| name | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(chain[-1].get("hyperparameters", {}).items()) if k != "run"]
    lines += ["", "## Evaluation", "",
              f"Held-out SFT cross-entropy (original responses, fixed masks): **{metrics['heldout_ce']}**.", "",
              f"Exact-answer accuracy on {metrics['n']} held-out prompts (their task keys are never drawn in "
              f"training), greedy decoding with `{json.dumps(recipe.sampler)}`: **{metrics['accuracy']:.3f}**", "",
              "| family | accuracy |", "|---|---|"]
    lines += [f"| {f} | {a:.3f} |" for f, a in metrics["per_family"].items()]
    if metrics.get("story_fluency") is not None:
        lines += ["", f"Stories: {100 * metrics['story_fluency']:.1f}% of the answers to {metrics['story_prompts']} "
                  "held-out story prompts are sentences the story grammar (`train/stories.py`) accepts, about the "
                  "prompt's character."]
    cmd = SAMPLE_COMMAND.format(path=path, data="runs/embedded/corpus/sft_heldout.jsonl", limit=recipe.accuracy_limit)
    lines += ["", f"Produced by `python -m train recipe embedded`; to recompute the accuracy with the same sampler "
              f"settings: `{cmd}`.", "", "### Samples", "", "| prompt | reference | output |", "|---|---|---|"]
    for s in metrics.get("samples", [])[:6] + metrics.get("open_samples", []):
        lines.append(f"| {_cell(s['prompt'])} | {_cell(s.get('answer', s.get('reference', '')))} | {_cell(s['output'])} |")
    lines += ["", "## Limits", "",
              "A few million parameters trained on generated tasks: it knows the task families above and the "
              "story grammar's words, nothing else. It exists to make diffusion decoding, `<slack>` and the "
              "CE/CTC difference visible in the app, not to be used for anything else.", ""]
    weak = ", ".join(f"{f} ({100 * a:.0f}%)" for f, a in metrics["per_family"].items() if a < 0.9)
    if weak:
        lines += [f"Families below 90% exact: {weak}.", ""]
    return "\n".join(lines)


def _fmt(v):
    return f"{v:.4f}" if isinstance(v, float) else "-" if v is None else str(v)


def _cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")[:160]
