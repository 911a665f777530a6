"""A run belongs to the browser, not the page (hwml.serve.identity), in Debian Chromium:
start a run, reload, and the Train panel re-attaches to its live curves; a second tab of the
same browser sees it (Train panel and Runs tab); with every page of it closed the run goes on,
and a page opened later stops it; another browser never sees it.

Against `python app.py` (app_server fixture: visitors kept apart, HWML_PRIVATE_RUNS=1)."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("playwright.sync_api")
from browser_helpers import OUT, TIMEOUT_MS, chromium, needs_chromium  # noqa: E402

pytestmark = needs_chromium

STEP = "() => Number(document.querySelector('#phoneme-train-progress [data-step]')?.dataset.step || 0)"


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def open_page(context, url):
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#phoneme-train-start")
    return page


def wait_attached(page, run: str, past_step: int) -> int:
    """The Train panel shows `run` live: its name in the status, its step going past `past_step`."""
    page.wait_for_function(
        f"() => document.querySelector('#phoneme-train-status').innerText.includes('{run}') && ({STEP})() > {past_step}"
    )
    return page.evaluate(STEP)


def test_a_run_survives_a_reload_and_a_second_tab_sees_it(browser, app_server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = open_page(context, app_server.url)
    page.get_by_label("Max steps").fill("100000")
    page.get_by_label("Max seconds").fill("110")
    page.click("#phoneme-train-start")
    page.wait_for_function(f"() => ({STEP})() > 0")
    status = page.locator("#phoneme-train-status").inner_text()
    run = next(word.strip("`*") for word in status.split() if word.strip("`*").startswith("phoneme-"))
    step = page.evaluate(STEP)

    page.reload()  # a new Gradio session: the token in local storage names the same visitor
    page.wait_for_selector("#phoneme-train-start")
    step = wait_attached(page, run, step)
    page.screenshot(path=str(OUT / "identity-after-reload.png"), full_page=True)

    second = open_page(context, app_server.url)  # a second tab of the same browser
    step = wait_attached(second, run, step)
    second.locator("button[role=tab]:visible", has_text="Runs").first.click()
    second.locator("#runs-refresh").click()
    second.wait_for_function(f"() => document.querySelector('#runs-table').innerText.includes('{run}')")
    second.screenshot(path=str(OUT / "identity-second-tab-runs.png"), full_page=True)

    stranger_context = browser.new_context(viewport={"width": 1400, "height": 1000})
    stranger = open_page(stranger_context, app_server.url)
    stranger.locator("button[role=tab]:visible", has_text="Runs").first.click()
    stranger.locator("#runs-refresh").click()
    stranger.wait_for_function("() => document.querySelector('#runs-table') !== null")
    time.sleep(1.0)
    assert run not in stranger.locator("#runs-table").inner_text()
    assert run not in stranger.locator("#phoneme-train-status").inner_text()
    stranger_context.close()

    page.close()
    second.close()  # every page of the browser closed: the run goes on
    metrics = next(app_server.runs_dir.glob(f"sessions/*/runs/{run}")) / "metrics.jsonl"
    time.sleep(5.0)  # past Gradio's heartbeat (2 s in the test server): the pages are gone
    events = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    assert events[-1].get("event") != "end", "the run ended with its pages"

    back = open_page(context, app_server.url)
    wait_attached(back, run, step)
    back.click("#phoneme-train-stop")
    back.wait_for_function("() => document.querySelector('#phoneme-train-status').innerText.includes('stopped')")
    back.screenshot(path=str(OUT / "identity-stopped-later.png"), full_page=True)
    context.close()
    events = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    assert events[-1].get("event") == "end" and events[-1].get("reason") == "stopped"
