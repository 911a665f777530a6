"""The app in a real browser: Debian Chromium driven by Python Playwright, headless.

Against `python app.py` (app_server fixture, small built-in corpus): in each task tab start
training and see the curve drawn (the SVG line's path data and colour, not just an element),
stop it, open the confusion matrix, upload a WAV in Predict and see the result, overlay the run's
curve in Runs. Screenshots go
to test-output/ (or $HWML_TEST_OUTPUT) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("playwright.sync_api")
from browser_helpers import OUT, app_page, chromium, needs_chromium  # noqa: E402

pytestmark = needs_chromium

BAR_MARK = 'path[aria-roledescription="bar"]'  # one per bar of a gr.BarPlot (Vega-Lite, drawn in the browser)
LINE_POINTS = """(id) => Array.from(document.querySelectorAll(`#${id} svg path[aria-roledescription="line mark"]`))
    .map(p => ({points: (p.getAttribute('d') || '').split(/[ML]/).filter(Boolean).length,
                stroke: getComputedStyle(p).stroke}))"""


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, app_server, request):
    """A fresh browser session on the app; its last state is saved as <test>-end.png."""
    with app_page(browser, app_server, f"{request.node.name}-end.png") as pg:
        yield pg


@pytest.fixture(scope="module")
def wav_file(tmp_path_factory) -> Path:
    import soundfile as sf

    from hwml.corpus.espeak import synthesize

    syn = synthesize("Seven quick voices read the weather report.", "en-us")
    path = tmp_path_factory.mktemp("browser-audio") / "speech.wav"
    sf.write(path, np.asarray(syn.wave, dtype=np.float32), syn.sample_rate)
    return path


def open_tab(page, name: str) -> None:
    page.locator("button[role=tab]:visible", has_text=name).first.click()


def train_until_curve_is_drawn(page, kind: str) -> None:
    page.click(f"#{kind}-train-start")
    page.wait_for_function(
        f"() => {{ const lines = ({LINE_POINTS})('{kind}-loss-plot');"
        " return lines.some(l => l.points >= 2 && l.stroke !== 'none'); }"
    )
    lines = page.evaluate(LINE_POINTS, f"{kind}-loss-plot")
    drawn = [line for line in lines if line["points"] >= 2]
    assert drawn and all(line["stroke"] not in ("none", "") for line in drawn), lines
    assert page.locator(f"#{kind}-train-progress [data-step]").get_attribute("data-step") != "0"
    page.screenshot(path=str(OUT / f"{kind}-train-running.png"), full_page=True)


def stop_training(page, kind: str) -> None:
    page.click(f"#{kind}-train-stop")
    page.wait_for_function(
        f"() => document.querySelector('#{kind}-train-status').innerText.includes('stopped')", timeout=30_000
    )
    assert page.locator(f"#{kind}-train-progress [data-state]").get_attribute("data-state") == "stopped"
    page.screenshot(path=str(OUT / f"{kind}-train-stopped.png"), full_page=True)


def test_phoneme_tab_train_stop_evaluate_predict(page, wav_file):
    train_until_curve_is_drawn(page, "phoneme")
    stop_training(page, "phoneme")

    open_tab(page, "Evaluate")
    page.wait_for_function("() => document.querySelector('#phoneme-eval-run input').value.includes('phoneme-')")
    page.click("#phoneme-eval-button")
    page.wait_for_selector("#phoneme-eval-heatmap img")
    assert "Accuracy" in page.locator("#phoneme-eval-summary").inner_text()
    page.screenshot(path=str(OUT / "phoneme-evaluate.png"), full_page=True)

    open_tab(page, "Predict")
    page.wait_for_function("() => document.querySelector('#phoneme-predict-run input').value.includes('phoneme-')")
    page.locator("#phoneme-predict-audio input[type=file]").set_input_files(str(wav_file))
    page.wait_for_selector("#phoneme-predict-strip img")
    assert "phone segments" in page.locator("#phoneme-predict-summary").inner_text()
    table = page.locator("#phoneme-predict-table").inner_text()
    assert "phone" in table and len([w for w in table.split() if w.replace(".", "").isdigit()]) > 6
    page.screenshot(path=str(OUT / "phoneme-predict.png"), full_page=True)

    open_tab(page, "Runs")
    page.get_by_role("radio", name="train loss").check()
    page.locator("#runs-pick input").click()
    page.locator("[role=option]", has_text="phoneme-").first.click()
    page.wait_for_function(f"() => ({LINE_POINTS})('runs-plot').some(l => l.points >= 2 && l.stroke !== 'none')")
    assert "run 1: phoneme-" in page.locator("#runs-legend").inner_text()
    page.screenshot(path=str(OUT / "runs-overlay.png"), full_page=True)


def test_speaker_tab_train_stop_evaluate_predict(page, wav_file):
    open_tab(page, "Speaker (HW4)")
    train_until_curve_is_drawn(page, "speaker")
    stop_training(page, "speaker")

    open_tab(page, "Evaluate")
    page.wait_for_function("() => document.querySelector('#speaker-eval-run input').value.includes('speaker-')")
    page.click("#speaker-eval-button")
    page.wait_for_selector("#speaker-eval-heatmap img")
    page.screenshot(path=str(OUT / "speaker-evaluate.png"), full_page=True)

    open_tab(page, "Predict")
    page.wait_for_function("() => document.querySelector('#speaker-predict-run input').value.includes('speaker-')")
    page.locator("#speaker-predict-audio input[type=file]").set_input_files(str(wav_file))
    page.wait_for_function(f"() => document.querySelectorAll('#speaker-predict-bars svg {BAR_MARK}').length == 5")
    table = page.locator("#speaker-predict-table").inner_text()
    assert "probability" in table and all(f"\n{k}" in table for k in range(1, 6)), table
    assert "%" in page.locator("#speaker-predict-summary").inner_text()
    page.screenshot(path=str(OUT / "speaker-predict.png"), full_page=True)


def test_user_mistake_shows_a_message_not_a_traceback(page):
    open_tab(page, "Predict")
    page.get_by_role("button", name="Predict files").first.click()
    toast = page.locator(".toast-body, [data-testid=toast-body]").first
    toast.wait_for()
    text = toast.inner_text()
    assert ("choose a run first" in text or "upload feature files" in text) and "Traceback" not in text
    page.screenshot(path=str(OUT / "user-error.png"), full_page=True)


def test_a_file_over_the_upload_cap_is_refused_with_a_message(page, app_server, tmp_path):
    big = tmp_path / "long-lecture.wav"
    with open(big, "wb") as f:
        f.truncate(app_server.max_upload_mb * 2**20 + 1)  # the browser refuses it before reading a byte
    open_tab(page, "Predict")
    page.locator("#phoneme-predict-audio input[type=file]").set_input_files(str(big))
    toast = page.locator(".toast-body, [data-testid=toast-body]").first
    toast.wait_for()
    text = toast.inner_text()
    assert "exceed the maximum allowed size" in text and big.name in text, text
    page.screenshot(path=str(OUT / "upload-too-big.png"), full_page=True)


def test_learn_tab_shows_features_and_a_pitfall(page):
    open_tab(page, "Learn")
    page.click("#learn-features")
    page.wait_for_selector("#learn-features-plot img")
    page.get_by_text("4. Padding without masks").click()
    page.click("#learn-pitfall-4")
    page.get_by_text("with a length mask it does not move").wait_for()
    page.screenshot(path=str(OUT / "learn.png"), full_page=True)
