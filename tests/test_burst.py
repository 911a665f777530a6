"""A class pressing Predict together: predictions served side by side with others equal the same
predictions served alone (CSV byte for byte), a hostile upload in the crowd fails alone, every
run's model is loaded once (and again when its weights change), and the per-request stage
timings the burst benchmark reads are written. Real voices: the clips in assets/clips."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hwml import timing
from hwml.api import predict_run, preload_runs, warm_run
from hwml.errors import HwmlError
from hwml.runs import cache

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {kind: ROOT / "checkpoints" / kind for kind in ("phoneme", "speaker")}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """6 different recordings, 2-9 s, each two or three real clips strung together."""
    folder = tmp_path_factory.mktemp("burst-clips")
    sources = sorted((ROOT / "assets" / "clips").glob("*.flac"))
    out = []
    for i in range(6):
        parts = [sf.read(sources[(i * 5 + j * 7) % len(sources)], dtype="float32")[0] for j in range(2 + i % 2)]
        path = folder / f"student{i}.wav"
        sf.write(path, np.concatenate([np.concatenate([p, np.zeros(2000, np.float32)]) for p in parts]), 16000)
        out.append(path)
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "empty.wav").write_bytes(b"")
    (folder / "corrupt.flac").write_bytes(b"fLaC" + os.urandom(3000))
    return [folder / "empty.wav", folder / "corrupt.flac"]


@pytest.mark.parametrize("kind", ["phoneme", "speaker"])
def test_predictions_served_together_equal_each_served_alone(kind, clips, hostile, tmp_path):
    alone = []
    for i, clip in enumerate(clips):
        predict_run(SHIPPED[kind], [clip], tmp_path / f"alone{i}.csv")
        alone.append((tmp_path / f"alone{i}.csv").read_bytes())

    def one(i_path):
        i, path = i_path
        out = tmp_path / f"together{i}.csv"
        try:
            predict_run(SHIPPED[kind], [path], out)
            return out.read_bytes()
        except HwmlError as exc:
            return exc

    jobs = list(enumerate([*clips[:3], hostile[0], *clips[3:], hostile[1]]))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, jobs))
    good = [r for r in results if isinstance(r, bytes)]
    bad = [r for r in results if not isinstance(r, bytes)]
    assert good == alone  # byte for byte, in the same order
    assert len(bad) == 2 and all(isinstance(e, HwmlError) for e in bad)
    assert "empty.wav" in str(bad[0]) and "corrupt.flac" in str(bad[1])


def test_a_run_is_loaded_once_and_again_when_its_weights_change(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(SHIPPED["phoneme"], run)
    first = cache.loaded_run(run)
    assert cache.loaded_run(run) is first
    weights = run / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a training run saved better weights
    again = cache.loaded_run(run)
    assert again is not first and again[1] == first[1]
    assert cache.loaded_run(run) is again


def test_a_damaged_run_is_an_error_for_its_caller_and_not_kept(tmp_path, clips):
    run = tmp_path / "run"
    shutil.copytree(SHIPPED["speaker"], run)
    (run / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(HwmlError):
        cache.loaded_run(run)
    preload_runs([run])  # logs, never raises: the app must start with a damaged shipped model
    shutil.copyfile(SHIPPED["speaker"] / "model.safetensors", run / "model.safetensors")
    model, config = cache.loaded_run(run)
    assert config["task"] == "speaker"


def test_warming_a_run_keeps_it_loaded_for_the_first_request(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(SHIPPED["speaker"], run)
    warm_run(run)
    kept = cache.loaded_run(run)
    predict_run(run, [ROOT / "assets" / "clips" / "george_1.flac"], tmp_path / "p.csv")
    assert cache.loaded_run(run) is kept


def test_each_request_writes_its_stage_timings(tmp_path, clips, monkeypatch):
    log = tmp_path / "timings.jsonl"
    monkeypatch.setenv("HWML_TIMINGS", str(log))
    for kind in ("phoneme", "speaker"):
        with timing.request(f"{kind}_predict_audio"):
            predict_run(SHIPPED[kind], [clips[0]], tmp_path / f"{kind}.csv")
    predict_run(SHIPPED["speaker"], [clips[1]], tmp_path / "untimed.csv")  # outside a request: no line
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["endpoint"] for r in rows] == ["phoneme_predict_audio", "speaker_predict_audio"]
    for r in rows:
        assert {"decode", "features", "model", "csv"} <= set(r["stages"])
        assert 0 < sum(r["stages"].values()) <= r["total"]


def test_phone_strip_image_colours_each_phone_alike_in_every_strip():
    from hwml.ui.strip_image import NAME_WIDTH, SPEC_HEIGHT, STRIP_HEIGHT, WIDTH, phone_strips_image

    times = np.arange(100) * 0.01 + 0.0125
    logmel = np.random.default_rng(0).normal(size=(100, 40))
    a = [(0.0, 0.4, "sil"), (0.4, 0.7, "aa"), (0.7, 1.0, "s")]
    b = [(0.0, 0.5, "aa"), (0.5, 1.0, "sil")]
    img = phone_strips_image(times, logmel, [("aligned", a), ("free", b)])
    assert img.dtype == np.uint8 and img.shape[1] == NAME_WIDTH + WIDTH + 8
    row_a, row_b = SPEC_HEIGHT + 3, SPEC_HEIGHT + STRIP_HEIGHT + 3  # near the top of each strip: no label there
    x = lambda t: NAME_WIDTH + int(t * WIDTH)  # noqa: E731
    assert (img[row_a, x(0.55)] == img[row_b, x(0.2)]).all()  # "aa" in both strips
    assert (img[row_a, x(0.2)] == img[row_b, x(0.8)]).all()  # "sil" in both strips
    assert not (img[row_a, x(0.2)] == img[row_a, x(0.55)]).all()  # two phones, two colours
    assert img[:SPEC_HEIGHT, NAME_WIDTH : NAME_WIDTH + WIDTH].std() > 10  # the spectrogram is drawn
    empty = phone_strips_image(np.zeros(0), np.zeros((0, 40)), [("", [])])
    assert empty.shape[0] > SPEC_HEIGHT


def test_burst_through_the_app_answers_everyone_and_fails_only_the_hostile(app_server, clips, hostile):
    added = [kind for kind in SHIPPED if not (app_server.checkpoints / kind).exists()]
    for kind in added:  # the shipped models, for this test only: other tests expect their own there
        shutil.copytree(SHIPPED[kind], app_server.checkpoints / kind)
    try:
        burst_through_the_app(app_server, clips, hostile)
    finally:
        for kind in added:
            shutil.rmtree(app_server.checkpoints / kind)


def burst_through_the_app(app_server, clips, hostile):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    clients = [Client(app_server.url, verbose=False) for _ in range(4)]

    def args(kind, path):
        return (f"shipped:{kind}", handle_file(str(path))) + (("",) if kind == "phoneme" else ())

    plan = [("phoneme" if i % 2 == 0 else "speaker", clip) for i, clip in enumerate(clips)]
    plan += [("phoneme", hostile[0]), ("speaker", hostile[1])]
    jobs = [
        clients[i % 4].submit(*args(kind, path), api_name=f"/{kind}_predict_audio")
        for i, (kind, path) in enumerate(plan)
    ]
    together = []
    for job, (_kind, path) in zip(jobs, plan):
        if path in hostile:
            with pytest.raises(AppError, match=path.name):
                job.result(timeout=120)
        else:
            together.append(Path(job.result(timeout=120)[3]).read_bytes())
    alone = [
        Path(clients[0].predict(*args(kind, path), api_name=f"/{kind}_predict_audio")[3]).read_bytes()
        for kind, path in plan[: len(clips)]
    ]
    norm = lambda csv: b"\n".join(line.split(b",", 1)[1] for line in csv.splitlines()[1:])  # noqa: E731
    assert [norm(c) for c in together] == [norm(c) for c in alone]  # the upload path (column 1) differs


def test_bench_burst_quick_prints_its_json_lines():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_burst.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    bursts = [r for r in lines if r["bench"] == "burst"]
    assert bursts and bursts[0]["clients"] == 4 and bursts[0]["errors"] == 0
    assert {"decode", "features", "model", "figure", "csv"} <= set(bursts[0]["breakdown_ms"])
    assert any(r["bench"] == "burst_first_prediction" for r in lines)
