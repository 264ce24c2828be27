"""Start `python app.py` on loopback and wait until it serves: for the app and browser tests,
bench/bench_app.py and scripts/screenshot.py."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_model_specs(directory: Path) -> list[str]:
    """base, ce (no slack) and ctc (<slack>, slack collapse) tiny checkpoints, as NAME=PATH."""
    from mdlm_viz.testing import make_tiny_checkpoint  # torch: only when checkpoints are made

    specs = []
    for name, slack in (("base", False), ("ce", False), ("ctc", True)):
        path = directory / name
        if not (path / "config.json").is_file():
            make_tiny_checkpoint(path, slack=slack)
        specs.append(f"{name}={path}")
    return specs


def wait_until_serving(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}:\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"app.py did not serve {url} within {timeout} s")


@contextlib.contextmanager
def running_app(models: list[str], *, extra_args=(), timeout: float = 90, log_path: Path | None = None):
    """Yield the URL of a freshly started app; stop it afterwards."""
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", TOKENIZERS_PARALLELISM="false")
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--threads", "1",
                             "--models", *models, *extra_args], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, proc, timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path:
            log.close()
