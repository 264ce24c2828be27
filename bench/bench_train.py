"""Training costs, measured side by side in one run (issue #3 targets). Exit code 1 on any FAIL.

1. time of an SFT step with CE + 0.1 * CTC vs a CE-only step on the same slack-augmented batch,
   small model (target <= 1.15x): the cost of the CTC term. Slack insertion also lengthens the
   canvas (about 1.25x tokens at s_max=0.5); that cost is printed apart, against CE on the
   original responses;
2. peak memory of a CE + CTC step vs a CE-only step at LLaDA's vocabulary (V=126464, T=1024,
   2-layer random config), each in a fresh subprocess, peak RSS (target <= 1.10x);
3. tokens/s of `python -m train pretrain` (transformers' Trainer) vs a bare PyTorch loop over the
   same model, batches, optimiser and loss (target >= 0.90).

    python bench/bench_train.py
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mdlm_viz import LLaDAConfig, LLaDAModelLM  # noqa: E402
from train import objectives as obj  # noqa: E402
from train.data import SFTCollator, SFTExample  # noqa: E402
from train.objectives import Objective  # noqa: E402
from train.trainer import DiffusionTrainer  # noqa: E402

MASK, EOS, SLACK = 5, 1, 6


def sft_batch(vocab: int, batch: int, prompt: int, response: int, seed: int = 0) -> list[SFTExample]:
    rng = random.Random(seed)
    return [SFTExample([rng.randrange(10, vocab) for _ in range(prompt)],
                       [rng.randrange(10, vocab) for _ in range(response - 1)] + [EOS]) for _ in range(batch)]


def step_fn(model, kind: str, examples, tmp: str, augment: bool | None = None):
    """One optimiser step through the Trainer's own compute_loss, for the given objective
    (`augment`: slack-augment the responses; default: only for ctc)."""
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=tmp, report_to="none", use_cpu=True, remove_unused_columns=False)
    objective = Objective("sft", mask_id=MASK, kind=kind, slack_id=SLACK if kind == "ctc" else None)
    trainer = DiffusionTrainer(model=model, args=args, objective=objective)
    augment = kind == "ctc" if augment is None else augment
    collate = SFTCollator(EOS, SLACK if augment else None)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        batch = collate(examples)
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def bench_step_time() -> bool:
    torch.manual_seed(0)
    cfg = LLaDAConfig.small(vocab_size=4096, d_model=256, n_layers=4, n_heads=8, n_kv_heads=8, mlp_hidden_size=688,
                            mask_token_id=MASK, eos_token_id=EOS, pad_token_id=EOS)
    model = LLaDAModelLM(cfg).train()
    examples = sft_batch(4096, 16, 32, 96)
    with tempfile.TemporaryDirectory() as tmp:
        steps = {"ce": step_fn(model, "ce", examples, tmp, augment=True), "ctc": step_fn(model, "ctc", examples, tmp),
                 "ce_original": step_fn(model, "ce", examples, tmp, augment=False)}
        for f in steps.values():
            f()
        times = {k: [] for k in steps}
        for _ in range(7):
            for k, f in steps.items():
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
    ce, ctc, orig = min(times["ce"]), min(times["ctc"]), min(times["ce_original"])
    ok = ctc / ce <= 1.15
    print("[step time] 5.3M params, batch 16, prompt 32 + response 96 tokens, fastest of 7 interleaved")
    print(f"  CE step, augmented batch : {ce * 1000:7.1f} ms (median {statistics.median(times['ce']) * 1000:.1f})")
    print(f"  CE + CTC step, same batch: {ctc * 1000:7.1f} ms (median {statistics.median(times['ctc']) * 1000:.1f})")
    print(f"  ratio                    : {ctc / ce:.3f}  target <= 1.15  {'PASS' if ok else 'FAIL'}")
    print(f"  (info) CE on the original responses: {orig * 1000:.1f} ms; CE + CTC / that = {ctc / orig:.2f} "
          "(includes the longer slack-augmented canvas)")
    return ok


MEMORY_CHILD = """
import resource, sys, tempfile, torch
sys.path.insert(0, {root!r})
from bench.bench_train import step_fn, sft_batch, MASK, EOS
from mdlm_viz import LLaDAConfig, LLaDAModelLM
torch.manual_seed(0)
cfg = LLaDAConfig.small(vocab_size=126464, d_model=64, n_layers=2, n_heads=4, n_kv_heads=4, mlp_hidden_size=172,
                        max_sequence_length=2048, mask_token_id=MASK, eos_token_id=EOS, pad_token_id=EOS)
