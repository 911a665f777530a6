"""The app through its API (gradio_client), against `python app.py` started by the app_server
fixture on the small built-in corpus: training streams and cancels, evaluate returns a
confusion matrix, predict answers feature files and WAVs in the course formats, user mistakes
come back as messages, and sessions never see each other's runs."""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

BUILTIN = "Built-in corpus"


def train_args(kind: str, preset: str, max_steps: int, valid_every: int = 20, seed: int = 0) -> tuple:
    """The Train panel's inputs in order: source, built-in format, path, upload, preset, max steps,
    max seconds, learning rate, batch size (0: preset's), seed, validation interval, extra settings
    (the last input, "Start from", keeps its default "none" when left out)."""
    fmt = "libriphone" if kind == "phoneme" else "hw4"
    return (BUILTIN, fmt, "", None, preset, max_steps, 60, 0, 0, seed, valid_every, "")


def run_folder(server, run_name: str) -> Path:
    found = list(server.runs_dir.glob(f"sessions/*/runs/{run_name}"))
    assert len(found) == 1, f"{run_name} not found exactly once under {server.runs_dir}"
    return found[0]


def events_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


@pytest.fixture(scope="module")
def phoneme_run(client):
    """A short finished phoneme run of this client's session (logistic regression: seconds)."""
    out = client.predict(*train_args("phoneme", "logreg", 40), api_name="/phoneme_train")
    assert out[4]["state"] == "finished", out[4]
    return out[4]["run"]


@pytest.fixture(scope="module")
def wav_file(tmp_path_factory) -> Path:
    """A 2-3 s synthesised sentence at 22.05 kHz stereo (the app resamples and mixes it down)."""
    import soundfile as sf

    from hwml.corpus.espeak import synthesize

    syn = synthesize("Shipping a small model to the classroom.", "en-us")
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    sf.write(path, np.stack([syn.wave, syn.wave], axis=1), syn.sample_rate)
    return path


def test_training_streams_increasing_steps_and_outlives_a_cancelled_stream_until_stop(client, app_server):
    """A run belongs to its visitor, not to its stream (README: Identity and fair shares): a
    cancelled stream (a closed page) leaves it training; Stop ends it, best weights kept."""
    job = client.submit(*train_args("phoneme", "medium", 5000, valid_every=10), api_name="/phoneme_train")
    steps, states, latest = [], [], None
    deadline = time.monotonic() + 120
    for out in job:
        latest = out[4]
        states.append(latest["state"])
        if latest["state"] == "running":
            steps.append(latest["step"])
        if len(set(steps)) >= 4 or time.monotonic() > deadline:
            break
    assert len(set(steps)) >= 4, f"no streamed progress: states {states[-5:]}"
    assert steps == sorted(steps) and steps[-1] > steps[0]
    loss_plot = out[2]  # the live curve carries the same steps
    assert max(row[0] for row in loss_plot["data"]) >= steps[0]

    job.cancel()
    run_dir = run_folder(app_server, latest["run"])
    size = (run_dir / "metrics.jsonl").stat().st_size
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (run_dir / "metrics.jsonl").stat().st_size == size:
        time.sleep(0.2)
    assert (run_dir / "metrics.jsonl").stat().st_size > size, "the run stopped with its stream"
    assert events_of(run_dir)[-1]["event"] != "end"
    client.predict(api_name="/phoneme_stop")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        events = events_of(run_dir)
        if events and events[-1]["event"] == "end":
            break
        time.sleep(0.2)
    assert events[-1]["event"] == "end" and events[-1]["reason"] == "stopped"
    assert events[-1]["step"] < 5000
    assert (run_dir / "model.safetensors").is_file() and (run_dir / "config.json").is_file()
    size = (run_dir / "metrics.jsonl").stat().st_size
    time.sleep(1.5)
    assert (run_dir / "metrics.jsonl").stat().st_size == size, "the training thread kept running after Stop"


def test_stop_endpoint_ends_a_running_run_within_seconds(client, app_server):
    job = client.submit(*train_args("speaker", "simple", 5000), api_name="/speaker_train")
    latest = None
    for out in job:
        latest = out[4]
        if latest["state"] == "running" and latest["step"] > 0:
            break
    t0 = time.monotonic()
    client.predict(api_name="/speaker_stop")
    run_dir = run_folder(app_server, latest["run"])
    while time.monotonic() - t0 < 20:
        events = events_of(run_dir)
        if events[-1]["event"] == "end":
            break
        time.sleep(0.1)
    assert events[-1]["reason"] == "stopped"
    assert time.monotonic() - t0 < 10


