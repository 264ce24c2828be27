"""The app's traced forward (mdlm_viz/inference.py) against the eager model, side by side in one run.

For each of --models (default: the embedded ce and ctc), a 1-row forward pass over a canvas of
--length tokens (about a prompt and the 24-token answer), in turns:
1. one thread: seconds per pass, eager and traced (target: traced at most 1.0x eager);
2. two threads at once, one model each (the app's per-model workers on 2 cores): wall seconds per
   pass against one thread's (target: at most 0.6x with the traced forward: the passes overlap).
3. printed, no target: a batch of --batch rows (a class, each visitor with a different prompt:
   the scheduler's batch) against one row, traced, one thread: what a class of different
   prompts can at best cost on a CPU.
Run it on a quiet machine (`uptime`). Exit code 1 on a FAIL.

    python bench/bench_inference.py [--models ce=assets/ce ctc=assets/ctc] [--length 50] [--passes 300] [--batch 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def per_pass(fns, passes: int) -> float:
    """Wall seconds per forward pass when every fn runs `passes` times, each in its own thread."""
    import torch

    def loop(fn):
        with torch.inference_mode():
            for _ in range(passes):
                fn()
    threads = [threading.Thread(target=loop, args=(fn,)) for fn in fns]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (time.perf_counter() - t0) / (passes * len(fns))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs=2, metavar="NAME=PATH", default=["ce=assets/ce", "ctc=assets/ctc"])
    ap.add_argument("--length", type=int, default=50, help="canvas tokens per pass (prompt + answer)")
    ap.add_argument("--passes", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds; medians are reported")
    ap.add_argument("--batch", type=int, default=30, help="rows of the batched pass compared with one row")
    args = ap.parse_args()

    import torch

    import mdlm_viz as mv
    from mdlm_viz.inference import TracedLM, for_inference

    torch.set_num_threads(1)
    eager = [mv.load_checkpoint(str(ROOT / spec.split("=", 1)[1]), device="cpu", dtype=torch.float32).model.eval()
             for spec in args.models]
    traced = [for_inference(m) for m in eager]
    if not all(isinstance(t, TracedLM) for t in traced):
        print("tracing did not apply to these models")
        return 1
    ids = torch.randint(10, eager[0].config.vocab_size, (1, args.length))
    with torch.inference_mode():
        same = all(torch.equal(t(ids).logits, m(ids).logits) for t, m in zip(traced, eager))
    rows = {k: [] for k in ("eager 1", "traced 1", "eager 2", "traced 2")}
    for _ in range(args.repeats):
        for kind, models in (("eager", eager), ("traced", traced)):
            calls = [lambda m=m: m(ids) for m in models]
            per_pass(calls, 20)  # warm-up
            rows[f"{kind} 1"].append(per_pass(calls[:1], args.passes))
            rows[f"{kind} 2"].append(per_pass(calls, args.passes))
    med = {k: statistics.median(v) * 1000 for k, v in rows.items()}
    print(f"{args.models}, 1 x {args.length} tokens, {args.passes} passes, medians of {args.repeats}; "
          f"traced logits equal eager: {same}")
    for k, v in med.items():
        print(f"  {k} thread(s): {v:.2f} ms per pass")
    rows_ids = torch.randint(10, eager[0].config.vocab_size, (args.batch, args.length))
    with torch.inference_mode():
        per_pass([lambda: traced[0](rows_ids)], 5)  # warm-up
        batched = statistics.median(per_pass([lambda: traced[0](rows_ids)], max(10, args.passes // args.batch))
                                    for _ in range(args.repeats)) * 1000
    print(f"  traced, one thread, {args.batch} x {args.length} tokens: {batched:.2f} ms per pass, "
          f"{batched / med['traced 1']:.1f}x one row ({batched / args.batch / med['traced 1']:.2f}x per row): "
          f"{args.batch} visitors with different prompts cost at least that much compute each step")
    alone = med["traced 1"] / med["eager 1"]
    overlap = med["traced 2"] / med["traced 1"]
    ok = same and alone <= 1.0 and overlap <= 0.6
    print(f"traced / eager, one thread: {alone:.2f}x (target <= 1.0x) {'PASS' if alone <= 1.0 else 'FAIL'}")
    print(f"two threads / one, traced: {overlap:.2f}x (target <= 0.6x) {'PASS' if overlap <= 0.6 else 'FAIL'}; "
          f"eager: {med['eager 2'] / med['eager 1']:.2f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
