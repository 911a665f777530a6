"""A stand-in for `hwml.api.train_run` for the job and fair-share tests: engine-shaped events every
20 ms, so the app's queue, slots, shares and Stop are tested without training a model."""

from __future__ import annotations

import json
import time
from pathlib import Path


def fake_train_run(
    kind,
    data,
    out,
    preset="medium",
    overrides=None,
    max_steps=None,
    max_seconds=None,
    seed=0,
    device="auto",
    callbacks=(),
    stop_event=None,
    resume=False,
    **_,
):
    """Engine-shaped events every 20 ms; ends at max_steps, max_seconds or the stop flag."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({"task": kind, "preset": preset, "max_seconds": max_seconds}))
    t0 = time.monotonic()
    for cb in callbacks:
        cb({"event": "start", "step": 0, "max_steps": max_steps, "unit": "frames", "elapsed": 0.0})
    step, reason = 0, "max_steps"
    while step < (max_steps or 10**9):
        if stop_event is not None and stop_event.is_set():
            reason = "stopped"
            break
        if max_seconds and time.monotonic() - t0 >= max_seconds:
            reason = "max_seconds"
            break
        time.sleep(0.02)
        step += 1
        for cb in callbacks:
            cb(
                {
                    "event": "step",
                    "step": step,
                    "loss": 1.0 / step,
                    "acc": 0.5,
                    "units_per_s": 100.0,
                    "elapsed": time.monotonic() - t0,
                    "progress": step / (max_steps or 10**9),
                    "max_steps": max_steps,
                }
            )
    end = {"event": "end", "step": step, "reason": reason, "best_valid_acc": 0.5, "elapsed": time.monotonic() - t0}
    for cb in callbacks:
        cb(end)
    return end


def wait_for(predicate, timeout=10.0):
    """Poll `predicate` every 20 ms until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
