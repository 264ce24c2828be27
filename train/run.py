"""`python -m train pretrain` and `python -m train sft`: the two training commands.

    pretrain   masked-diffusion pre-training of a small LLaDA-architecture model from scratch
    sft        LLaDA SFT of a checkpoint with --objective ce (CE only) or ctc (CE + lambda * CTC)

CE and CTC runs from the same base with the same data, steps and seed are matched by
construction: same initial weights, batches in the same order, masking noise from the same seed;
slack insertion (ctc only) draws from a generator seeded by each batch's content, so resuming
reproduces it. The objective, collapse map and slack id are saved in the checkpoint's config so
`mdlm_viz.load_checkpoint` decodes it correctly.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
from transformers import TrainingArguments

from mdlm_viz import LLaDAConfig, LLaDAModelLM, load_checkpoint
from mdlm_viz.checkpoint import GENERATION_FILE

from .data import DataError, PretrainCollator, SFTCollator, SFTData, load_pretrain_chunks, load_sft, slack_length
from .objectives import PLACEMENTS
from .tokenizer import SLACK, config_token_ids
from .trainer import DiffusionTrainer, Objective, StopAfter, last_complete_checkpoint, wall_time_of


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output directory: checkpoints, the final model, metrics")
    p.add_argument("--steps", type=int, default=1000, help="optimiser steps (the length of the LR schedule)")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop after N steps with the schedule still spanning --steps (resume later to go on)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=50, help="linear warm-up steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--bf16", action="store_true", help="bfloat16 mixed precision (GPU)")
    p.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing (saves memory)")
    p.add_argument("--resume", action="store_true", help="resume from the last complete checkpoint in --out")
    p.add_argument("--heldout", nargs="*", default=[], help="held-out JSONL files: evaluated every --save-every "
                   "steps; the best checkpoint by held-out loss is saved as OUT/best")


def check_common(args) -> None:
    """Refuse settings the Trainer would take and then fail on (or silently misuse)."""
    import math

    for name in ("steps", "batch_size", "grad_accum", "log_every", "save_every"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr must be a positive number, got {args.lr}")
    if args.warmup < 0:
        raise ValueError(f"--warmup must be 0 or more, got {args.warmup}")
    if args.resume and last_complete_checkpoint(args.out) is None:
        raise ValueError(f"--resume: no complete checkpoint in {args.out} to resume from; drop --resume to start "
                         "a new run there")


def training_arguments(args, has_eval: bool = False) -> TrainingArguments:
    evaluation = dict(eval_strategy="steps", eval_steps=args.save_every, metric_for_best_model="eval_loss",
                      greater_is_better=False, per_device_eval_batch_size=args.batch_size) if has_eval else {}
    return TrainingArguments(
        output_dir=args.out, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum, learning_rate=args.lr, warmup_steps=args.warmup,
        lr_scheduler_type="cosine", weight_decay=0.0, logging_steps=args.log_every, save_strategy="steps",
        save_steps=args.save_every, save_total_limit=2, seed=args.seed, data_seed=args.seed, bf16=args.bf16,
        activation_checkpointing=args.grad_ckpt, report_to="none", dataloader_num_workers=0,
        remove_unused_columns=False, use_cpu=not torch.cuda.is_available(), **evaluation,
    )


def _train(trainer, args, model, tokenizer, meta: dict) -> int:
    trainer._started = time.time()
    resume = None
    stop = getattr(args, "stop_after", None)
    if stop is not None and not 0 < stop <= args.steps:
        raise ValueError(f"--stop-after {stop} must be in 1..--steps ({args.steps})")
    if stop is not None:
        trainer.add_callback(StopAfter(stop))
    if args.resume:
        resume = last_complete_checkpoint(args.out)
        print(f"resuming from {resume}")
        _truncate_metrics(Path(args.out) / "metrics.jsonl", int(resume.name.split("-")[-1]) if resume else 0)
        trainer.wall_time_before = wall_time_of(resume)
    if resume is not None and stop is not None and int(resume.name.split("-")[-1]) >= stop:
        # Already there: take the checkpoint as it is (training on would overshoot --stop-after).
        from safetensors.torch import load_model
        from transformers import TrainerState

        load_model(model, str(resume / "model.safetensors"))
        trainer.state = TrainerState.load_from_json(str(resume / "trainer_state.json"))
    else:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    state = trainer.state
    meta = dict(meta, steps=state.global_step, wall_time_s=round(trainer.wall_time(), 1),
                hyperparameters={k: getattr(args, k) for k in vars(args) if k not in ("run",)},
                last_logs=[h for h in state.log_history if "loss" in h][-1:],
                eval_logs=[h for h in state.log_history if "eval_loss" in h])
    last = Path(args.out) / "last"
    trainer.save_model(str(last))
    _finish(last, tokenizer, dict(meta, checkpoint="last"), model)
    if state.best_model_checkpoint and Path(state.best_model_checkpoint).is_dir():
        best = Path(args.out) / "best"
        shutil.rmtree(best, ignore_errors=True)
        shutil.copytree(state.best_model_checkpoint, best,
                        ignore=shutil.ignore_patterns("optimizer.pt", "scheduler.pt", "rng_state*", "trainer_state.json",
                                                      "training_args.bin", "checkpoint_complete"))
        _finish(best, tokenizer, dict(meta, checkpoint="best", best_step=int(state.best_model_checkpoint.split("-")[-1]),
                                      best_eval_loss=state.best_metric), model)
    print(f"saved {last}" + (f" and {Path(args.out) / 'best'}" if (Path(args.out) / "best").is_dir() else ""))
    return 0


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop the log lines a resumed run is about to write again (those after its checkpoint)."""
    if path.is_file():
        keep = [line for line in path.read_text().splitlines() if json.loads(line).get("step", 0) <= step]
        path.write_text("".join(line + "\n" for line in keep))


