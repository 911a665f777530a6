"""The app's machinery without a browser: training slots and queue positions, stopping (button,
closed stream, closed tab, nobody watching), time caps, per-session folders and pruning.

Training itself is replaced by a fake `hwml.api.train_run` that emits engine-shaped events
every 20 ms until its stop flag is set, so these tests take seconds and test only hwml.serve.jobs and
hwml.serve.workspace."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from fake_training import fake_train_run, wait_for  # noqa: E402

from hwml import api
from hwml.errors import HwmlError
from hwml.serve.jobs import JobLimits, JobRegistry, TrainingSlots
from hwml.serve.sources import BuiltinCorpus
from hwml.serve.workspace import Workspace


@pytest.fixture(autouse=True)
def fake_training(monkeypatch):
    monkeypatch.setattr(api, "train_run", fake_train_run)


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    return Workspace(
        tmp_path / "runs",
        tmp_path / "checkpoints",
        disk_budget_bytes=10**9,
        corpus=BuiltinCorpus(root=tmp_path / "unused"),
    )


def submit(registry, workspace, session="a", kind="phoneme", **kw):
    args = {"preset": "simple", "overrides": {}, "max_steps": None, "max_seconds": None, "seed": 0}
    args.update(kw)
    run_dir = workspace.new_run_dir(session, kind, args["preset"])
    return registry.submit(session, kind, run_dir=run_dir, prepare=lambda report: Path("data"), **args)


def test_stream_yields_increasing_steps_and_stop_ends_within_a_second(workspace):
    registry = JobRegistry(JobLimits(max_training=1))
    job = submit(registry, workspace)
    steps = []
    for view in job.stream(interval=0.05):
        steps.append(view.step)
        if view.step >= 10:
            break
    assert steps == sorted(steps) and steps[-1] >= 10
    t0 = time.monotonic()
    registry.stop("a", "phoneme")
    assert job.join(timeout=1.0), "the run did not end within a second of Stop"
    assert time.monotonic() - t0 < 1.0
    assert job.poll().state == "stopped"


def test_closing_the_stream_leaves_the_run_going_and_a_new_stream_reattaches(workspace):
    registry = JobRegistry(JobLimits(max_training=1))
    job = submit(registry, workspace)
    stream = job.stream(interval=0.05)
    for view in stream:
        if view.step > 2:
            break
    stream.close()  # what Gradio does when the event is cancelled or the tab goes away
    assert not job.join(timeout=0.5), "the run ended with its page"
    again = registry.live("a", "phoneme")
    assert again is job
    for view in again.stream(interval=0.05):
        if view.step > 20:
            break
    assert view.events[0]["event"] == "start" and view.step > 20  # the whole curve, not only what is new
    job.stop()
    assert job.join(2.0) and registry.live("a", "phoneme") is None


def test_queued_run_knows_its_position_and_starts_when_the_slot_frees(workspace):
    registry = JobRegistry(JobLimits(max_training=1))
    first = submit(registry, workspace, session="a")
    wait_for(lambda: first.poll().state == "running")
    second = submit(registry, workspace, session="b")
    assert wait_for(lambda: second.poll().position == 1)
    assert "number 1 in the queue" in second.poll().message
    first.stop()
    assert wait_for(lambda: second.poll().state == "running")
    second.stop()
    assert second.join(2.0)


def test_a_queued_run_can_be_cancelled_before_it_starts(workspace):
    registry = JobRegistry(JobLimits(max_training=1))
    first = submit(registry, workspace, session="a")
    second = submit(registry, workspace, session="b")
    assert wait_for(lambda: second.poll().state == "queued" and second.poll().position == 1)
    second.stop()
    assert second.join(2.0) and second.poll().state == "stopped"
    first.stop()
    assert first.join(2.0)
    assert registry.slots.busy == 0


def test_unload_stops_every_run_of_the_session_and_only_those(workspace):
    registry = JobRegistry(JobLimits(max_training=2))
    a1 = submit(registry, workspace, session="a", kind="phoneme")
    a2 = submit(registry, workspace, session="a", kind="speaker")
    b = submit(registry, workspace, session="b", kind="phoneme")
    assert wait_for(lambda: a1.poll().state == "running" and a2.poll().state != "queued")
    assert registry.stop_session("a") >= 1
    assert a1.join(2.0) and a2.join(2.0)
    assert b.alive
    b.stop()
    assert b.join(2.0)


def test_nobody_polling_cancels_a_queued_run_but_not_a_training_one(workspace):
    registry = JobRegistry(JobLimits(max_training=1, orphan_seconds=0.5))
    first = submit(registry, workspace, session="a")
    second = submit(registry, workspace, session="b")
    assert second.join(timeout=5.0), "an unwatched queued run kept its place"
    assert second.poll().state == "stopped"
    assert first.alive, "a training run stopped because nobody watched it"
    first.stop()
    assert first.join(2.0)


def test_time_cap_applies_to_every_run(workspace):
    registry = JobRegistry(JobLimits(max_training=1, max_run_seconds=0.3))
    job = submit(registry, workspace, max_seconds=3600)
    assert job.max_seconds == 0.3
    assert job.join(timeout=5.0) and "time limit" in job.poll().message


def test_one_run_per_session_and_task(workspace):
    registry = JobRegistry(JobLimits(max_training=2))
    job = submit(registry, workspace)
    with pytest.raises(HwmlError, match="still going"):
        submit(registry, workspace)
    job.stop()
    assert job.join(2.0)
    submit(registry, workspace).stop()  # after it ended, a new one may start


def test_failed_preparation_reports_the_error(workspace):
    registry = JobRegistry(JobLimits(max_training=1))

    def bad(report):
        raise HwmlError("corpus: cannot build it")

    run_dir = workspace.new_run_dir("a", "phoneme", "simple")
    job = registry.submit(
        "a",
        "phoneme",
        run_dir=run_dir,
        prepare=bad,
        preset="simple",
        overrides={},
        max_steps=5,
        max_seconds=None,
        seed=0,
    )
    views = list(job.stream(interval=0.05))
    assert views[-1].state == "failed" and views[-1].error == "corpus: cannot build it"
    assert registry.slots.busy == 0


def test_slots_serve_first_come_first_served():
    slots = TrainingSlots(1)
    stop = threading.Event()
    assert slots.acquire(1, stop)
    order, positions = [], {}

    def waiter(ticket):
        slots.acquire(ticket, stop, on_wait=lambda p: positions.setdefault(ticket, p))
        order.append(ticket)
        time.sleep(0.05)
        slots.release(ticket)

    threads = []
    for ticket in (2, 3):
        threads.append(threading.Thread(target=waiter, args=(ticket,)))
        threads[-1].start()
        assert wait_for(lambda: slots.position(ticket) > 0)  # noqa: B023 (called at once)
    assert positions == {2: 1, 3: 2}
    slots.release(1)
    for t in threads:
        t.join(5)
    assert order == [2, 3]


# --------------------------------------------------------------------------------- workspace


def make_run(folder: Path, task="phoneme", size=0):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"task": task, "preset": "simple", "best_valid_acc": 0.5}))
    (folder / "model.safetensors").write_bytes(b"x" * size)
    return folder


def test_sessions_see_their_own_runs_and_the_shipped_ones(workspace):
    run_a = workspace.new_run_dir("a", "phoneme", "simple")
    (run_a / "config.json").write_text(json.dumps({"task": "phoneme", "preset": "simple"}))
    make_run(workspace.checkpoints / "phoneme")
    keys_a = [e.key for e in workspace.visible_runs("a", "phoneme")]
    keys_b = [e.key for e in workspace.visible_runs("b", "phoneme")]
    assert keys_a == [f"run:{run_a.name}", "shipped:phoneme"] and keys_b == ["shipped:phoneme"]
    with pytest.raises(HwmlError, match="not one of your runs"):
        workspace.find_run("b", f"run:{run_a.name}")
    with pytest.raises(HwmlError, match="not one of your runs"):
        workspace.find_run("a", "run:../../../etc")
    with pytest.raises(HwmlError, match="cannot be deleted"):
        workspace.delete_run("a", "shipped:phoneme")
    with pytest.raises(HwmlError, match="still training"):
        workspace.delete_run("a", f"run:{run_a.name}", active={run_a.resolve()})
    workspace.delete_run("a", f"run:{run_a.name}")
    assert not run_a.exists()


def test_session_folders_are_hashes_not_client_strings(workspace):
    assert workspace.session_dir("../../etc").parent == workspace.root / "sessions"
    assert workspace.session_dir("a") != workspace.session_dir("b")


def test_prune_removes_the_oldest_runs_past_the_budget_and_never_an_active_one(tmp_path):
    ws = Workspace(tmp_path / "runs", tmp_path / "ckpt", disk_budget_bytes=2500, corpus=BuiltinCorpus())
    runs = []
    for i in range(4):
        run = ws.new_run_dir("a", "phoneme", "simple")
        (run / "model.safetensors").write_bytes(b"x" * 1000)
        (run / "config.json").write_text("{}")
        t = time.time() - 100 + i
        os.utime(run, (t, t))
        runs.append(run)
    removed = ws.prune(active={runs[0].resolve()})
    assert runs[0].exists(), "an active run was pruned"
    assert removed == [runs[1], runs[2]]
    assert runs[3].exists()
