"""Training runs side by side, one process each (the recipe's `--jobs N`).

Each job is a chain of SFT stages run in order (a base's copy stage, then its mix; or one
fine-tune). Its SFTConfigs are written as a JSON list to OUT/NAME.config.json and run by this
module's entry point, `python -m train.parallel OUT/NAME.config.json`, which skips the stages
already complete, with its output in OUT/NAME.log. Processes,
not threads: each gets an even share of the cores as its own torch thread pool (torch threads
fight when oversubscribed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .run import SFTConfig, sft


def stage_complete(out: str | Path) -> bool:
    """Whether a training stage has finished (its final model saved as OUT/last)."""
    return (Path(out) / "last" / "training.json").is_file()


def _startable(chain: list[SFTConfig]) -> bool:
    """A chain starts once the model its first stage trains from exists (a chain whose base is
    another chain's stage waits for that stage; a hub id or any other name is taken as there)."""
    base = Path(chain[0].base)
    return base.name != "last" or (base / "training.json").is_file()


def run_parallel(chains: dict[str, list[SFTConfig]], jobs: int, out: Path) -> None:
    """Run the chains `jobs` at a time, each once its base exists; raise when one fails, naming its log."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    pending, running = list(chains.items()), {}
    while pending or running:
        ready = [item for item in pending if _startable(item[1])]
        if not running and pending and not ready:
            raise RuntimeError(f"no training run can start: {', '.join(n for n, _ in pending)} wait for a "
                               "base that no run trains")
        while ready and len(running) < jobs:
            name, chain = ready.pop(0)
            pending.remove((name, chain))
            config_file, log_file = out / f"{name}.config.json", out / f"{name}.log"
            config_file.write_text("[" + ",\n".join(c.to_json() for c in chain) + "]")
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
                    raise RuntimeError(f"training run {name} failed (exit {proc.returncode}); see {out / (name + '.log')}"
                                       "; run the recipe again to resume it")


def main(argv: list[str] | None = None) -> int:
    """One chain from its config file (what run_parallel starts), skipping complete stages."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m train.parallel CONFIG.json  (a JSON list of SFTConfigs)", file=sys.stderr)
        return 2
    for fields in json.loads(Path(argv[0]).read_text()):
        cfg = SFTConfig(**fields)
        if stage_complete(cfg.out):
            print(f"[sft] {cfg.out} complete, skipped", flush=True)
            continue
        print(f"[sft] {cfg.describe()}", flush=True)
        if rc := int(sft(cfg) or 0):
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
