"""The three things a user does (train, evaluate, predict), as one entry for the CLI and the app.

Each function resolves the data folder (or zip) once, picks the task module from the data's
kind or the run's config, and hands over; no computing happens here.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from hwml.errors import HwmlError

KINDS = ("phoneme", "speaker")


def task_module(kind: str) -> ModuleType:
    """hwml.phoneme or hwml.speaker: both expose the same functions (see DESIGN.md)."""
    if kind == "phoneme":
        from hwml import phoneme

        return phoneme
    if kind == "speaker":
        from hwml import speaker

        return speaker
    raise HwmlError(f"unknown task {kind!r}: expected one of {', '.join(KINDS)}")


def run_config(run_dir: str | Path) -> dict:
    """config.json of a run folder, with a clear error when the folder is not a run."""
    from hwml.runs import read_config

    return read_config(run_dir)


def train_run(kind, data, out, preset="medium", overrides=None, max_steps=None, max_seconds=None,
              seed=0, device="auto", callbacks=(), stop_event=None, resume=False) -> dict:
    from hwml.data import load_dataset
    from hwml.train.engine import train

    dataset = load_dataset(data)
    if dataset.kind != kind:
        raise HwmlError(f"{data}: holds {dataset.format} ({dataset.kind}) data, not {kind} data")
    task = task_module(kind).make_task(dataset, preset, dict(overrides or {}), seed)
    settings = {"max_steps": max_steps, "max_seconds": max_seconds, "seed": seed, "device": device}
    return train(task, settings, Path(out), callbacks=callbacks, stop_event=stop_event, resume=resume)


def evaluate_run(run_dir, data, split="all") -> dict:
    from hwml.evaluate import evaluate_run as evaluate

    run_config(run_dir)
    return evaluate(Path(run_dir), data, split=split)


def predict_run(run_dir, inputs, out_csv) -> dict:
    kind = run_config(run_dir).get("task")
    if kind not in KINDS:
        raise HwmlError(f"{Path(run_dir) / 'config.json'}: unknown task {kind!r} (expected one of {', '.join(KINDS)})")
    return task_module(kind).predict_files(Path(run_dir), [Path(p) for p in inputs], Path(out_csv))
