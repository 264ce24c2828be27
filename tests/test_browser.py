"""The page in a real browser (headless Debian Chromium driven by Playwright): run a prompt, scrub,
pick a token by clicking it, inject the shift, and see every figure drawn, with no request
leaving loopback. A screenshot goes to the test's tmp dir and to /tmp/app_screens/."""

import json
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

SCREENS = Path("/tmp/app_screens")
ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        pytest.skip("no Chromium executable found (install Debian's `chromium`; never `playwright install`)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1200})
    pg = context.new_page()
    pg.outside = []  # every request to a host that is not loopback, blocked and recorded

    def guard(route):
        host = urlparse(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            pg.outside.append(route.request.url)
            route.abort()

    pg.route("**/*", guard)
    yield pg
    context.close()


def canvas_states(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(f"{selector} [data-pos]", "els => els.map(e => e.dataset.state)")


def scrub_to(page, step: int) -> None:
    box = page.locator("#step-slider input[type=number]")
    box.fill(str(step))
    box.press("Enter")
    page.wait_for_selector(f'#canvas-base .mv-canvas[data-step="{step}"]', timeout=10_000)


def shiftable(states: list[str], hi: int) -> int | None:
    """A committed position whose right neighbour is still masked, inside the live region [0, hi)."""
    return next((p for p in range(hi - 1) if states[p] != "masked" and states[p + 1] == "masked"), None)


def test_run_scrub_shift_and_figures_in_a_browser(page, app_url, tmp_path):
    page.goto(app_url, wait_until="load")  # not "networkidle": Gradio keeps a heartbeat stream open
    page.get_by_role("button", name="Decode").wait_for()
    page.get_by_role("button", name="Decode").click()
    page.wait_for_function("document.querySelector('#status')?.innerText.startsWith('done')", timeout=30_000)
    for name in ("base", "ce", "ctc"):
        assert len(canvas_states(page, f"#canvas-{name}")) == 16
        page.wait_for_selector(f"#heatmap-{name} svg.commit-grid", timeout=15_000)

    # Scrub back: the canvas shows the recorded step, with masks again.
    step, pos = None, None
    for s in range(3):  # steps 0..2 decode block 0 (positions 0..7)
        scrub_to(page, s)
        pos = shiftable(canvas_states(page, "#canvas-base"), hi=8)
        if pos is not None:
            step = s
            break
    assert pos is not None, "no shiftable token in the first steps"
    assert canvas_states(page, "#canvas-base").count("masked") > 0

    # Tokens a shift can move are outlined; a masked one explains why it cannot, in the status line.
    assert "mv-shiftable" in page.locator(f'#canvas-base [data-pos="{pos}"]').get_attribute("class")
    page.locator(f'#canvas-base [data-pos="{pos + 1}"]').click()
    page.wait_for_function("document.querySelector('#shift-status')?.innerText.includes('still masked')",
                           timeout=10_000)

    # Clicking a token picks it for the shift.
    page.locator(f'#canvas-base [data-pos="{pos}"]').click()
    page.wait_for_function(f"document.querySelector('#shift-pos input').value == '{pos}'", timeout=10_000)
    assert page.locator("#shift-step input").input_value() == str(step)

    page.get_by_role("button", name="Re-run with the shift").click()
    page.wait_for_function("document.querySelector('#shift-status')?.innerText.startsWith('re-ran')", timeout=30_000)
    moved = page.locator(f'#shifted-base [data-pos="{pos + 1}"]')
    assert "mv-moved" in moved.get_attribute("class") and moved.inner_text().startswith("→")
    page.wait_for_selector("#sheatmap-base svg.commit-grid", timeout=15_000)

    # Playback from the recorded traces: Play runs to the last step; the arrow keys step it.
    page.get_by_role("button", name="▶ Play").click()
    page.wait_for_selector('#canvas-base .mv-canvas[data-step="7"]', timeout=15_000)
    page.locator("h1").first.click()  # focus off any field
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector('#canvas-base .mv-canvas[data-step="6"]', timeout=10_000)
    page.keyboard.press("ArrowRight")
    page.wait_for_selector('#canvas-base .mv-canvas[data-step="7"]', timeout=10_000)

    # One click finds a shift for the CE and CTC models and shows both answers with it.
    page.get_by_role("button", name="Find a revealing shift").click()
    page.wait_for_function("/^(found|no shift|the clean answer)/.test("
                           "document.querySelector('#shift-status')?.innerText.trim())", timeout=60_000)
    for name in ("ce", "ctc"):
        assert page.locator(f"#answer-{name} textarea").input_value() is not None
        page.wait_for_selector(f"#shifted-answer-{name} textarea", timeout=10_000)

    SCREENS.mkdir(parents=True, exist_ok=True)

    def snap(name, locator=None):
        path = tmp_path / name
        (locator or page).screenshot(path=str(path), **({} if locator else {"full_page": True}))
        shutil.copy(path, SCREENS / name)

    # Tabs below the models: every figure is drawn.
    page.get_by_role("tab", name="CTC alignment").click()
    page.get_by_role("button", name="Align").click()
    page.wait_for_selector("#alignment .js-plotly-plot", timeout=15_000)
    snap("alignment.png", page.locator("#alignment"))
    page.get_by_role("tab", name="Why CE punishes a shift").click()
    page.wait_for_selector("#ce-vs-ctc .js-plotly-plot", timeout=15_000)  # drawn at page load, no model
    snap("ce_vs_ctc.png", page.locator("#ce-vs-ctc"))
    page.get_by_role("tab", name="Robustness").click()  # the committed evaluation, figure and table
    page.wait_for_selector("#robustness-table table", timeout=15_000)
    table = page.locator("#robustness-table").inner_text()
    assert "Pearson r" in table and "model - ce" in table  # and the paired comparison with ce
    # The cascade view: where each model's shifted run differs from its clean run, step x position.
    for name in ("ce", "ctc"):
        page.wait_for_selector(f"#difference-{name} .js-plotly-plot", timeout=15_000)
    snap("app.png")

    # A trace exported earlier replays with no model; a bad file gets a message, not a traceback.
    page.get_by_role("tab", name="Export / import").click()
    trace_file = tmp_path / "trace.json"
    lesson = json.loads((ROOT / "assets" / "lesson" / "shift.json").read_text())
    trace_file.write_text(json.dumps(lesson["shifted"]["ce"]))
    page.locator("#trace-upload input[type=file]").set_input_files(str(trace_file))
    page.wait_for_function("document.querySelector('#import-status')?.innerText.includes('replaying a trace of ce')",
                           timeout=20_000)
    page.wait_for_selector("#import-canvas .mv-canvas", timeout=10_000)
    page.wait_for_selector("#import-heatmap svg.commit-grid", timeout=10_000)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    page.locator("#trace-upload button[aria-label='Clear']").first.click() if page.locator(
        "#trace-upload button[aria-label='Clear']").count() else None
    page.locator("#trace-upload input[type=file]").set_input_files(str(bad))
    page.wait_for_function("document.querySelector('#import-status')?.innerText.includes('not a trace')",
                           timeout=20_000)
    assert page.outside == [], f"requests left loopback: {page.outside}"


def test_the_lesson_loads_recorded_examples_and_points_at_them(page, app_url, tmp_path):
    page.goto(app_url, wait_until="load")
    page.get_by_role("tab", name="Lesson").click()
    page.get_by_role("button", name="Start the lesson").click()
    page.wait_for_function("document.querySelector('#lesson-text')?.innerText.includes('page 1 of')",
                           timeout=20_000)
    page.wait_for_selector("#canvas-ce .mv-canvas", timeout=10_000)  # the recorded decode, no model ran
    assert "recorded, no model ran" in page.locator("#status").inner_text()
    for n in range(2, 6):  # through the shift pages: the cascade maps drawn, the focus moves
        page.get_by_role("button", name="Next →").click()
        page.wait_for_function(f"document.querySelector('#lesson-text')?.innerText.includes('page {n} of')",
                               timeout=20_000)
    assert "difference-ctc" in page.locator("#lesson-focus").inner_html()
    page.wait_for_selector("#difference-ctc .js-plotly-plot", timeout=10_000)
    SCREENS.mkdir(parents=True, exist_ok=True)
    for width, name in ((1440, "lesson_desktop.png"), (390, "lesson_phone.png")):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(tmp_path / name), full_page=True)
        shutil.copy(tmp_path / name, SCREENS / name)
    assert page.outside == [], f"requests left loopback: {page.outside}"
