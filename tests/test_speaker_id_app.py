"""The app's "Who is speaking?" (Speaker tab): hwml.serve.who_is_speaking's roster, sentences and
example clips in-process, then the whole flow through the API (gradio_client against the
app_server fixture): enrol two people from the real clips in assets/clips, identify a clip,
same speaker? with the calibrated threshold (and the "uncalibrated default" of an older run),
the voice map, the enrolment file out and back in, and user mistakes as messages.

The speaker model is a tiny run trained here (seconds); its answers on unseen clips are poor,
so ranking checks use a person's own enrolment clips, where the order follows from the maths."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hwml.errors import HwmlError
from hwml.serve import who_is_speaking as who

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT / "assets" / "clips"
TINY = [
    "--preset",
    "boss",
    "--max-steps",
    "40",
    "--quiet",
    "--seed",
    "0",
    *[
        f"--set={kv}"
        for kv in (
            "d_model=16",
            "heads=2",
            "ff_dim=32",
            "depth=1",
            "emb_dim=16",
            "batch_size=8",
            "segment_len=64",
            "warmup_steps=2",
            "valid_every=10",
            "valid_fraction=0.4",
        )
    ],
]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_run(small_corpus, tmp_path_factory) -> Path:
    """A tiny boss run (calibrated threshold in config.json) trained through the CLI."""
    out = tmp_path_factory.mktemp("who") / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "hwml", "train", "speaker", str(small_corpus / "speaker"), "--out", str(out), *TINY],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "verification" in json.loads((out / "config.json").read_text())
    return out


def clip(stem: str, n: int) -> str:
    path = CLIPS / f"{stem}_{n}.flac"
    assert path.is_file(), f"{path} is missing: assets/clips ships with the repository"
    return str(path)


# ------------------------------------------------------------------------------ in-process


def test_example_clips_ship_small_and_credited():
    found = who.example_clips()
    assert len(found["enrol"]) == 10 and len(found["identify"]) == 5 and len(found["pairs"]) == 4
    files = sorted(CLIPS.glob("*.flac"))
    assert sum(f.stat().st_size for f in files) < 3 * 2**20
    readme = (ROOT / "assets" / "README.md").read_text()
    for f in files:
        assert f.name in readme, f"{f.name} is not credited in assets/README.md"
    assert "CC BY-SA 4.0" in readme and "Apache-2.0" in readme
    import soundfile as sf

    info = sf.info(files[0])
    assert info.samplerate == 16000 and info.channels == 1


def test_classes_description_from_config_or_class_names():
    given = {"class_names": ["a", "b"], "classes_description": "Knows the 2 voices of the test corpus."}
    assert who.classes_description(given) == "Knows the 2 voices of the test corpus."
    text = who.classes_description({"class_names": ["s1", "s2", "s3", "s4", "s5"]})
    assert text.startswith("Knows the 5 speakers it was trained on (s1, s2, s3 and 2 more)")
    assert "Who is speaking?" in text
    shipped = json.loads((ROOT / "checkpoints" / "speaker" / "config.json").read_text())
    assert who.run_note(ROOT / "checkpoints" / "speaker") == who.classes_description(shipped)
    assert str(len(shipped["class_names"])) in who.run_note(ROOT / "checkpoints" / "speaker")
    assert who.run_note(ROOT / "no-such-run") == ""


def test_roster_enrols_again_for_another_model_and_keeps_files_to_their_model(tiny_run, tmp_path):
    from hwml.models import build_model
    from hwml.runs.folder import read_config
    from hwml.speaker.identify import open_model

    model_a = open_model(tiny_run)
    config = read_config(tiny_run)
    torch.manual_seed(1)
    model_b = open_model((build_model(config["model"]), config))  # same shape, other weights
    roster = who.Roster().add(model_a, "Ann", [clip("woman-0036", 1)]).add(model_a, " Ann ", [clip("woman-0036", 2)])
    roster = roster.add(model_a, "Bob", [clip("man-0482", 1)])
    assert roster.rows()[0][:2] == ("Ann", 2) and roster.names == ["Ann", "Bob"]
    with pytest.raises(HwmlError, match="already enrolled"):
        roster.add(model_a, "Bob", [clip("man-0482", 1)])
    for model in (model_a, model_b):  # another model: enrolled again from clips
        found = who.identify_clip(model, roster, clip("man-0482", 1))
        assert found["ranked"][0][0] == "Bob" and found["ranked"][0][1] == pytest.approx(1.0, abs=1e-5)
        assert found["sentence"].startswith("Most like: Bob (1.00).")

    saved = roster.save(model_a, tmp_path / "people.json")
    loaded = who.Roster().load(model_a, saved)
    assert [r[1] for r in loaded.rows()] == [2, 1] and "enrolment file" in loaded.rows()[0][2]
    assert who.identify_clip(model_a, loaded, clip("man-0482", 1))["ranked"][0][0] == "Bob"
    with pytest.raises(HwmlError, match="another model"):
        who.Roster().load(model_b, saved)
    mixed = loaded.add(model_a, "Cy", [clip("girl-0006", 1)])
    with pytest.raises(HwmlError, match="Ann came from an enrolment file made with another model"):
        mixed.enrollments(model_b)
    assert mixed.remove("Ann").names == ["Bob", "Cy"] and mixed.names == ["Ann", "Bob", "Cy"]
    with pytest.raises(HwmlError, match="not enrolled"):
        mixed.remove("Zed")


def test_sentences_say_the_threshold_and_whether_it_is_calibrated():
    assert who.threshold_words({"threshold": 0.5, "calibrated": False}) == "0.50 (uncalibrated default)"
    words = who.threshold_words({"threshold": 0.4321, "calibrated": True, "eer": 0.052, "n_trials": 1234})
    assert words == "0.43 (calibrated: equal error rate 5.2% over 1,234 validation pairs)"


# --------------------------------------------------------------------------- through the app


@pytest.fixture(scope="module")
def client(app_server):
    from gradio_client import Client

    return Client(app_server.url, verbose=False)


@pytest.fixture(scope="module")
def models(app_server, client, tiny_run):
    """The tiny run as the app's shipped speaker model, and a copy without a calibrated threshold
    among this client's own runs. Removed afterwards."""
    from hwml.serve.workspace import session_folder_name

    shipped = app_server.checkpoints / "speaker"
    shutil.copytree(tiny_run, shipped, ignore=shutil.ignore_patterns("resume.*"))
    old = app_server.runs_dir / "sessions" / session_folder_name(client.session_hash) / "runs" / "speaker-old"
    shutil.copytree(tiny_run, old, ignore=shutil.ignore_patterns("resume.*"))
    config = json.loads((old / "config.json").read_text())
    del config["verification"]
    (old / "config.json").write_text(json.dumps(config))
    config = json.loads((shipped / "config.json").read_text())
    yield {
        "shipped": "shipped:speaker",
        "old": "run:speaker-old",
        "n_known": len(config["class_names"]),
        "threshold": config["verification"]["threshold"],
    }
    shutil.rmtree(shipped, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def test_enrol_identify_compare_and_map_through_the_api(client, models, tmp_path):
    from gradio_client import handle_file

    shipped = models["shipped"]
    info = client.predict(shipped, api_name="/speaker_who_model")
    assert f"threshold {models['threshold']:.2f} (calibrated" in info

    people, status, *_ = client.predict(
        shipped, "Ann", handle_file(clip("woman-0036", 1)), [], api_name="/speaker_who_enrol"
    )
    assert "Enrolled **Ann** (1 clip)" in status
    people, status, pick, audio, files = client.predict(
        shipped, "Ann", None, [handle_file(clip("woman-0036", 2))], api_name="/speaker_who_enrol"
    )
    assert "(2 clips)" in status and audio is None
    people, status, *_ = client.predict(
        shipped, "Bob", handle_file(clip("man-0482", 1)), [], api_name="/speaker_who_enrol"
    )
    assert people["headers"] == ["name", "clips", "from"]
    assert [row[:2] for row in people["data"]] == [["Ann", 2], ["Bob", 1]]
    assert "woman-0036_1.flac, woman-0036_2.flac" == people["data"][0][2]

    # an enrolment clip ranks its own person first: Bob's only clip scores 1.00, Ann's first clip
    # is nearer her two-clip mean than anyone else's
    for query, first in ((clip("man-0482", 1), "Bob"), (clip("woman-0036", 1), "Ann")):
        sentence, ranking, bars = client.predict(shipped, handle_file(query), api_name="/speaker_who_identify")
        assert ranking["headers"] == ["rank", "name", "cosine", "above threshold"]
        rows = ranking["data"]
        assert [r[0] for r in rows] == [1, 2] and rows[0][1] == first and rows[0][2] >= rows[1][2]
        assert sentence.startswith(f"Most like: {first} ({rows[0][2]:.2f}).") and "calibrated" in sentence
        assert bars["type"] == "matplotlib"

    verdict, scale = client.predict(
        shipped, handle_file(clip("man-0482", 1)), handle_file(clip("man-0482", 1)), api_name="/speaker_who_same"
    )
    assert verdict.startswith(f"Same speaker: score 1.00 ≥ threshold {models['threshold']:.2f} (calibrated")
    assert scale["type"] == "matplotlib"
    verdict, _ = client.predict(
        models["old"], handle_file(clip("woman-0036", 3)), handle_file(clip("george", 3)), api_name="/speaker_who_same"
    )
    assert "threshold 0.50 (uncalibrated default)" in verdict
    assert verdict.startswith(("Same speaker: score", "Different speakers: score"))
    assert "not calibrated" in client.predict(models["old"], api_name="/speaker_who_model")

    picture, caption = client.predict(shipped, handle_file(clip("girl-0006", 3)), True, api_name="/speaker_who_map")
    assert picture["type"] == "matplotlib"
    assert f"{models['n_known']} speakers the model was trained on" in caption
    assert "2 enrolled people" in caption and "the clip to identify" in caption

    saved = client.predict(shipped, api_name="/speaker_who_save")
    data = json.loads(Path(saved).read_text())
    assert data["format"] == "hwml-speaker-enrollments" and [s["name"] for s in data["speakers"]] == ["Ann", "Bob"]
    assert [s["n_clips"] for s in data["speakers"]] == [2, 1]

    people, status, *_ = client.predict("Bob", api_name="/speaker_who_remove")
    assert [r[0] for r in people["data"]] == ["Ann"]
    people, status, *_ = client.predict(api_name="/speaker_who_clear")
    assert not people["data"] or people["data"] == [["", "", ""]]
    people, status, *_ = client.predict(shipped, handle_file(saved), api_name="/speaker_who_load")
    assert [r[:2] for r in people["data"]] == [["Ann", 2], ["Bob", 1]] and "Loaded speakers.json" in status
    sentence, ranking, _ = client.predict(shipped, handle_file(clip("man-0482", 1)), api_name="/speaker_who_identify")
    assert ranking["data"][0][1] == "Bob"


def test_mistakes_come_back_as_messages(app_server, models):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    fresh = Client(app_server.url, verbose=False)  # a new session: nobody enrolled
    with pytest.raises(AppError, match="nobody is enrolled yet"):
        fresh.predict(models["shipped"], handle_file(clip("george", 1)), api_name="/speaker_who_identify")
    with pytest.raises(AppError, match="give the person a name"):
        fresh.predict(models["shipped"], "  ", handle_file(clip("george", 1)), [], api_name="/speaker_who_enrol")
    with pytest.raises(AppError, match="at least one clip"):
        fresh.predict(models["shipped"], "Ann", None, [], api_name="/speaker_who_enrol")
    with pytest.raises(AppError, match="give two clips"):
        fresh.predict(models["shipped"], handle_file(clip("george", 1)), None, api_name="/speaker_who_same")
    with pytest.raises(AppError, match="not one of your runs"):
        fresh.predict(
            models["old"], handle_file(clip("george", 1)), handle_file(clip("george", 2)), api_name="/speaker_who_same"
        )  # another session's run
    junk = app_server.checkpoints.parent / "junk.json"
    junk.write_text("{not json")
    with pytest.raises(AppError, match="junk.json"):
        fresh.predict(models["shipped"], handle_file(str(junk)), api_name="/speaker_who_load")
