"""Predict's TextGrid download in a real browser (Debian Chromium, Playwright, headless) against
`python app.py` (app_server fixture) with the repository's phoneme checkpoint shipped: a recording
gets a Praat TextGrid of its predicted phones, with a transcript one of the words, the aligned
phones and the free prediction; the API's outputs stay the panel's four."""

from __future__ import annotations

from pathlib import Path

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


def downloaded_tiers(page, tmp_path: Path) -> dict:
    """The TextGrid the panel offers, fetched as the browser would, read with praatio."""
    from praatio import textgrid

    link = page.locator("#phoneme-predict-textgrid a[href]").first
    link.wait_for()
    assert ".TextGrid" in page.locator("#phoneme-predict-textgrid").inner_text()  # the file's name
    response = page.request.get(link.get_attribute("href"))
    assert response.ok
    path = tmp_path / "got.TextGrid"
    path.write_bytes(response.body())
    tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    return {name: [(e.start, e.end, e.label) for e in tg.getTier(name).entries] for name in tg.tierNames}


def predict(page, clip, transcript: str, done: str) -> None:
    page.locator("button[role=tab]:visible", has_text="Predict").first.click()
    page.wait_for_function("() => document.querySelector('#phoneme-predict-run input').value.includes('shipped')")
    page.locator("#phoneme-predict-transcript textarea").fill(transcript)
    page.locator("#phoneme-predict-audio input[type=file]").set_input_files(str(clip["wav"]))
    if transcript:
        page.get_by_role("button", name="Predict audio").click()
    page.wait_for_function(
        f"() => (document.querySelector('#phoneme-predict-summary') || {{}}).innerText?.includes({done!r})"
    )


def test_predict_offers_the_predicted_phones_as_a_textgrid(page, clip, tmp_path, shipped_phoneme):
    from hwml.phoneme.predict import predict_files

    predict(page, clip, "", "phone segments")
    tiers = downloaded_tiers(page, tmp_path)
    want = predict_files(shipped_phoneme, [clip["wav"]], tmp_path / "local.csv")["files"][0]["segments"]
    assert list(tiers) == ["phones"] and tiers["phones"] == [tuple(s) for s in want]
    page.locator("#phoneme-predict-textgrid").scroll_into_view_if_needed()
    page.screenshot(path=str(OUT / "phoneme-predict-textgrid.png"), full_page=True)


def test_predict_with_a_transcript_offers_the_alignment_as_a_textgrid(page, clip, tmp_path, shipped_phoneme):
    from hwml.align.clip import align_audio

    predict(page, clip, clip["text"], "Forced alignment")
    tiers = downloaded_tiers(page, tmp_path)
    r = align_audio(shipped_phoneme, clip["wav"], clip["text"])
    assert list(tiers) == ["words", "phones", "predicted"]
    assert tiers["phones"] == [tuple(s) for s in r.phones]
    assert tiers["predicted"] == [tuple(s) for s in r.free_segments]
    assert [w for _, _, w in tiers["words"]] == r.words


def test_the_api_still_answers_with_four_outputs(app_server, shipped_phoneme, clip):
    from gradio_client import Client, handle_file

    client = Client(app_server.url, verbose=False)
    for transcript in ("", clip["text"]):
        result = client.predict(
            "shipped:phoneme", handle_file(str(clip["wav"])), transcript, api_name="/phoneme_predict_audio"
        )
        assert len(result) == 4 and str(result[3]).endswith(".csv")
