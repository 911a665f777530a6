"""Fair shares of the training slots (hwml.serve.fair, hwml.serve.jobs): the share rule, the wait
estimate (exact on a fake clock), a running run cut to its share while another waits, one run
per visitor, a cap per client address, and Stop ending a data import between files.

Training is a fake `hwml.api.train_run` (engine-shaped events every 20 ms until its stop flag),
so only the queueing and stopping machinery is under test."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fake_training import fake_train_run, wait_for  # noqa: E402

from hwml import api
from hwml.errors import HwmlError
from hwml.importers.common import featurise_all, stop_imports_on
from hwml.serve.fair import SLACK_SECONDS, TrainingSlots, fair_share
from hwml.serve.identity import Visitor
from hwml.serve.jobs import JobLimits, JobRegistry


@pytest.fixture(autouse=True)
def fake_training(monkeypatch):
    monkeypatch.setattr(api, "train_run", fake_train_run)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def submit(registry, tmp_path, visitor, kind="phoneme", prepare=None, **kw):
    owner = visitor.owner if isinstance(visitor, Visitor) else visitor
    run_dir = tmp_path / f"{owner}-{kind}-{time.monotonic_ns()}"
    args = {"preset": "simple", "overrides": {}, "max_steps": None, "max_seconds": None, "seed": 0, **kw}
    return registry.submit(visitor, kind, run_dir=run_dir, prepare=prepare or (lambda report: Path("data")), **args)


def test_the_share_shrinks_with_the_queue_but_never_below_the_floor():
    assert fair_share(600, 0) == 600
    assert fair_share(600, 1) == 300
    assert fair_share(600, 4) == 120
    assert fair_share(600, 20) == 60  # the documented floor
    assert fair_share(30, 5) == 30  # never over the cap either


def test_wait_estimates_on_a_fake_clock():
    clock = FakeClock()
    slots = TrainingSlots(1, cap=100.0, clock=clock)
    stops = [threading.Event() for _ in range(3)]
    holder = threading.Thread(target=slots.acquire, args=(1, stops[0]))
    holder.start()
    holder.join(2.0)
    waiters = [threading.Thread(target=slots.acquire, args=(t, stops[t - 1]), daemon=True) for t in (2, 3)]
    waiters[0].start()
    assert wait_for(lambda: slots.position(2) == 1)
    waiters[1].start()
    assert wait_for(lambda: slots.position(3) == 2)
    clock.now += 10
    # the holder's share with 2 waiting is max(60, 100/3) = 60 s, 50 s of it left
    assert slots.deadline(1) == pytest.approx(1060.0)
    assert slots.estimate_wait(2) == pytest.approx(50 + SLACK_SECONDS)
    # ticket 2 then runs with (at least) ticket 3 waiting: a share of 60 s
    assert slots.estimate_wait(3) == pytest.approx(50 + SLACK_SECONDS + 60 + SLACK_SECONDS)
    assert slots.estimate_wait(1) == 0.0 and slots.estimate_wait(99) is None
    for event in stops[1:]:
        event.set()
    for w in waiters:
        w.join(2.0)
    assert slots.deadline(1) == pytest.approx(1100.0)  # nobody waits: the whole cap again
    slots.release(1)
    assert slots.busy == 0 and slots.waiting == 0


def test_a_running_run_is_cut_to_its_share_while_another_waits(tmp_path):
    clock = FakeClock()
    limits = JobLimits(max_training=1, max_run_seconds=100.0, min_share_seconds=10.0, orphan_seconds=60)
    registry = JobRegistry(limits, clock=clock)
    first = submit(registry, tmp_path, "a")
    assert wait_for(lambda: first.poll().state == "running")
    clock.now += 40  # alone, 40 s of 100 is fine
    time.sleep(0.6)
    assert first.alive
    second = submit(registry, tmp_path, "b")
    assert wait_for(lambda: second.poll().state == "queued")
    assert "about" in second.poll().message  # its place and an estimate
    clock.now += 11  # one waits: the share is 50 s, and 51 s have gone
    assert first.join(5.0), "the run kept its slot past its share"
    view = first.poll()
    assert view.state == "stopped" and "fair share" in view.message
    assert wait_for(lambda: second.poll().state == "running")
    second.stop()
    assert second.join(2.0)


def test_one_queued_or_running_training_per_visitor(tmp_path):
    registry = JobRegistry(JobLimits(max_training=1, one_per_visitor=True))
    job = submit(registry, tmp_path, "a", kind="phoneme")
    with pytest.raises(HwmlError, match="one training per visitor"):
        submit(registry, tmp_path, "a", kind="speaker")
    other = submit(registry, tmp_path, "b", kind="speaker")  # someone else queues behind
    assert wait_for(lambda: other.poll().state == "queued")
    with pytest.raises(HwmlError, match="one training per visitor"):
        submit(registry, tmp_path, "b", kind="phoneme")  # queued counts too
    for j in (job, other):
        j.stop()
        assert j.join(2.0)
    submit(registry, tmp_path, "a", kind="speaker").stop()  # after it ended, a new one may start


def test_many_sessions_from_one_address_hit_the_address_cap(tmp_path):
    registry = JobRegistry(JobLimits(max_training=1, per_address=2))
    jobs = [submit(registry, tmp_path, Visitor(f"s{i}", "10.0.0.7")) for i in range(2)]
    with pytest.raises(HwmlError, match="at most 2"):
        submit(registry, tmp_path, Visitor("s2", "10.0.0.7"))
    jobs.append(submit(registry, tmp_path, Visitor("s3", "10.0.0.8")))  # another address is not held back
    jobs.append(submit(registry, tmp_path, Visitor("s4", None)))  # no address known: no address cap
    for job in jobs:
        job.stop()
        assert job.join(2.0)


def test_stop_ends_an_import_between_files():
    done = []

    def slow(item):
        time.sleep(0.01)
        return item

    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(HwmlError, match="import stopped"), stop_imports_on(stop):
        for item, _ in featurise_all(list(range(5000)), slow, "test", progress=False):
            done.append(item)
    assert 0 < len(done) < 5000
    assert list(featurise_all([1, 2], slow, "test", progress=False)) == [(1, 1), (2, 2)]  # no stop: all


def test_stop_during_data_preparation_ends_the_job_and_counts_as_its_time(tmp_path):
    clock = FakeClock()
    registry = JobRegistry(JobLimits(max_training=1, max_run_seconds=100.0), clock=clock)
    started, seen = threading.Event(), []

    def prepare(report):
        started.set()
        for item, _ in featurise_all(list(range(100_000)), lambda i: time.sleep(0.005), "import", progress=False):
            seen.append(item)
        return Path("data")

    job = submit(registry, tmp_path, "a", prepare=prepare)
    assert started.wait(5.0)
    assert registry.slots.deadline(job.ticket) == pytest.approx(1100.0)  # the cap counts from the slot
    job.stop()
    assert job.join(5.0), "Stop did not end the import"
    view = job.poll()
    assert view.state == "stopped" and view.message == "stopped while preparing the data"
    assert len(seen) < 100_000 and registry.slots.busy == 0
