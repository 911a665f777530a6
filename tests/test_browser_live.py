"""The Live tab in a real browser: Chromium's fake microphone plays a clip this test writes (eSpeak NG
speech, the built-in corpus's engine) into the streaming gr.Audio; the scrolling spectrogram with
its phone strip and a speaker's name appear while it streams (`python app.py`, app_server fixture,
with the repository's shipped phoneme and speaker models as its checkpoints). Screenshots go to
test-output/ (or $HWML_TEST_OUTPUT) and to the test's tmp folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("playwright.sync_api")
from browser_helpers import ARGS, CHROMIUM, OUT, TIMEOUT_MS, needs_chromium  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {kind: ROOT / "checkpoints" / kind for kind in ("phoneme", "speaker")}
pytestmark = [
    needs_chromium,
    pytest.mark.skipif(
        not all((p / "model.safetensors").is_file() for p in SHIPPED.values()), reason="no shipped models"
    ),
]


@pytest.fixture(scope="module")
def shipped_models(app_server):
    """Both shipped models as the app's checkpoints (removed afterwards)."""
    made = []
    for kind, source in SHIPPED.items():
        target = app_server.checkpoints / kind
        if not target.exists():
            shutil.copytree(source, target)
            made.append(target)
    yield
    for target in made:
        shutil.rmtree(target, ignore_errors=True)


def write_clip(path: Path) -> Path:
    """Two voices, a second of silence between them, then silence: 16-bit mono WAV at 48 kHz (what
    Chromium's fake capture device plays, looped)."""
    import soundfile as sf

    from hwml.corpus.espeak import synthesize

    parts = []
    for text, voice in [
        ("Say sheep slowly, then the river and the kitchen.", "en-us+f3"),
        ("A cold wind blew across the open field.", "en-gb-x-rp+m3"),
    ]:
        syn = synthesize(text, voice)
        parts += [syn.wave.astype(np.float32), np.zeros(syn.sample_rate, np.float32)]
    sf.write(path, np.concatenate(parts), syn.sample_rate, subtype="PCM_16")
    return path


def test_the_microphone_streams_into_the_live_view(app_server, shipped_models, tmp_path):
    from playwright.sync_api import sync_playwright

    clip = write_clip(tmp_path / "live-clip.wav")
    args = ARGS + [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={clip}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1100}, permissions=["microphone"])
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(app_server.url)
            page.wait_for_selector("#phoneme-train-start")
            page.locator("button[role=tab]:visible", has_text="Live").first.click()
            page.wait_for_selector("#live-mic")
            page.wait_for_function("() => (document.querySelector('#live-phoneme-run input')?.value || '').length > 0")
            page.locator("#live-mic button.record-button").first.click()
            page.wait_for_selector("#live-strip-image", timeout=60_000)
            page.wait_for_function(
                "() => (document.querySelector('#live-who')?.innerText || '').includes('Speaking now')",
                timeout=60_000,
            )
            first = page.locator("#live-who").inner_text()
            shots.append(tmp_path / "live-speaking.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
            # the strip keeps filling: a later picture differs from the first one
            src = page.locator("#live-strip-image").get_attribute("src")
            page.wait_for_function(
                "(s) => document.querySelector('#live-strip-image')?.src !== s", arg=src, timeout=30_000
            )
            page.wait_for_function(
                "() => /\\d+ phone segments in view/.test(document.querySelector('#live-status')?.innerText || '')"
                " && !/ 0 phone segments/.test(document.querySelector('#live-status')?.innerText || '')",
                timeout=30_000,
            )
            names = {first}
            for _ in range(40):  # up to ~20 s of the looped clip: the answer moves with the voice
                page.wait_for_timeout(500)
                names.add(page.locator("#live-who").inner_text())
                if len(names) >= 3:
                    break
            shots.append(tmp_path / "live-later.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
            context.close()
        finally:
            browser.close()
    for shot in shots:
        shutil.copy(shot, OUT / shot.name)
    assert "Speaking now" in first
    assert len(names) >= 2, names  # the name (or silence) changed while the clip played
