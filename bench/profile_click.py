"""Where a Decode click's time goes (issue #15's click target): CPU seconds per click, side by side.

On a machine where the browser shares the server's cores, a click cannot end before the work of
both processes is done: its wall time is at least (server CPU + browser CPU) / cores. This script
prints that accounting next to the yardstick of `bench/bench_app.py` (the bare eager forward passes
of the same decodes, timed in this process beside each click):

1. Idle: the server's and Chromium's CPU use with the page open and nothing happening.
2. The app's own compute: the same decodes through the app's scheduler in this process (traced
   forward, the models side by side, no HTTP, no browser) against the bare forward passes.
3. --clicks clicks in headless Chromium (the bench's `Browser`), each followed by a bare pass:
   the click's wall time, the server's and Chromium's CPU seconds during it, and their sum over
   the cores, each against the bare forward passes (medians).

No targets: it explains the figure `bench/bench_app.py` checks. Run it on a quiet machine.
CPU times come from psutil (installed with accelerate).

    python bench/profile_click.py [--models NAME=PATH ...] [--clicks 8]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
from bench.bench_app import (  # noqa: E402
    PROMPT, BareCompute, Browser, default_specs, settings_of, start_app, until_ready)


@dataclass
class Click:
    """One timed click, in seconds."""

    wall: float  # click to done with the heatmaps drawn
    server_cpu: float  # the app's process, during the click
    chromium_cpu: float  # every Chromium process, during the click
    bare_forward: float  # the bare eager forward passes of the same decodes, just after


def cpu_seconds(procs) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # a renderer that ended meanwhile
            pass
    return total


def chromium_processes() -> list:
    return [c for c in psutil.Process().children(recursive=True) if "chrom" in c.name()]


def app_compute(specs, settings, bare: BareCompute, reps: int) -> list[tuple[float, float]]:
    """(the app's scheduler decoding the prompt on every model, the bare forward passes) per rep."""
    from ui.decoding import interleave
    from ui.models import checkpoint_location, load_located, model_specs
    from ui.page import parallel_decodes
    from ui.scheduler import BatchScheduler
    from ui.session import AppContext
    from ui.settings import parse_settings

    models = load_located({n: checkpoint_location(p) for n, p in model_specs(specs).items()})
    ctx = AppContext(models, scheduler=BatchScheduler(parallel=parallel_decodes()))
    decode_settings = parse_settings(*settings)

    def once() -> float:
        t0 = time.perf_counter()
        decodes = {n: ctx.decode(n, lm.prompt_ids(PROMPT), decode_settings) for n, lm in ctx.models.items()}
        for _ in interleave(decodes):
            pass
        return time.perf_counter() - t0

    once()  # warm-up
    out = []
    for _ in range(reps):
        app_s = once()
        bare.seconds()
        out.append((app_s, bare.forward_s))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", metavar="NAME=PATH", help="checkpoints to serve (default: the assets)")
    ap.add_argument("--clicks", type=int, default=8)
    args = ap.parse_args()
    specs = args.models or default_specs()
    names, settings = [s.split("=", 1)[0] for s in specs], settings_of(specs)
    cores = os.cpu_count() or 1
    bare = BareCompute(specs, settings, threads=1)  # one torch thread, as the app: parallel_decodes() reads it

    pairs = app_compute(specs, settings, bare, args.clicks)
    app_s, fwd = (statistics.median(p[i] for p in pairs) for i in range(2))
    print(f"the app's scheduler in-process (no HTTP, no browser): {app_s:.3f} s against {fwd:.3f} s of bare "
          f"forward passes: {statistics.median(a / f for a, f in pairs):.2f}x")

    cmd, url = start_app(specs, threads=1)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        until_ready(proc, url)
        browser = Browser.open(url, names)
        if browser is None:
            print("no Chromium or Playwright: nothing more to measure")
            return 1
        server = [psutil.Process(proc.pid)]
        chromium = chromium_processes()
        time.sleep(1.0)
        s0, c0, t0 = cpu_seconds(server), cpu_seconds(chromium), time.perf_counter()
        time.sleep(3.0)
        idle = time.perf_counter() - t0
        print(f"idle, page open: server {(cpu_seconds(server) - s0) / idle:.1%} of a core, "
              f"Chromium {(cpu_seconds(chromium) - c0) / idle:.1%}")
        rows = []
        for _ in range(args.clicks):
            chromium = chromium_processes()
            s0, c0 = cpu_seconds(server), cpu_seconds(chromium)
            wall = browser.page.evaluate(browser.timed_click)
            s1, c1 = cpu_seconds(server), cpu_seconds(chromium)
            time.sleep(0.5)  # the event's completion message, then a quiet page
            bare.seconds()
            rows.append(Click(wall, s1 - s0, c1 - c0, bare.forward_s))
        browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    bare_s = statistics.median(r.bare_forward for r in rows)
    print(f"{args.clicks} clicks, medians; each against the bare forward passes beside it ({bare_s:.3f} s):")
    for label, seconds_of in (("click to done with the heatmaps drawn", lambda r: r.wall),
                              ("server CPU during the click", lambda r: r.server_cpu),
                              ("Chromium CPU during the click", lambda r: r.chromium_cpu),
                              (f"both over {cores} cores (the wall's floor)",
                               lambda r: (r.server_cpu + r.chromium_cpu) / cores)):
        print(f"  {label:40s} {statistics.median(map(seconds_of, rows)):.3f} s  "
              f"{statistics.median(seconds_of(r) / r.bare_forward for r in rows):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
