"""The example clips of the Predict panels and the Learn tab in a real browser (issue 22, item 5):
against `python app.py` (app_server fixture) with the repository's shipped phoneme model, a click on
an example of assets/clips fills the audio (and the transcript) and the panel shows its result (the
phone strip and table; the Learn tab's feature views), with no recording and no upload.
Screenshots go to test-output/ (or $HWML_TEST_OUTPUT)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")
from browser_helpers import OUT, app_page, chromium, needs_chromium  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "checkpoints" / "phoneme"
pytestmark = [
    needs_chromium,
    pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(), reason="no shipped phoneme model"),
]


@pytest.fixture(scope="module")
def page(app_server):
    """The app with the shipped phoneme model as its shipped checkpoint (removed afterwards)."""
    target = app_server.checkpoints / "phoneme"
    shutil.copytree(SHIPPED, target)
    try:
        with chromium() as browser, app_page(browser, app_server, "predict-examples-end.png") as pg:
            yield pg
    finally:
        shutil.rmtree(target, ignore_errors=True)


def open_tab(page, name: str) -> None:
    page.locator("button[role=tab]:visible", has_text=name).first.click()


def test_clicking_a_phoneme_example_predicts_it_without_recording(page):
    open_tab(page, "Phoneme (HW2)")
    open_tab(page, "Predict")
    examples = page.locator("#phoneme-predict-examples")
    examples.get_by_text("SO YOU WANT TO BE MORE PRODUCTIVE").first.click()
    page.wait_for_function(
        "() => (document.querySelector('#phoneme-predict-transcript textarea')?.value || '').includes('PRODUCTIVE')"
    )
    page.wait_for_selector("#phoneme-predict-strip img")  # bounded by the page's default timeout
    page.wait_for_function(
        "() => /Forced alignment|phone segments/.test(document.querySelector('#phoneme-predict-summary').innerText)"
    )
    table = page.locator("#phoneme-predict-table").inner_text()
    assert "phone" in table and len([w for w in table.split() if w.replace(".", "").isdigit()]) > 6
    page.screenshot(path=str(OUT / "phoneme-predict-example.png"), full_page=True)


def test_the_speaker_panel_offers_the_shipped_voices(page):
    open_tab(page, "Speaker (HW4)")
    open_tab(page, "Predict")
    examples = page.locator("#speaker-predict-examples")
    for clip in ("woman-0036_3.flac", "george_3.flac"):
        assert examples.get_by_text(clip).count() >= 1


def test_clicking_a_learn_example_draws_the_features_of_a_real_voice(page):
    open_tab(page, "Learn")
    assert page.locator("#learn-features-plot img").count() == 0  # nothing drawn before the click
    page.locator("#learn-clip-examples").get_by_text("woman-0036_3.flac").first.click()
    page.wait_for_selector("#learn-features-plot img")  # bounded by the page's default timeout
    page.screenshot(path=str(OUT / "learn-clip-example.png"), full_page=True)