def test_start_from_an_earlier_run_fine_tunes_it(app_server, client, phoneme_run):
    """The Train panel's "Start from" (the last input): the new run records its init run; another
    session cannot start from this session's run."""
    out = client.predict(*train_args("phoneme", "logreg", 10), f"run:{phoneme_run}", api_name="/phoneme_train")
    assert out[4]["state"] == "finished", out[4]
    config = json.loads((run_folder(app_server, out[4]["run"]) / "config.json").read_text())
    assert config["init"]["from"] == str(run_folder(app_server, phoneme_run))
    assert config["init"]["reinitialised"] == [] and config["init"]["classes_matched"] == len(config["class_names"])
    with pytest.raises(AppError, match="not one of your runs"):
        Client(app_server.url, verbose=False).predict(
            *train_args("phoneme", "logreg", 10), f"run:{phoneme_run}", api_name="/phoneme_train"
        )


def test_evaluate_returns_a_confusion_matrix(client, phoneme_run):
    summary, heatmap, per_class, worst, confusion_csv = client.predict(
        f"run:{phoneme_run}", BUILTIN, "", None, "test", api_name="/phoneme_evaluate"
    )
    assert "Accuracy" in summary
    assert heatmap is not None and heatmap.get("type") == "matplotlib"
    assert per_class["headers"][:2] == ["class", "accuracy"] and len(per_class["data"]) > 10
    assert all(0.0 <= row[1] <= 1.0 for row in per_class["data"])
    assert worst["headers"] == ["true", "predicted", "count", "fraction"]
    with open(confusion_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and set(rows[0]) == {"true", "predicted", "count", "fraction"}
    total = sum(int(r["count"]) for r in rows)
    assert str(total) in summary.replace(",", "")


def test_predict_feature_file_gives_one_row_per_frame(client, phoneme_run, tmp_path):
    feats = np.random.default_rng(0).standard_normal((57, 39)).astype(np.float32)
    path = tmp_path / "utt.npy"
    np.save(path, feats)
    summary, strip, table, out_csv = client.predict(
        f"run:{phoneme_run}", [handle_file(str(path))], api_name="/phoneme_predict_files"
    )
    assert "57 frames" in summary
    assert table["headers"] == ["start", "end", "phone"] and table["data"]
    with open(out_csv, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "frame", "time", "phone", "prob"] and len(rows) == 1 + 57


def test_predict_wav_shows_phone_strip_and_segments(client, phoneme_run, wav_file):
    summary, strip, table, out_csv = client.predict(
        f"run:{phoneme_run}", handle_file(str(wav_file)), api_name="/phoneme_predict_audio"
    )
    from PIL import Image

    with Image.open(strip) as picture:  # drawn by hwml.ui.strip_image and sent as a file: no figure per request
        assert picture.format == "JPEG" and picture.width > 1000 and picture.height > 180
    segs = table["data"]
    assert segs and table["headers"] == ["start", "end", "phone"]
    assert segs[0][0] == 0.0 and all(a[1] == b[0] for a, b in zip(segs, segs[1:])), "segments tile the clip"
    with open(out_csv, newline="") as f:
        assert next(csv.reader(f)) == ["file", "frame", "time", "phone", "prob"]


def test_speaker_predict_wav_gives_top5_with_probabilities(client, wav_file):
    out = client.predict(*train_args("speaker", "simple", 20), api_name="/speaker_train")
    run = out[4]["run"]
    summary, bars, table, out_csv = client.predict(
        f"run:{run}", handle_file(str(wav_file)), api_name="/speaker_predict_audio"
    )
    probs = [row[2] for row in table["data"]]
    assert table["headers"] == ["rank", "speaker", "probability"] and len(probs) == 5
    # the bars are data, drawn by the browser (gr.BarPlot, axis titles in the session's language): the same
    # five speakers and probabilities
    assert bars["x_title"] == "speaker" and bars["y_title"] == "probability"
    bar_rows = bars["value"]["data"]
    assert [r[0] for r in bar_rows] == [row[1] for row in table["data"]]
    assert [r[1] for r in bar_rows] == pytest.approx(probs)
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
    with open(out_csv, newline="") as f:
        header = next(csv.reader(f))
    assert header[:4] == ["Id", "Category", "top1", "p1"]


def test_user_mistakes_come_back_as_messages_and_the_session_goes_on(client, phoneme_run):
    with pytest.raises(AppError, match="choose a run first"):
        client.predict(None, [], api_name="/phoneme_predict_files")
    with pytest.raises(AppError, match="not one of your runs"):
        client.predict("run:../../etc", [], api_name="/phoneme_predict_files")
    with pytest.raises(AppError, match="learning rate"):
        client.predict(BUILTIN, "libriphone", "", None, "logreg", 10, 60, -1, 0, 0, 0, "", api_name="/phoneme_train")
    runs = client.predict(None, api_name="/runs_list")[0]
    assert any(row[0] == phoneme_run for row in runs["data"])


def test_sessions_see_only_their_own_runs_plus_shipped(app_server, client, phoneme_run):
    other = Client(app_server.url, verbose=False)
    assert not any(row[0] == phoneme_run for row in other.predict(None, api_name="/runs_list")[0]["data"])
    with pytest.raises(AppError, match="not one of your runs"):
        other.predict(f"run:{phoneme_run}", [], api_name="/phoneme_predict_files")

    # a run folder under checkpoints/phoneme is shipped: every session lists it and can predict with it
    shipped = app_server.checkpoints / "phoneme"
    shutil.copytree(run_folder(app_server, phoneme_run), shipped, ignore=shutil.ignore_patterns("resume.*"))
    try:
        rows = other.predict(None, api_name="/runs_list")[0]["data"]
        assert any(row[0] == "★ shipped:phoneme" and row[-1] for row in rows)
        feats = np.zeros((12, 39), dtype=np.float32)
        path = app_server.checkpoints.parent / "zeros.npy"
        np.save(path, feats)
        summary = other.predict("shipped:phoneme", [handle_file(str(path))], api_name="/phoneme_predict_files")[0]
        assert "12 frames" in summary
        with pytest.raises(AppError, match="cannot be deleted"):
            other.predict("shipped:phoneme", api_name="/runs_delete")
    finally:
        shutil.rmtree(shipped)


def test_bench_app_quick_prints_its_json_lines(app_server, small_corpus):
    """bench/bench_app.py --quick runs (figures, not pass/fail: speed goals live in the benchmark)."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [
            sys.executable,
            str(repo / "bench" / "bench_app.py"),
            "--quick",
            "--url",
            app_server.url,
            "--corpus",
            str(small_corpus),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    names = {r["bench"] for r in records}
    assert names == {
        "app_cold_start",
        "app_start_to_first_curve_point",
        "app_stop_to_run_ended",
        "app_audio_upload_to_prediction",
    }
    assert all(r["seconds_median"] > 0 for r in records)


def test_second_user_waits_in_the_training_queue_and_sees_its_position(app_server):
    """The training slot is queued by hwml.serve.fair, not by Gradio: the waiting visitor's stream
    says it is queued, at which place, with an estimate, and trains once the slot frees."""
    first = Client(app_server.url, verbose=False)
    second = Client(app_server.url, verbose=False)
    running = first.submit(*train_args("phoneme", "medium", 5000), api_name="/phoneme_train")
    for out in running:
        if out[4]["state"] == "running":
            break
    waiting = second.submit(*train_args("speaker", "simple", 5), api_name="/speaker_train")
    queued = None
    deadline = time.monotonic() + 60
    for out in waiting:
        if out[4]["state"] == "queued":
            queued = out[4]
            break
        if time.monotonic() > deadline:
            break
    assert queued is not None and queued["queue_position"] == 1, queued
    assert "number 1 in the queue" in queued["message"], queued
    first.predict(api_name="/phoneme_stop")
    result = waiting.result(timeout=120)
    assert result[4]["state"] == "finished"


def test_predict_course_test_folder_zip_gives_the_submission_csv(client, phoneme_run, small_corpus, tmp_path):
    import zipfile

    folder = small_corpus / "libriphone"
    archive = tmp_path / "libriphone.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.rglob("*"):
            if path.is_file():
                zf.write(path, f"libriphone/{path.relative_to(folder)}")
    summary, strip, preview, out_csv = client.predict(
        f"run:{phoneme_run}", [handle_file(str(archive))], api_name="/phoneme_predict_files"
    )
    assert "Course submission" in summary and strip is None
    with open(out_csv, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Id", "Class"]
    assert [int(r[0]) for r in rows[1:]] == list(range(len(rows) - 1))
    from hwml.data import load_dataset

    assert len(rows) - 1 == len(load_dataset(folder).test)


def test_uploads_over_the_size_cap_are_refused_with_a_message(app_server, client, tmp_path):
    """HWML_MAX_UPLOAD_MB (the fixture sets a small cap) reaches launch(max_file_size): the client
    is told the cap and refuses, and the server itself refuses the bytes (413) and keeps none."""
    import httpx

    cap = app_server.max_upload_mb * 2**20
    big, fits = tmp_path / "big.npy", tmp_path / "fits.npy"
    for path, size in ((big, cap + 1), (fits, cap - 4096)):
        with open(path, "wb") as f:
            f.truncate(size)  # sparse: instant
    with pytest.raises(ValueError, match=f"exceeds the maximum file size of {cap} bytes"):
        client.predict("shipped:phoneme", [handle_file(str(big))], api_name="/phoneme_predict_files")
    upload = app_server.url + "gradio_api/upload"
    with open(big, "rb") as f:
        refused = httpx.post(upload, files={"files": (big.name, f)}, timeout=120)
    assert refused.status_code == 413 and f"maximum allowed size of {cap} bytes" in refused.text
    assert not list((app_server.runs_dir.parent / "gradio").rglob(big.name))
    with open(fits, "rb") as f:
        assert httpx.post(upload, files={"files": (fits.name, f)}, timeout=120).status_code == 200