def _finish(directory: Path, tokenizer, meta: dict, model=None) -> None:
    tokenizer.save_pretrained(directory)
    if (directory / "adapter_config.json").is_file() and model is not None:
        # an adapter directory still tells load_checkpoint the slack id, collapse map and objective
        model.config.to_json_file(directory / "config.json")
    (directory / "training.json").write_text(json.dumps(meta, indent=2, default=str))
    (directory / "README.md").write_text(model_card(meta))
    inherited = Path(str(meta.get("base") or "")) / GENERATION_FILE
    if meta.get("base") and inherited.is_file():
        # a fine-tune decodes with its base's sampler defaults unless told otherwise (eval, app, sweep)
        shutil.copyfile(inherited, directory / GENERATION_FILE)


def model_card(meta: dict) -> str:
    """A model card from what the run recorded (nothing here is typed by hand)."""
    objective = meta.get("objective", meta.get("stage"))
    lines = ["---", "library_name: transformers", "pipeline_tag: fill-mask",
             "tags: [llada, masked-diffusion, mdlm-viz" + (", ctc, slack" if objective == "ctc" else "") + "]",
             "---", "", f"# mdlm-viz {meta.get('stage')} checkpoint ({objective}, {meta.get('checkpoint')})", "",
             "A LLaDA-architecture masked diffusion language model trained with mdlm-viz's "
             "`python -m train`. Load it with `mdlm_viz.load_checkpoint(path)`.", "",
             "## Training", "",
             f"- stage: {meta.get('stage')}; objective: {objective}",
             f"- steps: {meta.get('steps')}; wall time: {meta.get('wall_time_s')} s",
             f"- data: {', '.join(map(str, meta.get('data', [])))}"]
    for key in ("base", "examples", "skipped_too_long", "chunks", "seq_len", "params", "lam", "s_max", "collapse",
                "emission", "best_step", "best_eval_loss"):
        if meta.get(key) is not None:
            lines.append(f"- {key}: {meta[key]}")
    lines += ["", "## Hyper-parameters", "", "| name | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(meta.get("hyperparameters", {}).items())]
    lines += ["", "## Final metrics", ""]
    for h in meta.get("last_logs", []) + meta.get("eval_logs", [])[-1:]:
        lines.append("- " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in h.items()))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ pretrain
def add_pretrain_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokenizer", required=True, help="tokenizer directory (python -m train tokenizer)")
    p.add_argument("--data", required=True, nargs="+", help="pre-training JSONL files ({'text': ...})")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--mlp", type=int, default=688, help="MLP hidden size")
    p.add_argument("--tie-embeddings", action="store_true",
                   help="share the input embedding and the output head (fewer parameters; copying a prompt token "
                        "then needs no separate output row to be learned)")
    p.add_argument("--objective", choices=("ce", "ctc"), default="ce",
                   help="ctc: also apply the slack/CTC term during pre-training (same code as SFT)")
    p.add_argument("--lam", type=float, default=0.1, help="weight of the CTC term")
    p.add_argument("--s-max", type=float, default=0.5, help="slack ratio drawn from U(0, s_max)")
    p.add_argument("--collapse", choices=("slack", "standard"), default="slack")
    p.add_argument("--emission", choices=("forced", "free"), default="forced")
    add_common_arguments(p)


