"""A transformers `Trainer` that computes LLaDA's masked-diffusion losses (and the CTC term).

The Trainer brings checkpointing, resume, logging, gradient accumulation and distributed training
(`accelerate launch`); this class only says how a batch becomes a loss, and reports CE and CTC
apart so a run shows what each term does.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from . import objectives as obj
from .objectives import Objective, objective_loss


COMPLETE = "checkpoint_complete"
WALL_TIME = "wall_time.json"


def wall_time_of(checkpoint: Path | None) -> float:
    """Training wall time recorded in a checkpoint (0 when none was)."""
    path = Path(checkpoint) / WALL_TIME if checkpoint else None
    return float(json.loads(path.read_text())["wall_time_s"]) if path and path.is_file() else 0.0


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest checkpoint-N whose save finished; interrupted ones are moved aside, not deleted."""
    out = Path(output_dir)
    if not out.is_dir():
        return None
    found = sorted((p for p in out.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]))
    for p in reversed(found):
        if (p / COMPLETE).is_file():
            return p
        aside = out / f"incomplete-{p.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        shutil.move(str(p), str(aside))
        print(f"ignoring interrupted checkpoint {p.name} (moved to {aside.name})")
    return None


class DiffusionTrainer(Trainer):
    def __init__(self, *args, objective: Objective, eval_collator=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_collator = eval_collator  # held-out batches: no slack, no random cut
        self.objective = objective
        self._parts: dict[str, list[float]] = {}
        self._tokens, self._clock = 0, time.perf_counter()
        self._eval_gen = torch.Generator()
        self._micro = (-1, 0)  # (global step, micro-batch index within it)
        self.add_callback(MetricsFile(Path(self.args.output_dir) / "metrics.jsonl"))
        self.add_callback(FiniteGradients())

    def _get_train_sampler(self, *args, **kwargs):
        # A generated stream (data.GeneratedSFT) is read in order: its items are already random, and
        # a curriculum's list lengths must follow the training step.
        if getattr(self.train_dataset, "sequential", False):
            return torch.utils.data.SequentialSampler(self.train_dataset)
        return super()._get_train_sampler(*args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        o = self.objective
        ids = inputs["input_ids"]
        pos = torch.arange(ids.shape[1], device=ids.device)[None, :]
        maskable = pos >= inputs["prompt_lengths"][:, None] if o.stage == "sft" else None
        # Training noise comes from a generator keyed by (seed, step, micro-batch): CE and CTC runs
        # draw the same t per sequence at the same step whatever their canvas lengths, and a resumed
        # run draws what the uninterrupted one did. Held-out batches use a generator reset at every
        # evaluation, so evaluations are comparable.
        gen = self._train_noise() if model.training else self._eval_gen
        noised = obj.forward_mask(ids, mask_id=o.mask_id, eps=o.eps, maskable=maskable, generator=gen)
        if model.training:
            self._tokens += ids.numel()
        logits = model(input_ids=noised.noisy).logits
        loss, parts = objective_loss(o, obj.log_softmax32(logits), ids, noised, inputs)
        for name, value in parts.items():
            self._note(name, value)
        ce = parts["ce"]
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite loss at step {self.state.global_step} (ce={ce.item()}); the last good checkpoint "
                f"in {self.args.output_dir} is intact: lower the learning rate and resume from it")
        return (loss, {"logits": logits}) if return_outputs else loss

    def _train_noise(self) -> torch.Generator:
        step, micro = self._micro
        self._micro = (self.state.global_step, micro + 1 if step == self.state.global_step else 0)
        return torch.Generator().manual_seed(hash((self.args.seed, *self._micro)) & (2**63 - 1))

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Held-out loss = the training objective on held-out data (there are no labels to predict)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def evaluate(self, *args, **kwargs):
        """Held-out loss = CE on the original responses for every objective (the CTC term needs
        slack-augmented batches), so CE and CTC runs are compared, and their best picked, alike."""
        self._eval_gen.manual_seed(self.args.seed)
        self._parts = {}
        train_collator = self.data_collator
        self.data_collator = self.eval_collator or train_collator
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self.data_collator = train_collator

    wall_time_before = 0.0  # seconds spent in earlier runs of this training (set when resuming)
    _started = None

    def wall_time(self) -> float:
        return self.wall_time_before + (time.time() - self._started if self._started else 0.0)

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        # Written last, after model, optimizer, RNG and trainer state: a checkpoint without it was
        # interrupted mid-save and is never resumed from (see last_complete_checkpoint).
        folder = Path(self.args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        if self.args.should_save and folder.is_dir():
            # Wall time so far, across resumes, so a resumed run reports the time it really took.
            (folder / WALL_TIME).write_text(json.dumps({"wall_time_s": round(self.wall_time(), 1)}))
            with open(folder / COMPLETE, "w") as f:
                f.write(str(self.state.global_step))
                f.flush()
                os.fsync(f.fileno())

    def _note(self, name: str, value: torch.Tensor):
        self._parts.setdefault(name, []).append(float(value.detach()))

    def log(self, logs: dict, *args, **kwargs):
        prefix = "eval_" if any(k.startswith("eval_") for k in logs) else ""
        for name, values in self._parts.items():
            if values:
                agg = sum(values) if name == "ctc_infeasible" else sum(values) / len(values)
                logs[prefix + name] = round(agg, 4)
        self._parts = {}
        if "loss" in logs:  # a training log: throughput since the last one
            now = time.perf_counter()
            logs["tokens_per_s"] = round(self._tokens / max(now - self._clock, 1e-9), 1)
            self._tokens, self._clock = 0, now
        super().log(logs, *args, **kwargs)


class FiniteGradients(TrainerCallback):
    """A finite loss can still give NaN/inf gradients: stop before the optimiser writes them into
    the weights (and a later checkpoint saves them)."""

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if grads and not torch.isfinite(torch.stack(torch._foreach_norm(grads))).all():
            raise FloatingPointError(
                f"non-finite gradients at step {state.global_step}; the last good checkpoint in {args.output_dir} "
                "is intact: lower the learning rate and resume from it")


class StopAfter(TrainerCallback):
    """End the run after `step` optimiser steps while the schedule still spans --steps: a
    time-boxed prefix of a longer run, which `--resume` can continue later."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True
            control.should_save = True


class MetricsFile(TrainerCallback):
    """Appends every log (train and eval) as one JSON line: step, loss, ce, ctc, tokens/s..."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": state.global_step, **logs}) + "\n")
