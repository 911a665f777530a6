"""Training runs for the app: background threads, a fair queue of slots, and their live state.

A browser session asks for a run; a `TrainingJob` waits for a free slot (at most
`HWML_MAX_TRAINING` runs at once, default 1 on CPU, queued users see their position), then
calls `hwml.api.train_run` in a thread; the engine's events reach the app's generator through
a thread-safe queue. No Gradio here: the UI only wires these objects to components.

A run belongs to a visitor (`hwml.serve.identity`: the browser's token, not the page), so it
keeps training when its page closes and any page of the same browser re-attaches to it
(`live`). It stops (within a second, keeping its best weights) when its stop flag is set by the
Stop button or `stop_session`, or when its fair share of the time runs out (`hwml.serve.fair`:
`HWML_MAX_RUN_SECONDS` from its slot on, data preparation included, shrinking while others
wait). A queued run nobody polls for `HWML_ORPHAN_SECONDS` gives up its place. One queued or
running training per visitor (shared server), `HWML_RUNS_PER_ADDRESS` per client address.
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hwml import settings
from hwml.errors import HwmlError
from hwml.machine import usable_cores
from hwml.serve.fair import MIN_SHARE_SECONDS, TrainingSlots, format_duration
from hwml.serve.identity import Visitor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobLimits:
    """What one shared machine allows: read from the environment once at app start."""

    max_training: int = 1  # runs training at the same time
    max_run_seconds: float = 600.0  # training time cap per run
    orphan_seconds: float = 30.0  # stop a run nobody has polled for this long
    predict_workers: int = field(default_factory=lambda: min(8, usable_cores()))  # predictions at once
    one_per_visitor: bool = False  # one queued or running run per visitor, any task (else: per task)
    per_address: int = 3  # queued or running runs per client address (where one is known)
    min_share_seconds: float = MIN_SHARE_SECONDS  # a running run's share never shrinks below this

    @classmethod
    def from_env(cls) -> JobLimits:
        """From hwml.settings (HWML_PRIVATE_RUNS: one run per visitor where visitors are kept apart)."""
        return cls(
            max_training=settings.max_training(),
            max_run_seconds=settings.max_run_seconds(),
            orphan_seconds=settings.orphan_seconds(),
            predict_workers=settings.predict_workers(),
            one_per_visitor=settings.private_runs(),
            per_address=settings.runs_per_address(),
        )


@dataclass
class JobView:
    """A snapshot of a run for display: everything the UI draws, nothing it has to compute."""

    state: str  # queued | preparing | running | finished | stopped | failed
    run_dir: str
    events: list[dict]  # all engine events so far (start, step, valid, end)
    message: str  # one line for a status box
    position: int  # queue position while queued, else 0
    wait_s: float | None  # estimated wait for a slot while queued (an upper bound, hwml.serve.fair)
    fraction: float  # 0..1 of the run done
    step: int
    max_steps: int | None
    units_per_s: float | None
    unit: str
    eta_s: float | None
    elapsed_s: float
    best_valid_acc: float | None
    error: str | None

    @property
    def done(self) -> bool:
        return self.state in ("finished", "stopped", "failed")


_tickets = itertools.count(1)


class TrainingJob:
    """One training run in a background thread, fed to the UI as snapshots.

    `prepare` (in the thread, before training: e.g. the built-in corpus) returns the data folder.
    """

    def __init__(
        self,
        *,
        kind: str,
        run_dir: Path,
        prepare: Callable[[Callable[[str], None]], Path],
        preset: str,
        overrides: dict | None,
        max_steps: int | None,
        max_seconds: float | None,
        seed: int,
        slots: TrainingSlots,
        limits: JobLimits,
        device: str = "auto",
        on_finish: Callable[[TrainingJob], None] = lambda job: None,
        init: Path | None = None,
        resume: bool = False,
        visitor: Visitor | None = None,
    ):
        self.kind, self.run_dir, self.preset, self.init = kind, Path(run_dir), preset, init
        self.resume, self.visitor = resume, visitor or Visitor("anonymous")
        self.overrides = dict(overrides or {})
        self.max_steps = max_steps
        cap = limits.max_run_seconds
        self.max_seconds = min(max_seconds, cap) if max_seconds else cap
        self.seed, self.device = seed, device
        self.limits, self._slots, self._prepare, self._on_finish = limits, slots, prepare, on_finish
        self.ticket = next(_tickets)
        self.stop_event = threading.Event()
        self.state = "queued"
        self.error: str | None = None
        self.message = "waiting for a training slot"
        self._queue: queue.Queue = queue.Queue()
        self._poll_lock = threading.Lock()
        self._events: list[dict] = []
        self._position = 0
        self._wait: float | None = None
        self._version = 0
        self.cut_by_share = False  # stopped because its fair share of the time ran out
        self.data_dir, self.upload_dir = None, getattr(prepare, "upload_dir", None)  # in use while alive
        self.last_poll = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"hwml-train-{self.ticket}", daemon=True)

    # --- the thread -------------------------------------------------------------------------
    def start(self) -> TrainingJob:
        self._thread.start()
        threading.Thread(target=self._watch, name=f"hwml-watch-{self.ticket}", daemon=True).start()
        return self

    def _watch(self, every: float = 0.25) -> None:
        """While queued: refresh the wait estimate, give up the place when nobody polls. While
        holding a slot: stop the run when its fair share of the time is spent."""
        last_estimate = 0.0
        while self._thread.is_alive() and not self.stop_event.wait(every):
            now = time.monotonic()
            deadline = self._slots.deadline(self.ticket)
            if deadline is not None:
                if self._slots.clock() >= deadline:
                    log.info("run %s: its share of the training time is spent, stopping it", self.run_dir)
                    self.cut_by_share = True
                    self.stop_event.set()
                continue
            position = self._slots.position(self.ticket)
            if position > 0 and now - self.last_poll > self.limits.orphan_seconds:
                log.warning(
                    "queued run %s: nobody polled it for %.0f s, cancelling it", self.run_dir, now - self.last_poll
                )
                self.stop_event.set()
            elif position > 0 and now - last_estimate >= 2.0:
                last_estimate = now
                self._queue.put(
                    {"event": "queued", "position": position, "wait": self._slots.estimate_wait(self.ticket)}
                )

    def _status(self, message: str) -> None:
        self._queue.put({"event": "status", "message": message})

    def _on_event(self, event: dict) -> None:
        """Engine callback, in the training thread: hand over (the run goes on unwatched)."""
        self._queue.put(dict(event))

    def _run(self) -> None:
        from hwml.api import train_run
        from hwml.importers.common import stop_imports_on  # torch: only in the training thread

        holding = training = False
        try:
            holding = self._slots.acquire(
                self.ticket,
                self.stop_event,
                on_wait=lambda p: self._queue.put(
                    {"event": "queued", "position": p, "wait": self._slots.estimate_wait(self.ticket)}
                ),
                seconds=self.max_seconds,
            )
            if not holding:
                self._queue.put({"event": "done", "state": "stopped", "message": "cancelled while waiting"})
                return
            self._queue.put({"event": "preparing"})
            with stop_imports_on(self.stop_event):  # Stop (or the share) ends an import between files
                data = self._prepare(self._status)
            self.data_dir = Path(data)
            if self.stop_event.is_set():
                self._queue.put({"event": "done", "state": "stopped", "message": "stopped before training began"})
                return
            self._status("loading data and building the model")
            training = True
            summary = train_run(
                self.kind,
                data,
                self.run_dir,
                preset=self.preset,
                overrides=self.overrides,
                max_steps=self.max_steps,
                max_seconds=self.max_seconds,
                seed=self.seed,
                device=self.device,
                callbacks=[self._on_event],
                stop_event=self.stop_event,
                **({"init": self.init} if self.init is not None else {}),
                **({"resume": True} if self.resume else {}),
            )
            state = "stopped" if summary.get("reason") == "stopped" else "finished"
            if self.cut_by_share and summary.get("reason") == "stopped":
                summary = {**summary, "reason": "share"}
            self._queue.put({"event": "done", "state": state, "message": _end_message(summary)})
        except HwmlError as exc:
            if self.stop_event.is_set() and not training:
                self._queue.put({"event": "done", "state": "stopped", "message": "stopped while preparing the data"})
                return
            self._queue.put({"event": "done", "state": "failed", "error": str(exc)})
        except Exception as exc:  # a bug, not the user's fault: keep the app alive and say so
            log.exception("training run %s crashed", self.run_dir)
            self._queue.put(
                {"event": "done", "state": "failed", "error": f"internal error: {type(exc).__name__}: {exc}"}
            )
        finally:
            if holding:
                self._slots.release(self.ticket)
            try:
                self._on_finish(self)
            except Exception:
                log.exception("after-run hook failed for %s", self.run_dir)

    # --- the consumer side ----------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to end; the engine notices within a second and keeps the best weights."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def poll(self, timeout: float = 0.0) -> JobView:
        """Take every event that arrived (waiting up to `timeout` for the first) and snapshot.

        One consumer at a time (the stream and the Stop button's final view may both poll), so
        events are applied in the order the engine sent them."""
        with self._poll_lock:
            self.last_poll = time.monotonic()
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
                self._apply(item)
                while True:
                    self._apply(self._queue.get_nowait())
            except queue.Empty:
                pass
            return self.view()

    def _apply(self, item: dict) -> None:
        self._version += 1
        kind = item.get("event")
        if kind == "queued":
            self.state, self._position, self._wait = "queued", item["position"], item.get("wait")
            self.message = f"waiting for a training slot: number {item['position']} in the queue"
            if self._wait is not None and math.isfinite(self._wait):
                self.message += f", about {format_duration(self._wait)}"
        elif kind == "preparing":
            self.state, self._position, self.message = "preparing", 0, "preparing the data"
        elif kind == "status":
            self.message = item["message"]
        elif kind == "done":
            self.state = item["state"]
            self.error = item.get("error")
            self.message = self.error or item.get("message", self.state)
        else:  # an engine event
            self._events.append(item)
            if kind == "start":
                self.state, self.message = "running", "training"
            elif kind in ("step", "valid") and self.state == "running":
                self.message = "training"

    def view(self) -> JobView:
        last_step = next((e for e in reversed(self._events) if e.get("event") == "step"), None)
        start = next((e for e in self._events if e.get("event") == "start"), {})
        latest = self._events[-1] if self._events else {}
        step = int(latest.get("step", 0))
        max_steps = latest.get("max_steps") or start.get("max_steps")
        elapsed = float(latest.get("elapsed", 0.0))
        fraction = float(last_step.get("progress", 0.0)) if last_step else 0.0
        if self.state == "finished":
            fraction = 1.0
        best = next((e["best_valid_acc"] for e in reversed(self._events) if e.get("best_valid_acc") is not None), None)
        eta = None
        if self.state == "running" and 0 < fraction < 1 and elapsed > 0:
            eta = elapsed * (1 - fraction) / fraction
        return JobView(
            state=self.state,
            run_dir=str(self.run_dir),
            events=list(self._events),
            message=self.message,
            position=self._position if self.state == "queued" else 0,
            wait_s=self._wait if self.state == "queued" else None,
            fraction=fraction,
            step=step,
            max_steps=max_steps,
            units_per_s=last_step.get("units_per_s") if last_step else None,
            unit=start.get("unit", "units"),
            eta_s=eta,
            elapsed_s=elapsed,
            best_valid_acc=best,
            error=self.error,
        )

    def stream(self, interval: float = 0.5, heartbeat: float = 5.0) -> Iterator[JobView]:
        """A snapshot whenever something changed, checked every `interval` seconds (and one
        every `heartbeat` seconds regardless), until the run is over; the last one is final.

        Closing this generator (Gradio cancels it, or the tab goes away) leaves the run going:
        it belongs to the visitor, and any of their pages may stream it again. Several pages
        may stream one run at once (each snapshot holds every event so far).
        """
        seen, last_yield = -1, 0.0
        while True:
            view = self.poll(timeout=interval)
            if view.done:  # "done" is the thread's last word: let it finish its cleanup
                self.join(timeout=2.0)
                yield view
                return
            now = time.monotonic()
            if self._version != seen or now - last_yield >= heartbeat:
                seen, last_yield = self._version, now
                yield view


def _end_message(summary: dict) -> str:
    reason = {
        "max_steps": "reached the step limit",
        "max_seconds": "reached the time limit",
        "early_stop": "stopped early (no more validation gains)",
        "stopped": "stopped by you",
        "share": "reached its fair share of the time while others waited",
    }
    best = summary.get("best_valid_acc")
    best_text = f"; best validation accuracy {best:.1%}" if isinstance(best, (int, float)) and best >= 0 else ""
    steps = summary.get("step", 0)
    why = reason.get(summary.get("reason"), summary.get("reason"))
    return f"done after {steps} step{'' if steps == 1 else 's'}: {why}{best_text}"


class JobRegistry:
    """Every live run of the app, by owner and task, so a visitor can stop their own and any of
    their pages can re-attach to it. The fair-share limits are checked here, before a run queues."""

    def __init__(self, limits: JobLimits | None = None, clock=time.monotonic):
        """`clock`: what the fair shares count (tests pass a fake one)."""
        self.limits = limits or JobLimits.from_env()
        self.slots = TrainingSlots(
            self.limits.max_training,
            cap=self.limits.max_run_seconds,
            clock=clock,
            min_share=self.limits.min_share_seconds,
        )
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], TrainingJob] = {}

    def submit(self, visitor: Visitor | str, kind: str, **job_args) -> TrainingJob:
        """Queue a run for `visitor` (a Visitor, or an owner's name); HwmlError when their share
        is taken: a run of theirs still going, or too many from their address."""
        visitor = visitor if isinstance(visitor, Visitor) else Visitor(visitor)
        key = (visitor.owner, kind)
        with self._lock:
            mine = [j for j in self._jobs.values() if j.visitor.owner == visitor.owner and j.alive]
        for job in mine:  # Stop, then Start at once (any task): let a stopping run finish its save
            if job.stop_event.is_set() and (self.limits.one_per_visitor or job.kind == kind):
                job.join(timeout=5.0)
        with self._lock:
            live = [job for job in self._jobs.values() if job.alive]
            mine = [
                j for j in live if j.visitor.owner == visitor.owner and (self.limits.one_per_visitor or j.kind == kind)
            ]
            if mine:
                raise HwmlError(
                    f"a {mine[0].kind} run of yours is still going ({Path(mine[0].run_dir).name}): "
                    "stop it first (one training per visitor at a time)"
                )
            if visitor.address is not None:
                same = [j for j in live if j.visitor.address == visitor.address]
                if len(same) >= self.limits.per_address:
                    raise HwmlError(
                        f"{len(same)} trainings from your network address are queued or running "
                        f"(at most {self.limits.per_address}): wait for one to end"
                    )
            job = TrainingJob(kind=kind, slots=self.slots, limits=self.limits, visitor=visitor, **job_args)
            self._jobs[key] = job
        return job.start()

    def get(self, owner: str, kind: str) -> TrainingJob | None:
        with self._lock:
            return self._jobs.get((owner, kind))

    def live(self, owner: str, kind: str) -> TrainingJob | None:
        """The owner's run of this task that is still queued or training, if any (re-attach)."""
        job = self.get(owner, kind)
        return job if job is not None and job.alive else None

    def stop(self, owner: str, kind: str) -> TrainingJob | None:
        job = self.get(owner, kind)
        if job is not None:
            job.stop()
        return job

    def stop_session(self, owner: str) -> int:
        """Stop every run of an owner; returns how many were still going."""
        with self._lock:
            jobs = [job for (s, _), job in self._jobs.items() if s == owner]
        live = [job for job in jobs if job.alive]
        for job in live:
            job.stop()
        return len(live)

    def active_run_dirs(self) -> set[Path]:
        """Run folders being written now: never pruned or deleted."""
        with self._lock:
            return {job.run_dir.resolve() for job in self._jobs.values() if job.alive}

    def in_use_paths(self) -> set[Path]:
        """What live jobs read or write (run, data or upload, fine-tune source): never pruned."""
        with self._lock:
            found = [(j.run_dir, j.data_dir, j.upload_dir, j.init) for j in self._jobs.values() if j.alive]
        return {Path(p).resolve() for paths in found for p in paths if p is not None}

    def stop_all(self, timeout: float = 5.0) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop()
        deadline = time.monotonic() + timeout
        for job in jobs:
            job.join(max(0.0, deadline - time.monotonic()))