def run_pretrain(args) -> int:
    from transformers import AutoTokenizer

    check_common(args)
    if not Path(args.tokenizer).is_dir():
        raise SystemExit(f"--tokenizer {args.tokenizer}: no such directory; make one with `python -m train tokenizer`")
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    torch.manual_seed(args.seed)
    ids = config_token_ids(tokenizer)
    ids.pop("slack_token_id", None)  # set only by CTC training: it tells the sampler to decode slack
    config = LLaDAConfig.small(vocab_size=len(tokenizer), d_model=args.d_model, n_layers=args.layers,
                               n_heads=args.heads, n_kv_heads=args.heads, mlp_hidden_size=args.mlp,
                               max_sequence_length=max(512, args.seq_len), weight_tying=args.tie_embeddings, **ids)
    slack_id = None
    if args.objective == "ctc":
        if SLACK not in tokenizer.get_vocab():
            raise SystemExit(f"--objective ctc needs a {SLACK} token in the tokenizer ({args.tokenizer}); "
                             "train one with `python -m train tokenizer`")
        slack_id = tokenizer.convert_tokens_to_ids(SLACK)
        config.update(dict(slack_token_id=slack_id, ctc_collapse=args.collapse))
        # worst case: every gap of a chunk of repeats gets a slack (standard), plus s_max * seq_len
        longest = slack_length(args.seq_len, args.s_max, args.seq_len - 1 if args.collapse == "standard" else 0)
        config.max_sequence_length = max(config.max_sequence_length, longest)
    config.training_objective = "pretrain" if args.objective == "ce" else "pretrain-ctc"
    model = LLaDAModelLM(config)
    chunks = load_pretrain_chunks(args.data, tokenizer, args.seq_len)
    heldout = None
    if args.heldout:
        try:
            heldout = load_pretrain_chunks(args.heldout, tokenizer, args.seq_len)
        except DataError as err:
            print(f"warning: no held-out evaluation: {err}")
    objective = Objective("pretrain", mask_id=config.mask_token_id, kind=args.objective, slack_id=slack_id,
                          lam=args.lam, collapse=args.collapse, emission=args.emission)
    collator = PretrainCollator(seed=args.seed, eos_id=tokenizer.eos_token_id, slack_id=slack_id,
                                s_max=args.s_max, collapse=args.collapse)
    trainer = DiffusionTrainer(model=model, args=training_arguments(args, heldout is not None), train_dataset=chunks,
                               eval_dataset=heldout, data_collator=collator, processing_class=tokenizer,
                               eval_collator=PretrainCollator(short_fraction=0.0), objective=objective)
    return _train(trainer, args, model, tokenizer, dict(stage="pretrain", objective=args.objective,
                                                       chunks=len(chunks), seq_len=args.seq_len,
                                                       params=sum(p.numel() for p in model.parameters()),
                                                       data=args.data))


# ------------------------------------------------------------------------------------ sft
def add_sft_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", required=True, help="checkpoint to fine-tune: a directory or hub id")
    p.add_argument("--data", nargs="+", default=[], help="SFT JSONL files (chat 'messages' or prompt/response), or "
                   "hf:owner/name[:split] for a Hugging Face dataset in chat format")
    p.add_argument("--generate", nargs="*", default=None, metavar="FAMILY",
                   help="train on freshly generated tasks instead of --data (all families when none are named; "
                        "repeat a family to give it more turns; a new example for every sequence, held-out keys "
                        "never drawn)")
    p.add_argument("--generate-seed", type=int, default=0, help="seed of the --generate stream")
    p.add_argument("--objective", choices=("ce", "ctc"), default="ce")
    p.add_argument("--lam", type=float, default=0.1, help="weight of the CTC term")
    p.add_argument("--s-max", type=float, default=0.5, help="slack ratio drawn from U(0, s_max)")
    p.add_argument("--slack-placement", choices=PLACEMENTS, default="uniform",
                   help="where the slack goes: each at a random gap (uniform) or all in one random gap")
    p.add_argument("--collapse", choices=("slack", "standard"), default="slack")
    p.add_argument("--emission", choices=("forced", "free"), default="forced")
    p.add_argument("--weighting", choices=("elbo", "flat"), default="elbo",
                   help="CE weighting: elbo = LLaDA's 1 / p_mask (the paper's); flat = mean over masked "
                        "tokens, lower variance, learns copy-like tasks faster (the embedded base uses it)")
    p.add_argument("--max-length", type=int, default=256, help="longer examples are skipped and counted")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters (peft) instead of all weights; the "
                   "<slack> embedding and output rows train too")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--load-in-4bit", action="store_true", help="QLoRA: 4-bit base weights (CUDA + bitsandbytes)")
    add_common_arguments(p)


