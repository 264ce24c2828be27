"""The app at classroom scale (issue #15): ratios measured side by side in one run.

1. Start-up: `python app.py` until it serves the page, against `python -c "import gradio, torch"`
   (medians of --reps fresh processes). Target: at most 1.2x. Printed too: until `/ready` says
   the models are loaded (the page says they are loading until then).
2. One visitor: in headless Chromium (Debian's), the Decode click until the status says done and
   every model's heatmap is drawn, against the bare sequential forward passes of the same decodes
   in this process (`mdlm_viz.generate` on the library's eager models, one after another, same
   threads; the forward calls timed, the sampler's work between them left out), each click next
   to a bare pass (medians of --clicks pairs). Target: at most 1.0x. The same
   decode through `/run` (gradio_client, streamed to the end), and the bare compute with the
   app's traced forward (mdlm_viz/inference.py), are printed too.
3. A classroom: --clients visitors with the page open (gradio_client, one session each, begun
   with `/ready` as a browser's begins when the page loads) press Decode at once; the last to
   finish against one visitor alone (timed just before), --reps classes, the median ratio. The
   target (issue #15's class: every student presses Decode on the page's default prompt;
   identical decodes share a batch row): all complete, the last within 3x. Then every visitor
   with a different prompt (every row computed): all complete, and the time printed against the
   bare batched compute of the same rows, its floor (on a CPU a 30-row forward costs about 18
   one-row forwards, so 3x one visitor is out of reach there). Printed too: one class on the same
   prompt whose visitors' first call is Decode (each session begun by it).
4. Memory: the server's resident memory after 100 sequential visits against after 10.
   Target: within 10%.

Models: --models NAME=PATH ... (default: the embedded assets). Run it on a quiet machine
(`uptime`): the start-up ratio compares runs made minutes apart. Exit code 1 on a FAIL.

    python bench/bench_app.py [--models base=assets/base ce=assets/ce ctc=assets/ctc] [--clients 30] [--quick]
"""

import argparse
import functools
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Each gradio_client Client otherwise starts a telemetry thread that calls out to the hub: nothing
# leaves the machine, and the bench's clients do not spend the server's cores on it.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
from scripts.app_server import free_port, wait_until_serving  # noqa: E402

PROMPT = "Reverse the order: wall kitten book wolf"


def default_specs() -> list[str]:
    names = ["base", "ce", "ctc", "ctc-standard"]
    return [f"{n}=assets/{n}" for n in names if (ROOT / "assets" / n / "config.json").is_file()]


