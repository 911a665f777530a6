"""The disk budget over everything a visitor causes (hwml.serve.disk, hwml.serve.workspace): the
visitor who overflows it pays first, nothing in use is pruned, Gradio's cache counts and its old
copies go first, extractions go when done or of no use, per-request outputs are bounded, an
upload that cannot fit is refused, an upload's HW4 feature cache lives inside it. Small budgets
come from the environment (`HWML_RUNS_DISK_MB`), as on a server."""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from hwml.data import FrameSet, UtteranceSet, read_hw4, write_hw4, write_libriphone
from hwml.errors import HwmlError
from hwml.serve.sources import SOURCE_ZIP, BuiltinCorpus, discard_prepared, resolve_source
from hwml.serve.workspace import Workspace

KB = 1024


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Workspace:
    """A workspace from the environment, as the app makes it, with a 20 KiB budget."""
    monkeypatch.setenv("HWML_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("HWML_CHECKPOINTS_DIR", str(tmp_path / "ckpt"))
    monkeypatch.setenv("HWML_RUNS_DISK_MB", str(20 / 1024))
    ws = Workspace.from_env()
    assert ws.disk_budget_bytes == 20 * KB
    return ws


RUN_BYTES = 4 * KB - 64  # a run's weights: five runs and their configs fit 20 KiB, six do not


def finished_run(ws: Workspace, owner: str, age_s: float, size: int = RUN_BYTES) -> Path:
    run = ws.new_run_dir(owner, "phoneme", "logreg")
    (run / "model.safetensors").write_bytes(b"x" * size)
    (run / "config.json").write_text('{"finished": true}')
    stamp = time.time() - age_s
    os.utime(run, (stamp, stamp))
    return run


def test_the_visitor_who_overflows_the_budget_loses_their_own_oldest_runs_first(workspace):
    others = [finished_run(workspace, "visitor-b", age_s=1000 + i) for i in range(2)]  # older than any of a's
    mine = [finished_run(workspace, "visitor-a", age_s=500 - 100 * i) for i in range(4)]  # 6 x 4 KiB > 20 KiB
    removed = workspace.prune(owner="visitor-a")
    assert removed == [mine[0]], removed
    assert all(p.exists() for p in others + mine[1:])
    assert workspace.used_bytes() <= workspace.disk_budget_bytes
    # without a visitor to blame (a run ended on its own): the oldest of all go first
    finished_run(workspace, "visitor-a", age_s=0)
    assert workspace.prune() == [others[1]]


def test_nothing_in_use_is_pruned_a_running_jobs_run_and_its_data(workspace):
    upload = workspace.new_upload_dir("visitor-a")
    (upload / "src").mkdir()
    (upload / "src" / "train_11.npy").write_bytes(b"d" * 14 * KB)
    stamp = time.time() - 5000
    os.utime(upload, (stamp, stamp))
    running = finished_run(workspace, "visitor-a", age_s=4000)
    old = finished_run(workspace, "visitor-a", age_s=3000)
    workspace.in_use = lambda: {running.resolve(), (upload / "src").resolve()}  # data folder inside the upload
    removed = workspace.prune(owner="visitor-a")
    assert removed == [old] and upload.exists() and running.exists()


def test_gradio_cache_counts_and_its_old_copies_go_first_but_never_the_pages_examples(workspace, tmp_path):
    cache = tmp_path / "gradio"
    (cache / "a").mkdir(parents=True)
    old, example, young = cache / "a" / "old.wav", cache / "a" / "example.wav", cache / "a" / "young.wav"
    for path in (old, example, young):
        path.write_bytes(b"w" * 8 * KB)
    for path in (old, example):
        stamp = time.time() - 3600
        os.utime(path, (stamp, stamp))
    workspace.gradio_cache = cache
    workspace.in_use = lambda: {example.resolve()}
    run = finished_run(workspace, "visitor-a", age_s=10)
    assert workspace.used_bytes() == 24 * KB + RUN_BYTES + len('{"finished": true}')
    removed = workspace.prune(owner="visitor-a")
    assert removed == [old] and example.exists() and young.exists() and run.exists()


def course_zip(path: Path, with_data: bool = True, pad: int = 0) -> Path:
    """A zip of a tiny libriphone folder (or of notes only)."""
    folder = path.parent / (path.stem + "-src")
    if with_data:
        g = torch.Generator().manual_seed(0)
        lens = [30, 40]
        feats = torch.randn(sum(lens), 39, generator=g)
        labels = torch.tensor([i % 41 for i in range(sum(lens))])
        offsets = torch.tensor([0, 30, 70])
        write_libriphone(
            folder / "libriphone", FrameSet(feats, labels, offsets, ["u0", "u1"], [str(i) for i in range(41)], 1)
        )
    else:
        (folder / "notes").mkdir(parents=True)
        (folder / "notes" / "readme.txt").write_text("no course data")
    if pad:
        (folder / ("libriphone" if with_data else "notes") / "pad.bin").write_bytes(os.urandom(pad))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                zf.write(file, file.relative_to(folder))
    return path


def uploads(ws: Workspace, owner: str) -> list[Path]:
    folder = ws.session_dir(owner) / "uploads"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_extractions_go_when_done_or_when_no_course_data_is_found(monkeypatch, tmp_path):
    monkeypatch.setenv("HWML_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("HWML_RUNS_DISK_MB", "50")
    ws = Workspace(tmp_path / "runs", tmp_path / "ckpt", 50 * 2**20, BuiltinCorpus())
    good = course_zip(tmp_path / "good.zip")
    prepare = resolve_source(ws, "visitor-a", "phoneme", SOURCE_ZIP, upload=str(good))
    assert prepare(lambda m: None).is_dir() and len(uploads(ws, "visitor-a")) == 1
    discard_prepared(ws, prepare)  # Evaluate's finally: the extraction is done with
    assert uploads(ws, "visitor-a") == []
    with pytest.raises(HwmlError, match="not a course data folder"):
        resolve_source(ws, "visitor-a", "phoneme", SOURCE_ZIP, upload=str(course_zip(tmp_path / "no.zip", False)))
    assert uploads(ws, "visitor-a") == []  # the failed detection's extraction went with the error


def test_an_upload_that_can_never_fit_is_refused_before_unpacking_and_one_that_does_not_fit_now_too(
    workspace, tmp_path
):
    big = course_zip(tmp_path / "big.zip", pad=30 * KB)  # unpacks to > the 20 KiB budget
    with pytest.raises(HwmlError, match="unpacks to .* over the .* limit"):
        resolve_source(workspace, "visitor-a", "phoneme", SOURCE_ZIP, upload=str(big))
    assert uploads(workspace, "visitor-a") == []
    running = finished_run(workspace, "visitor-b", age_s=100, size=14 * KB)  # in use: cannot be pruned
    workspace.in_use = lambda: {running.resolve()}
    middle = course_zip(tmp_path / "middle.zip", pad=6 * KB)  # fits the budget, not beside the running job
    with pytest.raises(HwmlError, match="disk budget"):
        resolve_source(workspace, "visitor-a", "phoneme", SOURCE_ZIP, upload=str(middle))
    assert uploads(workspace, "visitor-a") == [] and running.exists()


def test_per_request_outputs_keep_only_the_visitors_newest(workspace):
    made = []
    for i in range(workspace.OUTPUTS_KEPT + 5):
        out = workspace.new_output_dir("visitor-a")
        (out / "predictions.csv").write_text(f"Id,Class\n{i},0\n")
        stamp = time.time() - 1000 + i
        os.utime(out, (stamp, stamp))
        made.append(out)
    left = set((workspace.session_dir("visitor-a") / "outputs").iterdir())
    assert left == set(made[-workspace.OUTPUTS_KEPT :])


def test_leftovers_of_a_killed_server_in_scratch_and_tmp_go_at_start(workspace):
    for folder in (workspace.scratch_dir(), workspace.temp_dir()):
        (folder / "hwml-data-x").mkdir(parents=True)
        (folder / "hwml-data-x" / "part.npy").write_bytes(b"0" * KB)
    run = finished_run(workspace, "visitor-a", age_s=1)
    workspace.clear_leftovers()
    assert not any(workspace.scratch_dir().iterdir()) and not any(workspace.temp_dir().iterdir())
    assert run.exists()


def test_an_uploads_hw4_feature_cache_lives_inside_the_upload(monkeypatch, tmp_path):
    runs = tmp_path / "runs"
    monkeypatch.setenv("HWML_RUNS_DIR", str(runs))
    monkeypatch.setenv("HWML_CACHE", str(tmp_path / "home-cache"))
    g = torch.Generator().manual_seed(0)
    lens = [40, 50, 60]
    part = UtteranceSet(
        torch.randn(sum(lens), 40, generator=g),
        torch.tensor([0, 40, 90, 150]),
        ["a", "b", "c"],
        torch.tensor([0, 1, 0]),
        ["s0", "s1"],
    )
    upload = runs / "sessions" / "s-0123456789abcdef" / "uploads" / "u1-1" / "src"
    root = write_hw4(upload / "Dataset", part)
    data = read_hw4(root, cache=True)
    assert data.train.feats.shape == (150, 40)
    assert list(upload.glob(".hwml-cache-Dataset/part0.npy")) and not (tmp_path / "home-cache").exists()
    again = read_hw4(root, cache=True).train.feats.numpy()  # from the cache beside the upload
    np.testing.assert_array_equal(again, data.train.feats.numpy())
    np.testing.assert_allclose(np.sort(again.sum(1)), np.sort(part.feats.numpy().sum(1)), rtol=1e-5)


def test_the_disk_watch_prunes_growth_no_event_prunes_for(workspace):
    runs = [finished_run(workspace, "visitor-a", age_s=100 - i) for i in range(6)]  # over the budget
    workspace.watch_disk(interval=0.05)
    for _ in range(200):  # bounded: up to 10 s
        if workspace.used_bytes() <= workspace.disk_budget_bytes:
            break
        time.sleep(0.05)
    assert workspace.used_bytes() <= workspace.disk_budget_bytes
    assert not runs[0].exists() and runs[-1].exists()
