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
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import TrainingArguments

from mdlm_viz import LLaDAConfig, LLaDAModelLM, load_checkpoint
from mdlm_viz.checkpoint import GENERATION_FILE
from mdlm_viz.ctc import COLLAPSE_MAPS, DEFAULT_COLLAPSE

from .cards import training_card
from .config import StageConfig
from .data import DataError, PretrainCollator, SFTCollator, SFTData, load_pretrain_chunks, load_sft, slack_length
from .objectives import EMISSIONS, PLACEMENTS, WEIGHTINGS, Objective
from .tokenizer import SLACK, config_token_ids
from .trainer import DiffusionTrainer, StopAfter, last_complete_checkpoint, wall_time_of

OBJECTIVES = ("ce", "ctc")  # CE only, or CE + lambda * CTC with <slack>


# ------------------------------------------------------------------------------------ configs
# Each command is a function of its config, pretrain(PretrainConfig(...)) and sft(SFTConfig(...));
# the command-line flags are the fields, with the defaults written here.
@dataclass
class TrainingConfig(StageConfig):
    """What both training stages take: where to write, how long, the optimiser, checkpoints."""

    out: str = ""  # output directory: checkpoints, the final model, metrics (required on the command line)
    steps: int = 1000  # optimiser steps (the length of the LR schedule)
    stop_after: int | None = None  # stop after N steps with the schedule still spanning `steps`
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 1e-3
    warmup: int = 50  # linear warm-up steps
    seed: int = 0
    log_every: int = 10
    save_every: int = 200
    bf16: bool = False  # bfloat16 mixed precision (GPU)
    grad_ckpt: bool = False  # gradient checkpointing
    resume: bool = False  # from the last complete checkpoint in `out`
    heldout: list[str] = field(default_factory=list)  # held-out JSONL, evaluated every `save_every` steps


@dataclass
class PretrainConfig(TrainingConfig):
    tokenizer: str = ""  # tokenizer directory (required on the command line)
    data: list[str] = field(default_factory=list)  # pre-training JSONL files (required on the command line)
    seq_len: int = 128
    d_model: int = 256
    layers: int = 4
    heads: int = 4
    mlp: int = 688  # MLP hidden size
    tie_embeddings: bool = False
    rope_theta: float = 10000.0  # RoPE base; LLaDA-8B uses 500000
    objective: str = "ce"  # "ctc": the slack/CTC term in pre-training too
    lam: float = 0.1
    s_max: float = 0.5
    collapse: str = DEFAULT_COLLAPSE
    emission: str = "forced"


