"""The optional TensorBoard event log (issue 22, item 7): a tiny run asked for it writes an event
file beside metrics.jsonl whose scalars TensorBoard's own reader gives back equal to the logged
losses; a run not asked for writes none."""

from __future__ import annotations

import pytest
from test_engine import ToyTask

from hwml.runs.folder import read_metrics
from hwml.train.engine import train

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def test_a_run_with_tensorboard_writes_the_logged_losses(tmp_path):
    train(ToyTask(), {"max_steps": 12, "valid_every": 6, "log_every": 2, "tensorboard": 1}, tmp_path)
    assert list(tmp_path.glob("events.out.tfevents.*")) and (tmp_path / "metrics.jsonl").is_file()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    logged = {e["step"]: e["loss"] for e in read_metrics(tmp_path) if e["event"] == "step"}
    read = {s.step: s.value for s in events.Scalars("train/loss")}
    assert len(logged) >= 5 and read.keys() == logged.keys()
    assert all(abs(read[k] - logged[k]) <= 1e-6 * max(1.0, abs(logged[k])) for k in logged)  # stored as float32
    valid = {e["step"]: e["valid_acc"] for e in read_metrics(tmp_path) if e["event"] == "valid"}
    assert {s.step for s in events.Scalars("valid/acc")} == valid.keys()


def test_no_event_file_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("HWML_TENSORBOARD", raising=False)
    train(ToyTask(), {"max_steps": 4, "valid_every": 4}, tmp_path / "plain")
    assert not list((tmp_path / "plain").glob("events.out.tfevents.*"))
    monkeypatch.setenv("HWML_TENSORBOARD", "1")
    train(ToyTask(), {"max_steps": 4, "valid_every": 4}, tmp_path / "env")
    assert list((tmp_path / "env").glob("events.out.tfevents.*"))
