"""Benchmark mdlm_viz.ctc against torch's native CTC, side by side in one run.

    python bench/bench_ctc.py

1. speed: slack-collapse forward+backward vs torch.nn.functional.ctc_loss
   forward+backward (blank = slack) on the same emissions; target ratio <= 1.5.
2. memory: LLaDA-sized emissions (B=1, T=1024, V=126464, U=820). Peak memory of
   log_softmax -> slack CTC forward+backward vs log_softmax forward+backward with
   a dense upstream gradient (what any loss on log-probs hands back); target:
   at most 10% above.
"""
import gc
import json
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mdlm_viz.ctc import slack_ctc_loss  # noqa: E402

SLACK = 0
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# -----------------------------------------------------------------------------
# 1. speed

def bench_speed(B=8, T=1024, U=820, V=1000, warmup=2, reps=7):
    g = torch.Generator().manual_seed(0)
    lp = torch.randn(B, T, V, generator=g).log_softmax(-1).requires_grad_()
    targets = torch.randint(1, V, (B, U), generator=g)  # non-slack vocabulary
    il, tl = torch.full((B,), T), torch.full((B,), U)

    def ours(collapse="slack"):
        slack_ctc_loss(lp, targets, il, tl, slack_id=SLACK, collapse=collapse, reduction="sum").backward()
        lp.grad = None

    def native():
        F.ctc_loss(lp.transpose(0, 1), targets, il, tl, blank=SLACK, reduction="sum").backward()
        lp.grad = None

    def timed(fn):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    for _ in range(warmup):
        ours(), native()
    t_ours, t_native = [], []
    for _ in range(reps):  # interleaved, so load changes hit both alike
        t_ours.append(timed(ours))
        t_native.append(timed(native))
    m_ours, m_native = statistics.median(t_ours), statistics.median(t_native)
    ratio = m_ours / m_native
    print(f"[speed] B={B} T={T} U={U} V={V}, {CORES} threads, median of {reps} (fwd+bwd)")
    print(f"  slack_ctc_loss (slack map)  : {m_ours * 1e3:8.1f} ms   (reps: {', '.join(f'{t * 1e3:.0f}' for t in t_ours)})")
    print(f"  F.ctc_loss (blank = slack)  : {m_native * 1e3:8.1f} ms   (reps: {', '.join(f'{t * 1e3:.0f}' for t in t_native)})")
    print(f"  ratio ours / native         : {ratio:8.2f}   target <= 1.50  {verdict(ratio <= 1.5)}")
    t_std = timed(lambda: ours("standard"))  # informational: the 2U+1 lattice looped over T
    print(f"  (info) standard map, 1 run  : {t_std * 1e3:8.1f} ms  = {t_std / m_native:.2f} x native")
    return ratio <= 1.5


# -----------------------------------------------------------------------------
# 2. memory
#
# Method: torch.profiler(profile_memory=True) logs every allocation and free of
# torch's CPU allocator in order, each with the running "Total Allocated" since
# the profiler started; its maximum is the region's peak of live tensor bytes
# above what was live on entry. It counts every tensor the region creates,
# including autograd's saved tensors and transients inside kernels that go
# through the allocator; it does not count Python objects (negligible here).
# As a cross-check we also read the process's peak RSS (VmHWM, reset through
# /proc/self/clear_refs) where the kernel allows it: large tensors are mmapped
# and returned on free, so RSS follows live memory closely.

def _read_status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_bytes(fn) -> tuple[int, int | None]:
    """(profiler peak of live tensor bytes, RSS peak bytes or None) of fn() above its entry state."""
    gc.collect()
    rss0 = _read_status_kb("VmRSS")
    rss_ok = rss0 > 0 and _reset_hwm()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    rss_peak = (_read_status_kb("VmHWM") - rss0) * 1024 if rss_ok else None
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    totals = [e["args"]["Total Allocated"] for e in events
              if e.get("name") == "[memory]" and e["args"].get("Device Type", 0) == 0]
    return max([0] + totals), rss_peak


def bench_memory(B=1, T=1024, V=126464, U=820):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(B, T, V, generator=g).requires_grad_()
    targets = torch.randint(1, V, (B, U), generator=g)
    il, tl = torch.full((B,), T), torch.full((B,), U)
    unit = B * T * V * logits.element_size()  # one B x T x V float32 tensor

    def log_softmax_only():
        # the log-softmax the CTC starts from, with the dense upstream gradient
        # that any loss on log-probs must hand back to it
        lp = logits.log_softmax(-1)
        lp.backward(torch.ones_like(lp))
        logits.grad = None

    def log_softmax_ctc():
        lp = logits.log_softmax(-1)
        slack_ctc_loss(lp, targets, il, tl, slack_id=SLACK, reduction="mean").backward()
        logits.grad = None

    upstream = torch.ones(B, T, V)

    def log_softmax_own():
        # the log-softmax's own allocations, its upstream gradient given from outside
        lp = logits.log_softmax(-1)
        lp.backward(upstream)
        logits.grad = None

    lp_leaf = logits.detach().log_softmax(-1).requires_grad_()

    def ctc_only():
        slack_ctc_loss(lp_leaf, targets, il, tl, slack_id=SLACK, reduction="mean").backward()
        lp_leaf.grad = None

    log_softmax_only()  # warm up both paths once
    log_softmax_ctc()
    base, base_rss = peak_bytes(log_softmax_only)
    full, full_rss = peak_bytes(log_softmax_ctc)
    alone, alone_rss = peak_bytes(ctc_only)
    own, own_rss = peak_bytes(log_softmax_own)
    ratio = full / base
    mib = lambda x: f"{x / 2**20:8.1f} MiB ({x / unit:.3f} x BTV)" if x is not None else "     n/a"
    print(f"[memory] B={B} T={T} V={V} U={U}, float32; 1 x BTV = {unit / 2**20:.1f} MiB; peak above entry")
    print(f"  log_softmax fwd+bwd (dense upstream grad) : {mib(base)}   rss {mib(base_rss)}")
    print(f"  log_softmax + slack CTC fwd+bwd           : {mib(full)}   rss {mib(full_rss)}")
    print(f"  slack CTC alone fwd+bwd (given log-probs) : {mib(alone)}   rss {mib(alone_rss)}")
    print(f"  log_softmax alone, upstream grad given    : {mib(own)}   rss {mib(own_rss)}")
    print(f"  CTC term beyond log_softmax               : {(full - base) / 2**20:8.1f} MiB")
    print(f"  (info) CTC alone / log_softmax alone      : {alone / own:8.3f}")
    print(f"  ratio (log_softmax + CTC) / log_softmax   : {ratio:8.3f}   target <= 1.10  {verdict(ratio <= 1.10)}")
    return ratio <= 1.10


if __name__ == "__main__":
    torch.set_num_threads(CORES)
    t0 = time.perf_counter()
    results = [bench_speed(), bench_memory()]
    print(f"overall: {verdict(all(results))}  ({time.perf_counter() - t0:.0f} s)")
    sys.exit(0 if all(results) else 1)
