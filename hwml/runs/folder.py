"""A run folder's file names, its config and metrics, and the runs under a folder (no torch here:
the app lists runs before it imports torch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hwml.errors import HwmlError

CONFIG, WEIGHTS, METRICS = "config.json", "model.safetensors", "metrics.jsonl"
RESUME_JSON, RESUME_TENSORS = "resume.json", "resume.safetensors"
CHECKPOINT_FILES = (WEIGHTS, CONFIG, RESUME_TENSORS, RESUME_JSON)  # in the order they are written


def read_config(run_dir) -> dict:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise HwmlError(f"{run_dir}: not a run folder (no {CONFIG})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HwmlError(f"{path}: unreadable run config ({exc})") from None
    if not isinstance(config, dict):
        raise HwmlError(f"{path}: not a run config (expected a JSON object)")
    return config


def read_metrics(run_dir) -> list[dict]:
    """Every event of metrics.jsonl; a torn last line (a run still writing, or killed) is skipped."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def is_run(path) -> bool:
    path = Path(path)
    return path.is_dir() and ((path / CONFIG).is_file() or (path / METRICS).is_file())


def list_runs(root) -> list[dict]:
    """One summary per run folder directly under root (newest first): path, name, task, preset,
    model, best_valid_acc, steps, finished, modified (unix seconds)."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for path in root.iterdir():
        if not is_run(path):
            continue
        try:
            config = read_config(path)
        except HwmlError:
            config = {}
        runs.append(
            {
                "path": str(path),
                "name": path.name,
                "task": config.get("task"),
                "preset": config.get("preset"),
                "model": (config.get("model") or {}).get("name"),
                "best_valid_acc": config.get("best_valid_acc"),
                "steps": config.get("steps"),
                "finished": config.get("finished", False),
                "modified": max(p.stat().st_mtime for p in path.iterdir()),
            }
        )
    return sorted(runs, key=lambda r: -r["modified"])


def delete_run(run_dir) -> None:
    """Remove a run folder; refuses anything that is not one (a typo must not delete a tree)."""
    run_dir = Path(run_dir)
    if not is_run(run_dir) or run_dir.is_symlink():
        raise HwmlError(f"{run_dir}: not a run folder, not deleting it")
    shutil.rmtree(run_dir)
