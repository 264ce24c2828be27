"""How fast the app answers: start-up, first streamed step, a full run, and ten visitors at once.

Targets (issue #5): `python app.py` serves within 15 s; the first step of a 3-model run streams
within 1 s; a full 3-model run at generation length 64 / 64 steps (blocks of 32) within 5 s;
10 concurrent gradio_client clients all complete without error. Each figure is measured against
a freshly started `python app.py` over HTTP, as a visitor sees it; run times are medians.

Models: --models NAME=PATH ... (e.g. the embedded assets); without it, assets/base, assets/ce and
assets/ctc when they exist, else stand-ins of the embedded models' size (4.6M parameters,
vocabulary 4096, random weights: same compute, meaningless text). Exit code 1 on FAIL.

    python bench/bench_app.py [--models base=assets/base ce=assets/ce ctc=assets/ctc] [--reps 5] [--threads 1]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts.app_server import free_port, wait_until_serving  # noqa: E402

PROMPT = "Repeat exactly: 700 8888 62"
SETTINGS = [64, 64, 32, "low_confidence", 0.0, 0.0, 0]  # gen_length, steps, block_length, remasking, T, CFG, seed


def make_standin(directory: Path, slack: bool) -> Path:
    """A random LLaDA of the embedded models' shape with a 4096-entry word-level tokenizer."""
    from mdlm_viz.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(directory, slack=slack, collapse="slack", vocab_size=4096, d_model=192, n_layers=4,
                                n_heads=6, n_kv_heads=6, mlp_hidden_size=512,
                                init_std=0.02,  # LLaDAConfig's default, not the tests' peaked 0.3
                                generation={"steps": 64, "gen_length": 64, "block_length": 32})


def default_models(work: Path) -> tuple[list[str], str]:
    assets = {n: ROOT / "assets" / n for n in ("base", "ce", "ctc")}
    if all((p / "config.json").is_file() for p in assets.values()):
        return [f"{n}={p}" for n, p in assets.items()], "embedded assets"
    specs = [f"{n}={make_standin(work / n, slack=n == 'ctc')}" for n in assets]
    return specs, "random stand-ins of the embedded models' size (assets/ not trained yet)"


def time_run(client, names) -> tuple[float, float]:
    """(seconds to the first streamed step, seconds to the end) of one run."""
    t0 = time.perf_counter()
    job = client.submit(PROMPT, names, *SETTINGS, api_name="/run")
    first = None
    for update in job:
        if first is None and isinstance(update[0], str) and "step" in update[0]:
            first = time.perf_counter() - t0
    status = job.result()[0]
    end = time.perf_counter() - t0
    if not str(status).startswith("done") or "⚠" in str(status):
        raise RuntimeError(f"run did not finish cleanly: {status}")
    return first if first is not None else end, end


def concurrent_runs(url: str, names, clients: int) -> tuple[int, float, float]:
    """(errors, wall seconds, slowest run seconds) of `clients` visitors running at once."""
    from gradio_client import Client

    errors, times = [], []
    start = threading.Barrier(clients)

    def visitor():
        try:
            client = Client(url, verbose=False)
            start.wait()
            times.append(time_run(client, names)[1])
        except Exception as err:  # noqa: BLE001 - every failure counts
            errors.append(repr(err))

    threads = [threading.Thread(target=visitor) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in errors[:3]:
        print(f"  client error: {e}")
    return len(errors), time.perf_counter() - t0, max(times) if times else float("nan")


def report(label: str, value: float, target: float, unit: str = "s") -> bool:
    ok = value < target
    print(f"{label}: {value:.2f} {unit} (target < {target:g} {unit}) {'PASS' if ok else 'FAIL'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", metavar="NAME=PATH", help="checkpoints to serve (default: see above)")
    ap.add_argument("--reps", type=int, default=5, help="runs timed for the medians")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads of the app (app.py --threads); default: torch's choice")
    args = ap.parse_args()
    from gradio_client import Client

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        specs, what = (args.models, "as given") if args.models else default_models(work)
        names = [s.split("=", 1)[0] for s in specs]
        print(f"models: {', '.join(specs)} ({what}); prompt {PROMPT!r}; gen_length 64, 64 steps, blocks of 32")
        port = free_port()
        t0 = time.perf_counter()
        threads = ["--threads", str(args.threads)] if args.threads else []
        cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port), *threads, "--models", *specs]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_until_serving(url, proc, timeout=120)
            startup = time.perf_counter() - t0
            client = Client(url, verbose=False)
            time_run(client, names)  # warm-up: first calls pay for lazy initialisation
            firsts, totals = zip(*(time_run(client, names) for _ in range(args.reps)))
            errors, wall, slowest = concurrent_runs(url, names, args.clients)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    results = [
        report("time until python app.py serves", startup, 15),
        report(f"first streamed step of a {len(names)}-model run (median of {args.reps})",
               statistics.median(firsts), 1),
        report(f"full {len(names)}-model run, 64 tokens / 64 steps (median of {args.reps}; "
               f"min {min(totals):.2f} s)", statistics.median(totals), 5),
    ]
    ok = errors == 0
    print(f"{args.clients} concurrent clients: {args.clients - errors}/{args.clients} completed without error "
          f"in {wall:.2f} s (slowest run {slowest:.2f} s) {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if all(results) and ok else 1)


if __name__ == "__main__":
    main()
