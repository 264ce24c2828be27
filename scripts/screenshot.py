"""Screenshots of the app as a visitor sees it, in headless Debian Chromium (Playwright).

Starts `python app.py` on a free loopback port with the given checkpoints (default: the embedded
ones), picks a preset, presses Decode, then "Find a revealing shift", and saves full-page PNGs at
desktop and phone widths. `--readme` also writes the small picture the README shows.

    python scripts/screenshot.py [--models base=assets/base ce=assets/ce ctc=assets/ctc] [--out /tmp/app_screens]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts.app_server import free_port, wait_until_serving  # noqa: E402

WIDTHS = {"desktop": (1440, 1000), "phone": (390, 844)}


def serve(models: list[str], port: int) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--threads", "1"]
    if models:
        cmd += ["--models", *models]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", proc, timeout=120)
    except RuntimeError:
        raise SystemExit("the app exited before serving; run `python app.py` to see why") from None
    except TimeoutError:
        proc.kill()
        raise SystemExit("the app did not serve within 120 s") from None
    return proc


def small(path: Path, width: int = 1100) -> None:
    """Shrink a PNG for the README: narrower, 128-colour palette (tens of KB, not hundreds)."""
    from PIL import Image

    im = Image.open(path)
    if im.width > width:
        im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    im.convert("P", palette=Image.ADAPTIVE, colors=128).save(path, optimize=True)


def shoot(url: str, out: Path, preset: str | None, readme: Path | None) -> list[Path]:
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or "/usr/bin/chromium"
    saved = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
        for label, (w, h) in WIDTHS.items():
            page = browser.new_page(viewport={"width": w, "height": h})
            page.goto(url)
            page.wait_for_selector("#find-shift")
            if preset:
                page.locator("textarea").first.fill(preset)
            page.get_by_role("button", name="Decode").click()
            page.wait_for_function("document.querySelector('#status').innerText.startsWith('done')", timeout=120_000)
            page.locator("#find-shift").click()
            page.wait_for_function("/^(found|no shift|the clean answer|⚠)/.test("
                                   "document.querySelector('#shift-status').innerText.trim())", timeout=180_000)
            page.wait_for_timeout(1500)
            path = out / f"app_{label}.png"
            page.screenshot(path=str(path), full_page=True)
            saved.append(path)
            if readme is not None and label == "desktop":
                page.locator("#panels").screenshot(path=str(readme))
                small(readme)
            page.close()
        browser.close()
    return saved


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=[], metavar="NAME=PATH")
    p.add_argument("--out", default="/tmp/app_screens")
    p.add_argument("--preset", default=None, help="prompt typed before Decode (default: the page's own)")
    p.add_argument("--readme", action="store_true", help="also write docs/app.png (the README's picture)")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = serve(a.models, port)
    try:
        for path in shoot(f"http://127.0.0.1:{port}/", out, a.preset, ROOT / "docs" / "app.png" if a.readme else None):
            print(path)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
