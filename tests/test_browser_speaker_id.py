""" "Who is speaking?" in a real browser (Debian Chromium driven by Python Playwright, headless),
against `python app.py` (app_server fixture) with the repository's shipped speaker model as its
checkpoint: enrol two people by clicking the example clips (assets/clips), identify a clip and see
the ranked table, compare a pair and see the verdict against the threshold, draw the voice map;
and Predict says what the shipped model's classes are. Screenshots go to test-output/ (or
$HWML_TEST_OUTPUT) for a person to look at.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")
from browser_helpers import OUT, app_page, chromium, needs_chromium  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "checkpoints" / "speaker"
pytestmark = [
    needs_chromium,
    pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(), reason="no shipped speaker model"),
]


@pytest.fixture(scope="module")
def shipped_speaker(app_server):
    """The repository's shipped speaker model as the app's shipped checkpoint (removed afterwards)."""
    target = app_server.checkpoints / "speaker"
    shutil.copytree(SHIPPED, target)
    yield json.loads((target / "config.json").read_text())
    shutil.rmtree(target, ignore_errors=True)


@pytest.fixture(scope="module")
def page(app_server, shipped_speaker):
    with chromium() as browser, app_page(browser, app_server, "speaker-who-end.png") as pg:
        yield pg


def open_tab(page, name: str) -> None:
    page.locator("button[role=tab]:visible", has_text=name).first.click()


def text_of(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text()


def wait_text(page, elem_id: str, needle: str) -> None:
    page.wait_for_function(
        "([id, s]) => (document.querySelector('#' + id)?.innerText || '').includes(s)", arg=[elem_id, needle]
    )


def enrol_example(page, label: str, clip: str, expect: str) -> None:
    """Click the example row with this clip (fills name + audio), then Enrol."""
    page.locator("#speaker-who-enrol-examples").get_by_text(clip, exact=True).first.click()
    page.wait_for_function(
        "(n) => document.querySelector('#speaker-who-name textarea, #speaker-who-name input').value === n", arg=label
    )
    page.wait_for_selector(
        "#speaker-who-audio audio, #speaker-who-audio [data-testid=waveform-controls]", state="attached"
    )
    page.click("#speaker-who-enrol")
    wait_text(page, "speaker-who-status", expect)


def test_predict_says_what_the_shipped_model_knows(page, shipped_speaker):
    open_tab(page, "Speaker (HW4)")
    open_tab(page, "Predict")
    wait_text(page, "speaker-predict-about", "Knows the")
    about = text_of(page, "speaker-predict-about")
    assert str(len(shipped_speaker["class_names"])) in about and "Who is speaking?" in about
    page.screenshot(path=str(OUT / "speaker-predict-about.png"))


def test_enrol_identify_compare_and_map(page, shipped_speaker):
    open_tab(page, "Speaker (HW4)")
    open_tab(page, "Who is speaking?")
    page.wait_for_function("() => document.querySelector('#speaker-who-run input').value.includes('shipped')")
    wait_text(page, "speaker-who-model", "threshold")

    enrol_example(page, "Woman 0036", "woman-0036_1.flac", "Enrolled Woman 0036 (1 clip)")
    enrol_example(page, "Woman 0036", "woman-0036_2.flac", "Enrolled Woman 0036 (2 clips)")
    enrol_example(page, "Man 0482", "man-0482_1.flac", "2 people enrolled")
    people = text_of(page, "speaker-who-people")
    assert "Woman 0036" in people and "Man 0482" in people and "woman-0036_2.flac" in people
    page.locator("#speaker-who-people").screenshot(path=str(OUT / "speaker-who-enrolled.png"))
    page.get_by_role("button", name="Save as an enrolment file (.json)").click()
    wait_text(page, "speaker-who-file", "speakers")  # the name shows as "speakers" + ".json"

    page.locator("#speaker-who-identify-examples").get_by_text("woman-0036_3.flac", exact=True).first.click()
    page.wait_for_selector(
        "#speaker-who-query audio, #speaker-who-query [data-testid=waveform-controls]", state="attached"
    )
    page.click("#speaker-who-identify")
    wait_text(page, "speaker-who-sentence", "Most like:")
    page.wait_for_selector("#speaker-who-bars img")
    ranking = text_of(page, "speaker-who-ranking")
    assert "Woman 0036" in ranking and "Man 0482" in ranking and "cosine" in ranking
    sentence = text_of(page, "speaker-who-sentence")
    assert "threshold" in sentence
    page.screenshot(path=str(OUT / "speaker-who-identify.png"), full_page=True)

    page.locator("#speaker-who-pair-examples").get_by_text("woman 0036 / man 0482").first.click()
    page.wait_for_selector("#speaker-who-b audio, #speaker-who-b [data-testid=waveform-controls]", state="attached")
    page.click("#speaker-who-same")
    wait_text(page, "speaker-who-verdict", "threshold")
    verdict = text_of(page, "speaker-who-verdict")
    assert verdict.startswith(("Same speaker", "Different speakers"))
    assert ("calibrated" in verdict) or ("uncalibrated default" in verdict)
    page.wait_for_selector("#speaker-who-scale img")

    page.click("#speaker-who-map-button")
    page.wait_for_selector("#speaker-who-map img")
    wait_text(page, "speaker-who-map-caption", "2 enrolled people")
    page.locator("#speaker-who-map").scroll_into_view_if_needed()
    page.screenshot(path=str(OUT / "speaker-who-map.png"), full_page=True)
