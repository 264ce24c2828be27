"""`python -m train eval`: held-out loss and task accuracy of a checkpoint.

Held-out loss is LLaDA's SFT cross-entropy on the original responses, with masks drawn from a
fixed seed, so CE and CTC checkpoints are compared on the same footing. Task accuracy decodes each
held-out prompt that has an exact answer with `mdlm_viz.generate` (the sampler the app uses) and
counts exact matches per task family.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch

import mdlm_viz as mv
from mdlm_viz.chat import decode_chats
from mdlm_viz.stats import paired_difference

from . import objectives as obj
from .config import StageConfig
from .data import SFTCollator, load_sft, read_records, split_chat


# Held-out CE pads each batch with EOS to its longest row and the padding counts as response (LLaDA's
# SFT), so the number depends on how rows are batched: it always uses this batch size (the training
# one), whatever --batch-size the decoding uses.
HELDOUT_BATCH = 32


@dataclass
class EvalConfig(StageConfig):
    checkpoint: str = ""  # directory or hub id (required on the command line)
    data: list[str] = field(default_factory=list)  # held-out SFT JSONL (required on the command line)
    limit: int = 200  # at most this many prompts are decoded
    steps: int | None = None  # sampler settings; None: the checkpoint's
    gen_length: int | None = None
    block_length: int | None = None
    slack_bias: float | None = None
    eos_last: bool = False
    batch_size: int = 16  # prompts decoded together
    seed: int = 0
    max_length: int = 256
    against: str | None = None  # a second checkpoint, compared on the same prompts
    out: str | None = None  # the results as JSON


def add_arguments(p: argparse.ArgumentParser) -> None:
    EvalConfig.set_cli_defaults(p)
    p.add_argument("--checkpoint", required=True, help="checkpoint directory or hub id")
    p.add_argument("--data", required=True, nargs="+", help="held-out SFT JSONL (records with 'answer' are scored)")
    p.add_argument("--limit", type=int, help="at most this many prompts are decoded")
    p.add_argument("--steps", type=int, help="sampler steps (default: the checkpoint's)")
    p.add_argument("--gen-length", type=int)
    p.add_argument("--block-length", type=int)
    p.add_argument("--slack-bias", type=float,
                   help="lower <slack>'s logit by this much when decoding (default: the checkpoint's, else 0)")
    p.add_argument("--eos-last", action="store_true",
                   help="commit EOS predictions last (the sampler's confidence_eos_eot_inf), for both checkpoints")
    p.add_argument("--batch-size", type=int,
                   help="prompts decoded together (the held-out CE always uses batches of %d)" % HELDOUT_BATCH)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-length", type=int)
    p.add_argument("--against", metavar="CHECKPOINT",
                   help="also decode the same prompts with this checkpoint and report the paired accuracy "
                        "difference (checkpoint - against) with a bootstrap CI")
    p.add_argument("--out", help="write the results as JSON here")


@torch.no_grad()
def heldout_loss(model, tokenizer, facts, paths, max_length: int, batch_size: int = HELDOUT_BATCH,
                 seed: int = 0) -> float:
    data = load_sft(paths, tokenizer, max_length)
    collate = SFTCollator(tokenizer.eos_token_id)
    gen = torch.Generator().manual_seed(seed)
    total, n = 0.0, 0
    for i in range(0, len(data.examples), batch_size):
        batch = collate(data.examples[i:i + batch_size])
        ids = batch["input_ids"]
        maskable = torch.arange(ids.shape[1])[None, :] >= batch["prompt_lengths"][:, None]
        noised = obj.forward_mask(ids, mask_id=facts.mask_id, maskable=maskable, generator=gen)
        device = next(model.parameters()).device
        log_probs = obj.log_softmax32(model(input_ids=noised.noisy.to(device)).logits).cpu()
        loss = obj.sft_loss(log_probs, ids, noised.masked, noised.p_mask, batch["answer_lengths"])
        total += float(loss) * len(ids)
        n += len(ids)
    return total / n


def decode_batch(model, tokenizer, facts, messages_list, **sampler) -> list[str]:
    """Chat prompts decoded together, as stripped answers."""
    return [t.strip() for t in decode_chats(model, tokenizer, facts, messages_list, sampler).texts(tokenizer)]


def task_accuracy(model, tokenizer, facts, paths, limit: int, batch_size: int, **sampler) -> dict:
    """Exact-match accuracy per family, with each prompt's output and the <slack> tokens it committed
    (stripped before matching; 0 for a model without <slack>)."""
    records = [r for p in paths for r in read_records(p) if r.get("answer") not in (None, "")][:limit]
    right, count = defaultdict(int), defaultdict(int)
    samples, correct, outputs, slack = [], [], [], []
    for i in range(0, len(records), batch_size):
        chunk = records[i:i + batch_size]
        out = decode_chats(model, tokenizer, facts, [split_chat(r)[0] for r in chunk], sampler)
        for j, (rec, text) in enumerate(zip(chunk, out.texts(tokenizer))):
            text = text.strip()
            family = rec.get("family", "all")
            count[family] += 1
            ok = text == str(rec["answer"]).strip()
            right[family] += ok
            correct.append(float(ok))
            outputs.append(text)
            raw = out.response_ids(j, strip_slack=False)
            slack.append(raw.count(facts.slack_id) if facts.slack_id is not None else 0)
            if len(samples) < 8:
                samples.append({"prompt": split_chat(rec)[0][-1]["content"], "answer": rec["answer"], "output": text})
    per_family = {f: round(right[f] / count[f], 4) for f in sorted(count)}
    overall = sum(right.values()) / max(1, sum(count.values()))
    return {"accuracy": round(overall, 4), "per_family": per_family, "n": sum(count.values()), "samples": samples,
            "correct": correct, "outputs": outputs, "slack": slack}


def slack_breakdown(correct: list[float], slack: list[int], reference: list[float] | None = None) -> dict:
    """Accuracy on the prompts whose answer kept some <slack> and on the rest; with `reference`
    (another model's per-prompt correctness on the same prompts), its accuracy on the same two groups."""
    groups = {"with_slack": [i for i, k in enumerate(slack) if k],
              "without_slack": [i for i, k in enumerate(slack) if not k]}
    out = {}
    for name, rows in groups.items():
        out[name] = {"n": len(rows), "accuracy": round(sum(correct[i] for i in rows) / len(rows), 4) if rows else None}
        if reference is not None:
            out[name]["reference_accuracy"] = round(sum(reference[i] for i in rows) / len(rows), 4) if rows else None
    return out


def run(cfg: EvalConfig) -> int:
    from mdlm_viz.inference import for_inference  # a traced forward on a CPU: bit-identical, faster

    model, tokenizer, facts = mv.load_checkpoint(cfg.checkpoint)
    model = for_inference(model)
    defaults = {"steps": 64, "gen_length": 64, "block_length": 32, **facts.defaults}  # the checkpoint's win
    sampler = {k: v for k, v in dict(steps=cfg.steps, gen_length=cfg.gen_length,
                                      block_length=cfg.block_length, slack_bias=cfg.slack_bias).items()
               if v is not None}
    if cfg.eos_last:
        sampler["confidence_eos_eot_inf"] = True
    sampler = {**defaults, **sampler}
    torch.manual_seed(cfg.seed)
    results = {
        "checkpoint": str(cfg.checkpoint), "objective": facts.objective, "sampler": sampler,
        "heldout_ce": round(heldout_loss(model, tokenizer, facts, cfg.data, cfg.max_length, seed=cfg.seed), 4),
        **task_accuracy(model, tokenizer, facts, cfg.data, cfg.limit, cfg.batch_size, **sampler),
    }
    if cfg.against:
        other, other_tok, other_facts = mv.load_checkpoint(cfg.against)
        other = for_inference(other)
        torch.manual_seed(cfg.seed)
        theirs_sampler = {k: v for k, v in sampler.items()  # a slack bias only applies to a model with <slack>
                          if not (k == "slack_bias" and other_facts.slack_id is None)}
        theirs = task_accuracy(other, other_tok, other_facts, cfg.data, cfg.limit, cfg.batch_size, **theirs_sampler)
        results["against"] = {"checkpoint": str(cfg.against), "accuracy": theirs["accuracy"],
                              "per_family": theirs["per_family"],
                              "difference": paired_difference(results["correct"], theirs["correct"]),
                              "outputs": theirs["outputs"]}
    if facts.slack_id is not None:
        results["slack_breakdown"] = slack_breakdown(results["correct"], results["slack"],
                                                     theirs["correct"] if cfg.against else None)
    results["correct"] = "".join(str(int(c)) for c in results["correct"])  # one digit per prompt, file order
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    # the per-prompt lists go to --out only
    shown = {k: v for k, v in results.items() if k not in ("outputs", "slack")}
    if "against" in shown:
        shown["against"] = {k: v for k, v in shown["against"].items() if k != "outputs"}
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    return 0
