"""Cost of recording a Trace: the same generation with and without it, side by side.

Target (issue #2): recording costs at most 5% over the bare generation on a small model, 128
generated tokens, 64 steps, CPU. Runs alternate (bare, traced, bare, traced...) so both see the
same machine state; the fastest run of each is compared (the minimum is the least disturbed by
other work on a shared machine), the medians are printed too. Exit code 1 on FAIL.

    python bench/bench_sampler.py [--reps 9]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mdlm_viz import LLaDAConfig, LLaDAModelLM, generate  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = LLaDAConfig.small(vocab_size=4096, d_model=256, n_layers=4, n_heads=8, n_kv_heads=8, mlp_hidden_size=688)
    model = LLaDAModelLM(cfg).eval()
    n_params = sum(p.numel() for p in model.parameters())
    prompt = torch.randint(10, 4000, (1, 32))
    kw = dict(steps=64, gen_length=128, block_length=32, temperature=0.0, remasking="low_confidence")

    def run(trace):
        t = time.perf_counter()
        generate(model, prompt, record_trace=trace, **kw)
        return time.perf_counter() - t

    run(False), run(True)  # warm-up
    bare, traced = [], []
    for _ in range(args.reps):
        bare.append(run(False))
        traced.append(run(True))
    b, t = min(bare), min(traced)
    ratio = t / b
    print(f"model: {n_params / 1e6:.1f}M parameters, vocab {cfg.vocab_size}; 128 tokens, 64 steps, "
          f"{args.threads} threads, {args.reps} interleaved runs each")
    print(f"generate without trace: min {b * 1000:.1f} ms, median {statistics.median(bare) * 1000:.1f} ms")
    print(f"generate with trace:    min {t * 1000:.1f} ms, median {statistics.median(traced) * 1000:.1f} ms")
    ok = ratio <= 1.05
    print(f"trace overhead ratio (min/min): {ratio:.3f} (target <= 1.05) {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
