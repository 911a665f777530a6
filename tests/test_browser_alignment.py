"""Forced alignment in a real browser (Debian Chromium, Playwright, headless) against `python app.py`
(app_server fixture) with the repository's phoneme checkpoint shipped: Predict with a typed
transcript shows the alignment strips and the aligned-phones table; the Learn tab's "From
transcripts to frame labels" draws the Viterbi picture for a built-in sentence and aligns an
uploaded clip. Screenshots go to test-output/ (or $HWML_TEST_OUTPUT) for a person to look at.
"""

from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api")
from browser_helpers import OUT, app_page, chromium, needs_chromium  # noqa: E402

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, app_server, shipped_phoneme, request):
    with app_page(browser, app_server, f"{request.node.name}-end.png") as pg:
        yield pg


@pytest.fixture(scope="module")
def clip(sentence_clip) -> dict:
    return sentence_clip


def open_tab(page, name: str) -> None:
    page.locator("button[role=tab]:visible", has_text=name).first.click()


def test_predict_with_a_transcript_shows_the_alignment(page, clip):
    open_tab(page, "Predict")
    page.wait_for_function("() => document.querySelector('#phoneme-predict-run input').value.includes('shipped')")
    page.locator("#phoneme-predict-transcript textarea").fill(clip["text"])
    page.locator("#phoneme-predict-audio input[type=file]").set_input_files(str(clip["wav"]))
    page.get_by_role("button", name="Predict audio").click()
    page.wait_for_function(
        "() => (document.querySelector('#phoneme-predict-summary') || {}).innerText?.includes('Forced alignment')"
    )
    page.wait_for_selector("#phoneme-predict-strip img")
    table = page.locator("#phoneme-predict-table").inner_text()
    assert all(h in table for h in ("phone", "word", "free", "agree")) and "FLOWERS" in table, table[:300]
    page.locator("#phoneme-predict-strip").scroll_into_view_if_needed()
    page.screenshot(path=str(OUT / "phoneme-predict-alignment.png"), full_page=True)
    page.locator("#phoneme-predict-strip").screenshot(path=str(OUT / "phoneme-predict-alignment-strips.png"))


def test_learn_tab_draws_the_viterbi_path_and_aligns_a_clip(page, clip):
    open_tab(page, "Learn")
    page.get_by_text("3. From transcripts to frame labels").wait_for()
    page.wait_for_function("() => document.querySelector('#learn-align-run input').value.includes('shipped')")
    page.click("#learn-align")
    page.wait_for_selector("#learn-viterbi-plot img")
    page.wait_for_selector("#learn-align-strips img")
    assert "eSpeak" in page.locator("#learn-align-summary").inner_text()
    assert "aligned" in page.locator("#learn-align-table").inner_text()
    page.locator("#learn-viterbi-plot").screenshot(path=str(OUT / "learn-viterbi.png"))
    page.locator("#learn-align-strips").screenshot(path=str(OUT / "learn-alignment-strips.png"))
    page.screenshot(path=str(OUT / "learn-alignment.png"), full_page=True)

    # try your own sentence: the same run, an uploaded clip and its words
    page.locator("#learn-align-own-audio input[type=file]").set_input_files(str(clip["wav"]))
    page.locator("#learn-align-own-text textarea").fill(clip["text"])
    page.click("#learn-align-own")
    page.wait_for_function(
        "() => document.querySelector('#learn-align-summary').innerText.includes('Forced alignment')"
    )
    page.wait_for_selector("#learn-viterbi-plot img")
    assert "FLOWERS" in page.locator("#learn-align-table").inner_text()