@dataclass
class SFTConfig(TrainingConfig):
    base: str = ""  # checkpoint to fine-tune: a directory or hub id (required on the command line)
    data: list[str] = field(default_factory=list)  # SFT JSONL files or hf:owner/name[:split]
    generate: list[str] | None = None  # generated task families instead of `data` ([] = all); repeats weight
    generate_seed: int = 0
    curriculum: float = 0.0  # --generate: fraction of training over which list lengths grow from short to full
    answer_length: int = 0  # EOS-pad every answer region to at least this many tokens (the decode's gen_length)
    focus: list[str] = field(default_factory=list)  # --generate: families drawn alone first...
    focus_fraction: float = 0.0  # ...for this fraction of training
    objective: str = "ce"  # "ce", or "ctc": CE + lam * CTC with <slack>
    lam: float = 0.1
    s_max: float = 0.5
    slack_placement: str = "uniform"
    slack_share: float = 1.0  # the share of responses given <slack>; the rest train as they are (clean)
    collapse: str = DEFAULT_COLLAPSE
    emission: str = "forced"
    weighting: str = "elbo"  # SFT CE: LLaDA's 1 / p_mask, or "flat"
    pad_weight: float = 1.0  # flat weighting: weight of the EOS padding after each answer's own EOS
    max_length: int = 256  # longer examples are skipped and counted
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    load_in_4bit: bool = False


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of TrainingConfig (defaults: the config's)."""
    p.add_argument("--out", required=True, help="output directory: checkpoints, the final model, metrics")
    p.add_argument("--steps", type=int, help="optimiser steps (the length of the LR schedule)")
    p.add_argument("--stop-after", type=int, metavar="N",
                   help="stop after N steps with the schedule still spanning --steps (resume later to go on)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--grad-accum", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--warmup", type=int, help="linear warm-up steps")
    p.add_argument("--seed", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--save-every", type=int)
    p.add_argument("--bf16", action="store_true", help="bfloat16 mixed precision (GPU)")
    p.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing (saves memory)")
    p.add_argument("--resume", action="store_true", help="resume from the last complete checkpoint in --out")
    p.add_argument("--heldout", nargs="*", help="held-out JSONL files: evaluated every --save-every "
                   "steps; the best checkpoint by held-out loss is saved as OUT/best")


def check_common(cfg: TrainingConfig) -> None:
    """Refuse settings the Trainer would take and then fail on (or silently misuse)."""
    if cfg.steps < (0 if isinstance(cfg, PretrainConfig) else 1):
        raise ValueError(f"--steps must be at least {0 if isinstance(cfg, PretrainConfig) else 1}, got {cfg.steps}")
    for name in ("batch_size", "grad_accum", "log_every", "save_every"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ValueError(f"--lr must be a positive number, got {cfg.lr}")
    if cfg.warmup < 0:
        raise ValueError(f"--warmup must be 0 or more, got {cfg.warmup}")
    if cfg.resume and last_complete_checkpoint(cfg.out) is None:
        raise ValueError(f"--resume: no complete checkpoint in {cfg.out} to resume from; drop --resume to start "
                         "a new run there")


def training_arguments(cfg: TrainingConfig, has_eval: bool = False) -> TrainingArguments:
    evaluation = dict(eval_strategy="steps", eval_steps=cfg.save_every, metric_for_best_model="eval_loss",
                      greater_is_better=False, per_device_eval_batch_size=cfg.batch_size) if has_eval else {}
    return TrainingArguments(
        output_dir=cfg.out, max_steps=cfg.steps, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr, warmup_steps=cfg.warmup,
        lr_scheduler_type="cosine", weight_decay=0.0, logging_steps=cfg.log_every, save_strategy="steps",
        save_steps=cfg.save_every, save_total_limit=2, seed=cfg.seed, data_seed=cfg.seed, bf16=cfg.bf16,
        activation_checkpointing=cfg.grad_ckpt, report_to="none", dataloader_num_workers=0,
        remove_unused_columns=False, use_cpu=not torch.cuda.is_available(), **evaluation,
    )


def _train(trainer, cfg: TrainingConfig, model, tokenizer, meta: dict) -> int:
    trainer._started = time.time()
    resume = None
    stop = cfg.stop_after
    if stop is not None and not 0 < stop <= cfg.steps:
        raise ValueError(f"--stop-after {stop} must be in 1..--steps ({cfg.steps})")
    if stop is not None:
        trainer.add_callback(StopAfter(stop))
    if cfg.resume:
        resume = last_complete_checkpoint(cfg.out)
        print(f"resuming from {resume}")
        _truncate_metrics(Path(cfg.out) / "metrics.jsonl", int(resume.name.split("-")[-1]) if resume else 0)
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
                # "command" as the command line's namespace had it, so old and new training.json read alike
                hyperparameters={"command": meta["stage"], **asdict(cfg)},
                last_logs=[h for h in state.log_history if "loss" in h][-1:],
                eval_logs=[h for h in state.log_history if "eval_loss" in h])
    last = Path(cfg.out) / "last"
    trainer.save_model(str(last))
    _finish(last, tokenizer, dict(meta, checkpoint="last"), model)
    if state.best_model_checkpoint and Path(state.best_model_checkpoint).is_dir():
        best = Path(cfg.out) / "best"
        shutil.rmtree(best, ignore_errors=True)
        shutil.copytree(state.best_model_checkpoint, best,
                        ignore=shutil.ignore_patterns("optimizer.pt", "scheduler.pt", "rng_state*", "trainer_state.json",
                                                      "training_args.bin", "checkpoint_complete"))
        _finish(best, tokenizer, dict(meta, checkpoint="best", best_step=int(state.best_model_checkpoint.split("-")[-1]),
                                      best_eval_loss=state.best_metric), model)
    print(f"saved {last}" + (f" and {Path(cfg.out) / 'best'}" if (Path(cfg.out) / "best").is_dir() else ""))
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
    (directory / "README.md").write_text(training_card(meta))
    inherited = Path(str(meta.get("base") or "")) / GENERATION_FILE
    if meta.get("base") and inherited.is_file():
        # a fine-tune decodes with its base's sampler defaults unless told otherwise (eval, app, sweep)
        shutil.copyfile(inherited, directory / GENERATION_FILE)


# ------------------------------------------------------------------------------------ pretrain
def add_pretrain_arguments(p: argparse.ArgumentParser) -> None:
    """`python -m train pretrain`'s flags: PretrainConfig's fields (defaults: the config's)."""
    PretrainConfig.set_cli_defaults(p)
    p.add_argument("--tokenizer", required=True, help="tokenizer directory (python -m train tokenizer)")
    p.add_argument("--data", required=True, nargs="+", help="pre-training JSONL files ({'text': ...})")
    p.add_argument("--seq-len", type=int)
    p.add_argument("--d-model", type=int)
    p.add_argument("--layers", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--mlp", type=int, help="MLP hidden size")
    p.add_argument("--rope-theta", type=float,
                   help="RoPE base (LLaDA-8B: 500000; a small model learns to copy by position about twice as fast "
                        "with it as with 10000, docs/results.md)")
    p.add_argument("--tie-embeddings", action="store_true",
                   help="share the input embedding and the output head (fewer parameters; copying a prompt token "
                        "then needs no separate output row to be learned)")
    p.add_argument("--objective", choices=OBJECTIVES,
                   help="ctc: also apply the slack/CTC term during pre-training (same code as SFT)")
    p.add_argument("--lam", type=float, help="weight of the CTC term")
    p.add_argument("--s-max", type=float, help="slack ratio drawn from U(0, s_max)")
    p.add_argument("--collapse", choices=COLLAPSE_MAPS)
    p.add_argument("--emission", choices=EMISSIONS)
    add_common_arguments(p)


def pretrain(cfg: PretrainConfig) -> int:
    """Masked-diffusion pre-training of a new model; writes cfg.out/last (and best, with held-out data)."""
    from transformers import AutoTokenizer

    check_common(cfg)
    if not Path(cfg.tokenizer).is_dir():
        raise FileNotFoundError(f"--tokenizer {cfg.tokenizer}: no such directory; make one with `python -m train tokenizer`")
    tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer)
    torch.manual_seed(cfg.seed)
    ids = config_token_ids(tokenizer)
    ids.pop("slack_token_id", None)  # set only by CTC training: it tells the sampler to decode slack
    config = LLaDAConfig.small(vocab_size=len(tokenizer), d_model=cfg.d_model, n_layers=cfg.layers,
                               n_heads=cfg.heads, n_kv_heads=cfg.heads, mlp_hidden_size=cfg.mlp,
                               max_sequence_length=max(512, cfg.seq_len), weight_tying=cfg.tie_embeddings,
                               rope_theta=cfg.rope_theta, **ids)
    slack_id = None
    if cfg.objective == "ctc":
        if SLACK not in tokenizer.get_vocab():
            raise DataError(f"--objective ctc needs a {SLACK} token in the tokenizer ({cfg.tokenizer}); "
                             "train one with `python -m train tokenizer`")
        slack_id = tokenizer.convert_tokens_to_ids(SLACK)
        config.update(dict(slack_token_id=slack_id, ctc_collapse=cfg.collapse))
        # worst case: every gap of a chunk of repeats gets a slack (standard), plus s_max * seq_len
        longest = slack_length(cfg.seq_len, cfg.s_max, cfg.seq_len - 1 if cfg.collapse == "standard" else 0)
        config.max_sequence_length = max(config.max_sequence_length, longest)
    config.training_objective = "pretrain" if cfg.objective == "ce" else "pretrain-ctc"
    model = LLaDAModelLM(config)
    params = sum(p.numel() for p in model.parameters())
    if cfg.steps == 0:  # the initialised model alone: what an SFT from scratch starts from
        last = Path(cfg.out) / "last"
        tmp = last.with_name("last.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        _finish(tmp, tokenizer, dict(stage="pretrain", objective=cfg.objective, steps=0, wall_time_s=0.0, params=params,
                                     data=[], checkpoint="last", note="initialisation only, no training",
                                     hyperparameters={"command": "pretrain", **asdict(cfg)}), model)
        shutil.rmtree(last, ignore_errors=True)
        tmp.rename(last)
        print(f"saved the initialised model ({params:,} parameters) to {last}")
        return 0
    chunks = load_pretrain_chunks(cfg.data, tokenizer, cfg.seq_len)
    heldout = None
    if cfg.heldout:
        try:
            heldout = load_pretrain_chunks(cfg.heldout, tokenizer, cfg.seq_len)
        except DataError as err:
            print(f"warning: no held-out evaluation: {err}")
    objective = Objective("pretrain", mask_id=config.mask_token_id, kind=cfg.objective, slack_id=slack_id,
                          lam=cfg.lam, collapse=cfg.collapse, emission=cfg.emission)
    collator = PretrainCollator(seed=cfg.seed, eos_id=tokenizer.eos_token_id, slack_id=slack_id,
                                s_max=cfg.s_max, collapse=cfg.collapse)
    trainer = DiffusionTrainer(model=model, args=training_arguments(cfg, heldout is not None), train_dataset=chunks,
                               eval_dataset=heldout, data_collator=collator, processing_class=tokenizer,
                               eval_collator=PretrainCollator(short_fraction=0.0), objective=objective)
    return _train(trainer, cfg, model, tokenizer, dict(
        stage="pretrain", objective=cfg.objective, chunks=len(chunks), seq_len=cfg.seq_len,
        params=params, data=cfg.data))


# ------------------------------------------------------------------------------------ sft
def add_sft_arguments(p: argparse.ArgumentParser) -> None:
    """`python -m train sft`'s flags: SFTConfig's fields (defaults: the config's)."""
    SFTConfig.set_cli_defaults(p)
    p.add_argument("--base", required=True, help="checkpoint to fine-tune: a directory or hub id")
    p.add_argument("--data", nargs="+", help="SFT JSONL files (chat 'messages' or prompt/response), or "
                   "hf:owner/name[:split] for a Hugging Face dataset in chat format")
    p.add_argument("--generate", nargs="*", metavar="FAMILY",
                   help="train on freshly generated tasks instead of --data (all families when none are named; "
                        "repeat a family to give it more turns; a new example for every sequence, held-out keys "
                        "never drawn)")
    p.add_argument("--generate-seed", type=int, help="seed of the --generate stream")
    p.add_argument("--answer-length", type=int, metavar="N",
                   help="EOS-pad every answer to at least N tokens, as the sampler's canvas of gen_length N is "
                        "(default 0: pad to the longest in the batch, as LLaDA does)")
    p.add_argument("--focus", nargs="+", metavar="FAMILY",
                   help="with --generate: train on these families alone for the first --focus-fraction of training")
    p.add_argument("--focus-fraction", type=float, metavar="FRACTION")
    p.add_argument("--curriculum", type=float, metavar="FRACTION",
                   help="with --generate: list lengths (copy, reverse, sort, count) grow from the shortest to the "
                        "full range over this fraction of training (0 = full range from the start)")
    p.add_argument("--objective", choices=OBJECTIVES)
    p.add_argument("--lam", type=float, help="weight of the CTC term")
    p.add_argument("--s-max", type=float, help="slack ratio drawn from U(0, s_max)")
    p.add_argument("--slack-placement", choices=PLACEMENTS,
                   help="where the slack goes: each at a random gap (uniform) or all in one random gap")
    p.add_argument("--slack-share", type=float, metavar="FRACTION",
                   help="the share of responses given <slack> (1 = all, the paper's); the rest train clean")
    p.add_argument("--collapse", choices=COLLAPSE_MAPS)
    p.add_argument("--emission", choices=EMISSIONS)
    p.add_argument("--weighting", choices=WEIGHTINGS,
                   help="CE weighting: elbo = LLaDA's 1 / p_mask (the paper's); flat = mean over masked "
                        "tokens, lower variance, learns copy-like tasks faster (the embedded base uses it)")
    p.add_argument("--pad-weight", type=float, help="with --weighting flat: weight in the loss of the EOS padding "
                   "after each answer's own EOS (1: like any token; lower: the answer's tokens count more)")
    p.add_argument("--max-length", type=int, help="longer examples are skipped and counted")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters (peft) instead of all weights; the "
                   "<slack> embedding and output rows train too")
    p.add_argument("--lora-r", type=int)
    p.add_argument("--lora-alpha", type=int)
    p.add_argument("--lora-dropout", type=float)
    p.add_argument("--load-in-4bit", action="store_true", help="QLoRA: 4-bit base weights (CUDA + bitsandbytes)")
    add_common_arguments(p)


# LLaDA's module names inside the blocks (Llama names such as o_proj or gate_proj would silently match
# nothing). A regex, because the blocks' ff_out (MLP down projection) shares its name with the LM head.
LORA_TARGETS = r".*\.blocks\.\d+\.(q_proj|k_proj|v_proj|attn_out|ff_proj|up_proj|ff_out)"


def wrap_lora(model, cfg: SFTConfig, slack_id: int | None):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.grad_ckpt)
    extra = {}
    if slack_id is not None:  # the new token's rows must learn, in the embedding and the untied head
        heads = ["wte"] + ([] if model.config.weight_tying else ["transformer.ff_out"])
        extra["trainable_token_indices"] = {name: [slack_id] for name in heads}
    config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=LORA_TARGETS, **extra)
    return get_peft_model(model, config)