def seconds(cmd: list[str], until=None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if until is None:
            proc.wait()
        else:
            until(proc)
        return time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def models_ready(url: str) -> bool:
    """The app's public `/ready` through Gradio's REST call API (no client: it adds its own start-up)."""
    import json
    import urllib.request

    post = urllib.request.Request(f"{url}gradio_api/call/ready", data=b'{"data": []}',
                                  headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(post, timeout=10) as r:
        event = json.loads(r.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/ready/{event}", timeout=10) as r:
        lines = r.read().decode().splitlines()
    data = [json.loads(line[len("data:"):]) for line in lines if line.startswith("data:")]
    return bool(data and isinstance(data[-1], list) and data[-1] and data[-1][0].get("ready"))


def until_ready(proc, url: str, timeout: float = 180) -> float:
    """Serving, then polled until the models are ready: the seconds when the page was first served."""
    t0 = time.perf_counter()
    wait_until_serving(url, proc, timeout=timeout)
    served = time.perf_counter() - t0
    while not models_ready(url):
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"the models were not ready within {timeout} s")
        time.sleep(0.05)
    return served


def start_app(specs, threads: int):
    port = free_port()
    cmd = [sys.executable, "app.py", "--port", str(port), "--threads", str(threads), "--models", *specs]
    return cmd, f"http://127.0.0.1:{port}/"


def settings_of(specs) -> list:
    """The first model's shipped decode settings, as /run takes them after the prompt and models."""
    import json

    first = json.loads((ROOT / specs[0].split("=", 1)[1] / "generation_config.json").read_text())
    return [first.get("gen_length", 64), first.get("steps", 64), first.get("block_length", 32), "low_confidence",
            0.0, 0.0, 0, 0.0]


class BareCompute:
    """The same decodes as a visitor's, one model after another, in this process (no server): the
    library's eager models (the target's yardstick), or with `traced` the app's traced forward.
    Loaded once; `seconds()` times one pass, so the bench can take it between clicks."""

    def __init__(self, specs, settings, threads: int, traced: bool = False):
        import torch
        from transformers.utils import logging as hf_logging

        import mdlm_viz as mv
        from mdlm_viz.inference import for_inference
        from ui.models import LoadedModel, checkpoint_location, parse_model_specs
        from ui.settings import parse_settings

        hf_logging.disable_progress_bar()  # the bench's output is its figures, not loading bars
        torch.set_num_threads(threads)
        self.models = {}
        for name, ref in parse_model_specs(specs).items():
            ck = mv.load_checkpoint(checkpoint_location(ref), device="cpu", dtype=torch.float32)
            self.models[name] = LoadedModel(name, for_inference(ck.model) if traced else ck.model, ck.tokenizer,
                                            ck.facts)
        self.settings = parse_settings(*settings)
        self.forward_s = 0.0  # of the last `seconds()`: its forward passes alone
        for lm in self.models.values():
            lm.model.forward = self._timed(lm.model.forward)
        self._decode_all([PROMPT], record=False)  # warm-up

    def _timed(self, forward):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return forward(*args, **kwargs)
            finally:
                self.forward_s += time.perf_counter() - t0
        return timed

    def _decode_all(self, prompts: list[str], record: bool) -> None:
        """Every model's decode of `prompts` as one batch (left-padded, as the scheduler batches them)."""
        import torch

        import mdlm_viz as mv
        from mdlm_viz.chat import left_pad

        with torch.inference_mode():
            for lm in self.models.values():
                pad = lm.facts.pad_id if lm.facts.pad_id is not None else lm.facts.eos_id
                ids, attn = left_pad([lm.prompt_ids(p) for p in prompts], pad)
                mask = {"attention_mask": attn} if len(prompts) > 1 else {}  # one prompt: as a solo decode
                mv.generate(lm.model, ids, record_trace=record, **mask, **self.settings.sampler_kwargs(lm))

    def seconds(self, prompts: list[str] | None = None) -> float:
        self.forward_s = 0.0
        t0 = time.perf_counter()
        self._decode_all(prompts or [PROMPT], record=True)
        return time.perf_counter() - t0


class Browser:
    """Headless Chromium (Debian's) with the page open, for timed Decode clicks. `None` from
    `open` without Chromium or Playwright."""

    def __init__(self, pw, browser, page, names):
        self.pw, self.browser, self.page = pw, browser, page
        drawn = " && ".join(f"document.querySelector('#heatmap-{n} svg.commit-grid')" for n in names)
        # textContent of the status line's own text: innerText would force a style and layout pass
        # on every mutation, work the page does not do otherwise (~30 ms of a click, stop 29).
        status = "(document.querySelector('#status [data-testid=\"markdown\"]')?.textContent || '').trim()"
        tracker = "document.querySelector('#status [data-testid=\"status-tracker\"]')"
        busy = f"!!({tracker} && !{tracker}.classList.contains('hide'))"  # Gradio's progress, on the status line
        shown = f"({status}.startsWith('done') && {drawn})"
        # This click's decode is shown once the status says done with every heatmap drawn, and the
        # page showed something of it first: a frame (it clears the heatmaps), a new status (it
        # says how long the decode took), or, for identical texts and no frame, Gradio's progress
        # come and gone.
        self.timed_click = f"""() => new Promise((resolve, reject) => {{
            const t0 = performance.now(), before = {status};
            let cleared = false, wasBusy = false;
            const watch = new MutationObserver(() => {{
                const isShown = {shown}, isBusy = {busy};
                cleared ||= !isShown;
                wasBusy ||= isBusy;
                if (isShown && (cleared || {status} !== before || (wasBusy && !isBusy))) {{
                    watch.disconnect();
                    requestAnimationFrame(() => resolve((performance.now() - t0) / 1000));
                }}
            }});
            watch.observe(document.body, {{subtree: true, childList: true, characterData: true, attributes: true}});
            setTimeout(() => reject(new Error('no decode finished in 600 s')), 600000);
            document.querySelector('#decode').click();
        }})"""

    @classmethod
    def open(cls, url: str, names) -> "Browser | None":
        import shutil

        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            return None
        if exe is None:
            return None
        pw = sync_playwright().start()
        try:
            browser = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url, wait_until="load")
            page.wait_for_function("document.querySelector('#decode') && !document.querySelector('#decode').disabled",
                                   timeout=180_000)
            self = cls(pw, browser, page, names)
            self.click()  # warm-up
        except BaseException:  # no Chromium left behind when the page never came up
            pw.stop()
            raise
        return self

    def click(self) -> float:
        """Seconds from the Decode click until "done" with every heatmap drawn, timed inside the page:
        the click and a MutationObserver that sees the last update land, then the next animation
        frame (the paint)."""
        seconds = self.page.evaluate(self.timed_click)
        time.sleep(0.5)  # the event's completion message, then a quiet page
        return seconds

    def close(self) -> None:
        self.browser.close()
        self.pw.stop()


@functools.cache
def tls_context():
    """One TLS context for every client. gradio_client builds an httpx client per request, and
    each builds its own context, loading the CA bundle (for http:// too): on two cores shared with
    the server, 30 visitors spent more CPU on that than the server on their decodes."""
    import ssl

    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def open_client(url: str, opened: bool = True):
    """A visitor (gradio_client). With `opened`, one with the page open: a browser's session
    begins when the page loads (its load event); a client's, at its first call, here `/ready`,
    so that pressing Decode then costs what it costs a visitor whose page is open."""
    from gradio_client import Client

    client = Client(url, verbose=False, ssl_verify=tls_context())  # handed to httpx as `verify`
    deadline = time.perf_counter() + 180
    while opened and not client.predict(api_name="/ready")["ready"]:  # the models may still be loading
        if time.perf_counter() > deadline:
            raise RuntimeError("the models were not loaded within 180 s")
        time.sleep(0.5)
    return client


def visit(url: str, names, settings, client=None, prompt: str = PROMPT) -> float:
    """Seconds from pressing Decode to "done" for one visitor (a page already open: `client`;
    without one, a visitor who opens the page, decodes and leaves)."""
    own = client is None
    client = client or open_client(url)
    try:
        t0 = time.perf_counter()
        status = client.submit(prompt, names, *settings, api_name="/run").result(timeout=600)[0]
        if not str(status).startswith("done"):
            raise RuntimeError(f"the decode did not finish: {status}")
        return time.perf_counter() - t0
    finally:
        if own:
            leave(client)


def leave(client) -> None:
    """The visitor closes the tab: a client left open keeps its heartbeat stream to the server
    (a browser tab's too), so every earlier visitor would load the next measurement."""
    client.close()


def class_prompts(clients: int, same: bool) -> list[str]:
    """The prompt of each visitor: one for all (a class on one prompt), or a different copy prompt each."""
    return [PROMPT if same else f"Repeat exactly: {100 + 37 * i} {i % 10}{i % 10} {9 - i % 10}" for i in range(clients)]


def classroom(url: str, names, settings, prompts: list[str], opened: bool = True) -> tuple[int, float]:
    clients = len(prompts)
    errors, ends = [], []
    start = [0.0]
    barrier = threading.Barrier(clients, action=lambda: start.__setitem__(0, time.perf_counter()))

    opened_clients = []

    def student(prompt):
        try:
            client = open_client(url, opened)  # the page is open; then everyone presses Decode at once
            opened_clients.append(client)
            barrier.wait()
            visit(url, names, settings, client, prompt)
            ends.append(time.perf_counter())
        except Exception as err:  # noqa: BLE001 - every failure counts
            errors.append(repr(err))

    threads = [threading.Thread(target=student, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for client in opened_clients:  # the class leaves once everyone is done
        leave(client)
    for e in errors[:3]:
        print(f"  visitor error: {e}")
    return len(errors), (max(ends) - start[0]) if ends else float("nan")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def verdict(label: str, ratio: float, target: float) -> bool:
    ok = ratio <= target
    print(f"{label}: {ratio:.2f}x (target <= {target:g}x) {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", metavar="NAME=PATH", help="checkpoints to serve (default: the assets)")
    ap.add_argument("--reps", type=int, default=3,
                    help="fresh processes timed for the start-up medians, and the classes of visitors")
    ap.add_argument("--clicks", type=int, default=7,
                    help="Decode clicks timed in Chromium, each beside a bare pass (the click's median)")
    ap.add_argument("--clients", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the app and of the bare compute")
    ap.add_argument("--quick", action="store_true", help="1 rep, 6 clients, 20 visits: checks the bench itself")
    args = ap.parse_args()
    specs = args.models or default_specs()
    if not specs:
        ap.error("no checkpoints: pass --models NAME=PATH ... (assets/ has none)")
    reps, clients, visits = (1, 6, 20) if args.quick else (args.reps, args.clients, 100)
    clicks = 1 if args.quick else args.clicks
    names, settings = [s.split("=", 1)[0] for s in specs], settings_of(specs)
    print(f"models: {' '.join(specs)}; prompt {PROMPT!r}; settings {settings}; {args.threads} torch thread(s)")

    imports = statistics.median(seconds([sys.executable, "-c", "import gradio, torch"]) for _ in range(reps))
    serve, ready = [], []
    for _ in range(reps):
        cmd, url = start_app(specs, args.threads)
        ready.append(seconds(cmd, until=lambda proc, url=url: serve.append(until_ready(proc, url))))
    serve_s, ready_s = statistics.median(serve), statistics.median(ready)
    print(f"import gradio + torch {imports:.2f} s; app serving {serve_s:.2f} s, models ready {ready_s:.2f} s "
          f"({ready_s / imports:.2f}x the imports; not a target)")
    ok = [verdict("start-up: serving / bare imports", serve_s / imports, 1.2)]

    bare = BareCompute(specs, settings, args.threads)
    traced = BareCompute(specs, settings, args.threads, traced=True)
    cmd, url = start_app(specs, args.threads)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(url, proc, timeout=180)
        visit(url, names, settings)  # warm-up
        one = statistics.median(visit(url, names, settings) for _ in range(3))
        print(f"one visitor: /run {one:.2f} s; bare sequential compute {bare.seconds():.2f} s "
              f"(with the app's traced forward {traced.seconds():.2f} s)")
        browser = Browser.open(url, names)
        if browser is None:
            print("no Chromium or Playwright: the click-to-heatmaps figure is not measured")
        else:
            # Each click next to a bare pass: this VM's speed drifts over minutes. The yardstick is
            # the bare pass's forward passes alone (the sampler's work between them is not in it).
            pairs = []
            for _ in range(clicks):
                click = browser.click()
                pairs.append((click, bare.seconds(), bare.forward_s))
            browser.close()
            click, compute, forward = (statistics.median(p[i] for p in pairs) for i in range(3))
            print(f"one visitor in Chromium, click to done with {len(names)} heatmaps drawn: {click:.2f} s "
                  f"against {forward:.2f} s of bare forward passes ({compute:.2f} s with the sampler's work); "
                  f"medians of {clicks} pairs, each {', '.join(f'{c / f:.2f}x' for c, _, f in pairs)}; "
                  f"click / bare decode {click / compute:.2f}x")
            label = f"one {len(names)}-model decode in the browser / its bare forward passes"
            ok.append(verdict(label, click / forward, 1.0))
        for same in (True, False):
            what = "the same prompt" if same else "a different prompt each"
            prompts = class_prompts(clients, same)
            runs = []  # (errors, the last visitor's seconds, one visitor's just before)
            for _ in range(reps):
                alone = statistics.median(visit(url, names, settings) for _ in range(3))
                runs.append((*classroom(url, names, settings, prompts), alone))
            errors = sum(e for e, _, _ in runs)
            ratios = [last / alone for _, last, alone in runs]
            print(f"{clients} visitors at once, {what}, {reps} classes: {reps * clients - errors}/{reps * clients} "
                  f"completed; the last after {', '.join(f'{last:.2f}' for _, last, _ in runs)} s, "
                  f"{', '.join(f'{r:.2f}x' for r in ratios)} one visitor just before")
            if same:  # the class: every student presses Decode on the page's default
                ok.append(errors == 0 and verdict(f"last of {clients} ({what}) / one visitor, median of {reps}",
                                                  statistics.median(ratios), 3.0))
                continue
            # Every row is computed: its floor is the same rows' batched compute (the app's traced
            # forward, one thread, models in sequence; the app's two cores at best halve it).
            floor = traced.seconds(prompts)
            last = statistics.median(last for _, last, _ in runs)
            ok.append(errors == 0)
            print(f"  not a target on {os.cpu_count()} CPU cores: the same {clients} rows batched, bare, traced, "
                  f"one thread: {floor:.2f} s ({floor / statistics.median(a for _, _, a in runs):.1f}x one visitor); "
                  f"the last visitor after {last / floor:.2f}x that")
        # Not a target: Gradio builds every new session's copy of the page's config at its first
        # event, one session after another on its event loop (docs/benchmarks.md).
        errors, last = classroom(url, names, settings, class_prompts(clients, True), opened=False)
        print(f"{clients} visitors at once whose first call is Decode (new sessions), the same prompt: "
              f"{clients - errors}/{clients} completed; the last after {last:.2f} s ({last / one:.2f}x one visitor)")
        for i in range(visits):
            visit(url, names, settings)
            if i + 1 == 10:
                after_10 = rss_kib(proc.pid)
        after_all = rss_kib(proc.pid)
        print(f"server memory after 10 visits {after_10 / 1024:.0f} MiB, after {visits} {after_all / 1024:.0f} MiB")
        ok.append(verdict(f"memory after {visits} / after 10 visits", after_all / after_10, 1.1))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