model = LLaDAModelLM(cfg).train()
examples = sft_batch(126464, 1, 64, {response})
with tempfile.TemporaryDirectory() as tmp:
    step = step_fn(model, {kind!r}, examples, tmp, augment=True)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bench_memory() -> bool:
    # both steps see the same slack-augmented canvas (64 prompt + 700 response tokens + slack)
    peaks = {}
    for kind, response in (("ce", 700), ("ctc", 700)):
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD.format(root=str(ROOT), kind=kind, response=response)],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        base, peak = map(int, out.stdout.split()[-2:])
        peaks[kind] = (base, peak)
    (b0, p0), (b1, p1) = peaks["ce"], peaks["ctc"]
    ratio = p1 / p0
    ok = ratio <= 1.10
    print("[memory] V=126464, the same slack-augmented canvas of ~1000 tokens, B=1, 2-layer random LLaDA, "
          "peak RSS of one optimiser step")
    print(f"  CE step       : peak {p0 / 1024:7.0f} MiB (before the step {b0 / 1024:.0f} MiB)")
    print(f"  CE + CTC step : peak {p1 / 1024:7.0f} MiB (before the step {b1 / 1024:.0f} MiB)")
    print(f"  ratio         : {ratio:.3f}  target <= 1.10  {'PASS' if ok else 'FAIL'}")
    return ok


def bench_trainer_overhead(rounds: int = 3) -> bool:
    """Best of `rounds` alternating runs of each (a shared 2-core machine is noisy)."""
    from transformers import AutoTokenizer

    from train.__main__ import main as train_main
    from train.data import PretrainCollator, load_pretrain_chunks

    steps, batch = 40, 16
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_main(["corpus", "--out", str(tmp / "c"), "--sources", "--tasks", "3000", "--offline"])
        train_main(["tokenizer", "--corpus", str(tmp / "c"), "--out", str(tmp / "tok"), "--vocab-size", "1000"])
        tok = AutoTokenizer.from_pretrained(tmp / "tok")
        chunks = load_pretrain_chunks([tmp / "c/pretrain.jsonl"], tok, 128)
        size = ["--seq-len", "128", "--d-model", "128", "--layers", "2", "--heads", "4", "--mlp", "344"]
        common = ["--steps", str(steps), "--batch-size", str(batch), "--log-every", "1000", "--save-every", "1000"]

        def trainer_run(i: int) -> float:
            out = tmp / f"run{i}"
            train_main(["pretrain", "--tokenizer", str(tmp / "tok"), "--data", str(tmp / "c/pretrain.jsonl"),
                        "--out", str(out), *size, *common])
            log = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
            return steps * batch * 128 / next(h["train_runtime"] for h in log if "train_runtime" in h)

        def bare_run() -> float:
            # same model, chunks, batch size, optimiser, loss, gradient clipping; no Trainer
            torch.manual_seed(0)
            cfg = LLaDAConfig.small(vocab_size=len(tok), d_model=128, n_layers=2, n_heads=4, n_kv_heads=4,
                                    mlp_hidden_size=344, mask_token_id=MASK, eos_token_id=EOS, pad_token_id=EOS)
            model = LLaDAModelLM(cfg).train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
            collate = PretrainCollator()
            order = list(range(len(chunks)))
            random.Random(0).shuffle(order)
            t = time.perf_counter()
            for s in range(steps):
                ids = collate([chunks[order[(s * batch + i) % len(order)]] for i in range(batch)])["input_ids"]
                noised = obj.forward_mask(ids, mask_id=MASK)
                loss = obj.pretrain_loss(obj.log_softmax32(model(input_ids=noised.noisy).logits), ids,
                                         noised.masked, noised.p_mask)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
            return steps * batch * 128 / (time.perf_counter() - t)

        trainer_tps, bare_tps = [], []
        for i in range(rounds):
            trainer_tps.append(trainer_run(i))
            bare_tps.append(bare_run())
    ratio = max(trainer_tps) / max(bare_tps)
    ok = ratio >= 0.90
    print(f"[trainer] pretrain, 2 layers d=128, batch {batch} x 128 tokens, {steps} steps, best of {rounds} "
          "alternating runs each")
    print(f"  python -m train pretrain : {max(trainer_tps):8.0f} tokens/s  (runs: "
          f"{', '.join(f'{x:.0f}' for x in trainer_tps)}; Trainer's train_runtime)")
    print(f"  bare PyTorch loop        : {max(bare_tps):8.0f} tokens/s  (runs: {', '.join(f'{x:.0f}' for x in bare_tps)})")
    print(f"  ratio                    : {ratio:.3f}  target >= 0.90  {'PASS' if ok else 'FAIL'}")
    return ok


if __name__ == "__main__":
    torch.set_num_threads(2)
    results = [bench_step_time(), bench_memory(), bench_trainer_overhead()]
    print("overall:", "PASS" if all(results) else "FAIL")
    sys.exit(0 if all(results) else 1)
