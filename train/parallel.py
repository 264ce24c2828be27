"""Fine-tunes side by side, one process each (the recipe's `--jobs N`).

Each fine-tune's SFTConfig is written to OUT/NAME.config.json and run by this module's entry
point, `python -m train.parallel OUT/NAME.config.json`, with its output in OUT/NAME.log. Processes,
not threads: each gets an even share of the cores as its own torch thread pool (torch threads
fight when oversubscribed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .run import SFTConfig, sft


def run_parallel(configs: dict[str, SFTConfig], jobs: int, out: Path) -> None:
    """Run the fine-tunes `jobs` at a time; raise when one fails, naming its log."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    pending, running = list(configs.items()), {}
    while pending or running:
        while pending and len(running) < jobs:
            name, cfg = pending.pop(0)
            config_file, log_file = out / f"{name}.config.json", out / f"{name}.log"
            config_file.write_text(cfg.to_json())
            print(f"\n$ python -m train.parallel {config_file}   (log: {log_file})", flush=True)
            log = open(log_file, "a")
            running[name] = (subprocess.Popen([sys.executable, "-m", "train.parallel", str(config_file)], env=env,
                                              stdout=log, stderr=subprocess.STDOUT), log)
        time.sleep(5)
        for name, (proc, log) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                del running[name]
                if proc.returncode:
                    raise RuntimeError(f"fine-tune {name} failed (exit {proc.returncode}); see {out / (name + '.log')}"
                                       "; run the recipe again to resume it")


def main(argv: list[str] | None = None) -> int:
    """One fine-tune from its config file (what run_parallel starts)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m train.parallel CONFIG.json  (an SFTConfig as JSON)", file=sys.stderr)
        return 2
    cfg = SFTConfig.from_json(Path(argv[0]).read_text())
    print(f"[sft] {cfg.describe()}", flush=True)
    return int(sft(cfg) or 0)


if __name__ == "__main__":
    sys.exit(main())