def sft(cfg: SFTConfig) -> int:
    """Fine-tune cfg.base with CE or CE + lambda * CTC; writes cfg.out/last (and best, with held-out data)."""
    check_common(cfg)
    if cfg.load_in_4bit and not cfg.lora:
        raise ValueError("--load-in-4bit trains LoRA adapters on a frozen 4-bit base: add --lora")
    if not 0.0 <= cfg.slack_share <= 1.0:  # before the model loads
        raise ValueError(f"--slack-share must be between 0 and 1, got {cfg.slack_share}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # Full fine-tuning keeps float32 master weights (--bf16 autocasts); a frozen LoRA base is bf16.
    dtype = torch.bfloat16 if cfg.bf16 and cfg.lora else torch.float32
    model, tokenizer, facts = load_checkpoint(cfg.base, device=device, dtype=dtype, load_in_4bit=cfg.load_in_4bit)
    model.train()
    slack_id = None
    if cfg.objective == "ctc":
        if SLACK not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"additional_special_tokens": [SLACK]})
        slack_id = tokenizer.convert_tokens_to_ids(SLACK)
        if slack_id >= model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))
        model.config.ctc_collapse = cfg.collapse
    model.config.slack_token_id = slack_id
    model.config.training_objective = cfg.objective
    if cfg.lora:
        model = wrap_lora(model, cfg, slack_id)
    # Slack makes responses longer: budget for it so no augmented example exceeds --max-length.
    slack = dict(s_max=cfg.s_max, collapse=cfg.collapse) if cfg.objective == "ctc" else {}
    if cfg.generate is not None:
        from .data import GeneratedSFT
        length = cfg.steps * cfg.batch_size * cfg.grad_accum
        data = SFTData(GeneratedSFT(tokenizer, length, cfg.generate or None, seed=cfg.generate_seed,
                                    curriculum=cfg.curriculum, focus=cfg.focus, focus_fraction=cfg.focus_fraction),
                       sources=[f"generated:{','.join(cfg.generate) or 'all'}"])
    elif not cfg.data:
        raise DataError("sft needs --data FILE ... or --generate [FAMILY ...]")
    else:
        data = load_sft(cfg.data, tokenizer, cfg.max_length, **slack)
    heldout = load_sft(cfg.heldout, tokenizer, cfg.max_length).examples if cfg.heldout else None
    if data.skipped_too_long:
        print(f"skipped {data.skipped_too_long} examples longer than --max-length {cfg.max_length}")
    objective = Objective("sft", mask_id=facts.mask_id, kind=cfg.objective, slack_id=slack_id, lam=cfg.lam,
                          collapse=cfg.collapse, emission=cfg.emission, weighting=cfg.weighting,
                          pad_weight=cfg.pad_weight)
    collator = SFTCollator(tokenizer.eos_token_id, slack_id, cfg.s_max, cfg.collapse, seed=cfg.seed,
                           slack_share=cfg.slack_share,
                           placement=cfg.slack_placement, answer_length=cfg.answer_length)
    torch.manual_seed(cfg.seed)
    trainer = DiffusionTrainer(model=model, args=training_arguments(cfg, heldout is not None),
                               train_dataset=data.examples, eval_dataset=heldout, data_collator=collator,
                               processing_class=tokenizer,  # every checkpoint-N loads on its own
                               eval_collator=SFTCollator(tokenizer.eos_token_id), objective=objective)
    return _train(trainer, cfg, model, tokenizer, dict(
        stage="sft", objective=cfg.objective, base=cfg.base, examples=len(data.examples), data=cfg.data or data.sources,
        lora=cfg.lora, load_in_4bit=cfg.load_in_4bit,
        skipped_too_long=data.skipped_too_long, lam=cfg.lam, s_max=cfg.s_max, collapse=cfg.collapse,
        emission=cfg.emission, weighting=cfg.weighting, pad_weight=cfg.pad_weight,
        slack_placement=cfg.slack_placement, slack_share=cfg.slack_share))