# LLaDA's module names inside the blocks (Llama names such as o_proj or gate_proj would silently match
# nothing). A regex, because the blocks' ff_out (MLP down projection) shares its name with the LM head.
LORA_TARGETS = r".*\.blocks\.\d+\.(q_proj|k_proj|v_proj|attn_out|ff_proj|up_proj|ff_out)"


def wrap_lora(model, args, slack_id: int | None):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if args.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.grad_ckpt)
    extra = {}
    if slack_id is not None:  # the new token's rows must learn, in the embedding and the untied head
        heads = ["wte"] + ([] if model.config.weight_tying else ["transformer.ff_out"])
        extra["trainable_token_indices"] = {name: [slack_id] for name in heads}
    config = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                        target_modules=LORA_TARGETS, **extra)
    return get_peft_model(model, config)


def run_sft(args) -> int:
    check_common(args)
    if args.load_in_4bit and not args.lora:
        raise SystemExit("--load-in-4bit trains LoRA adapters on a frozen 4-bit base: add --lora")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # Full fine-tuning keeps float32 master weights (--bf16 autocasts); a frozen LoRA base is bf16.
    dtype = torch.bfloat16 if args.bf16 and args.lora else torch.float32
    model, tokenizer, facts = load_checkpoint(args.base, device=device, dtype=dtype, load_in_4bit=args.load_in_4bit)
    model.train()
    slack_id = None
    if args.objective == "ctc":
        if SLACK not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"additional_special_tokens": [SLACK]})
        slack_id = tokenizer.convert_tokens_to_ids(SLACK)
        if slack_id >= model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))
        model.config.ctc_collapse = args.collapse
    model.config.slack_token_id = slack_id
    model.config.training_objective = args.objective
    if args.lora:
        model = wrap_lora(model, args, slack_id)
    # Slack makes responses longer: budget for it so no augmented example exceeds --max-length.
    slack = dict(s_max=args.s_max, collapse=args.collapse) if args.objective == "ctc" else {}
    if args.generate is not None:
        from .data import GeneratedSFT
        length = args.steps * args.batch_size * args.grad_accum
        data = SFTData(GeneratedSFT(tokenizer, length, args.generate or None, seed=args.generate_seed),
                       sources=[f"generated:{','.join(args.generate) or 'all'}"])
    elif not args.data:
        raise DataError("sft needs --data FILE ... or --generate [FAMILY ...]")
    else:
        data = load_sft(args.data, tokenizer, args.max_length, **slack)
    heldout = load_sft(args.heldout, tokenizer, args.max_length).examples if args.heldout else None
    if data.skipped_too_long:
        print(f"skipped {data.skipped_too_long} examples longer than --max-length {args.max_length}")
    objective = Objective("sft", mask_id=facts.mask_id, kind=args.objective, slack_id=slack_id, lam=args.lam,
                          collapse=args.collapse, emission=args.emission, weighting=args.weighting)
    collator = SFTCollator(tokenizer.eos_token_id, slack_id, args.s_max, args.collapse, seed=args.seed,
                           placement=args.slack_placement)
    torch.manual_seed(args.seed)
    trainer = DiffusionTrainer(model=model, args=training_arguments(args, heldout is not None),
                               train_dataset=data.examples, eval_dataset=heldout, data_collator=collator,
                               processing_class=tokenizer,  # every checkpoint-N loads on its own
                               eval_collator=SFTCollator(tokenizer.eos_token_id), objective=objective)
    return _train(trainer, args, model, tokenizer, dict(
        stage="sft", objective=args.objective, base=args.base, examples=len(data.examples), data=args.data or data.sources,
        lora=args.lora, load_in_4bit=args.load_in_4bit,
        skipped_too_long=data.skipped_too_long, lam=args.lam, s_max=args.s_max, collapse=args.collapse,
        emission=args.emission, weighting=args.weighting, slack_placement=args.slack_placement))
