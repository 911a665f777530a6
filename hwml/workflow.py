"""The three things a user does (train, evaluate, predict), as one entry for the CLI and the app.

Each function resolves the data folder (or zip) once, picks the task module from the data's
kind or the run's config, and hands over; no computing happens here.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from hwml.errors import HwmlError
from hwml.tasks import task_module


def run_config(run_dir: str | Path) -> dict:
    """config.json of a run folder, with a clear error when the folder is not a run."""
    from hwml.runs.folder import read_config

    return read_config(run_dir)


# settings that must be > 0, and fractions that must lie in [0, 1] (everything numeric must be >= 0)
_POSITIVE = {
    "lr",
    "batch_size",
    "concat_nframes",
    "valid_every",
    "log_every",
    "max_epochs",
    "max_steps",
    "max_seconds",
    "hidden",
    "layers",
    "channels",
    "kernel",
    "chunk_frames",
    "eval_frames",
    "eval_batch",
    "segment_len",
    "d_model",
    "depth",
    "heads",
    "ff_dim",
    "conv_kernel",
    "infer_window",
    "infer_frames",
    "s",
}
_FRACTIONS = {"dropout", "valid_fraction", "valid_share", "label_smoothing", "min_lr_ratio", "betas", "m", "noise_prob"}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_overrides(kind: str, preset: str, overrides: dict) -> None:
    """Type and range checks of user settings (`--set key=value`, the app's fields) against the
    types the presets use, so a typo is a clear HwmlError and never a crash deep in training.
    Unknown keys and choices among names are left to the task and the engine."""
    from hwml.train.engine import DEFAULTS

    module = task_module(kind)
    examples: dict[str, list] = {}
    for table in (DEFAULTS, getattr(module, "SETTINGS", {}), *module.PRESETS.values()):
        for key, value in table.items():
            examples.setdefault(key, []).append(value)
    for key, value in overrides.items():
        chosen = module.PRESETS.get(preset, {})
        seen = [chosen[key], *([DEFAULTS[key]] if key in DEFAULTS else [])] if key in chosen else examples.get(key)
        if seen is None or value is None:
            continue
        where = f"setting {key}={value!r}"
        if isinstance(value, bool) or isinstance(value, str):
            if not any(type(v) is type(value) for v in seen):
                raise HwmlError(f"{where}: expected {_describe(seen)}")
            continue
        if isinstance(value, list):  # hidden=[] is a valid MLP (no hidden layer), no other list is empty
            fits = any(isinstance(v, list) for v in seen) and (value or key == "hidden")
        else:
            fits = _is_number(value) and any(_is_number(v) or v is None for v in seen)
        items = value if isinstance(value, list) else [value]
        if not fits or not all(_is_number(x) for x in items):
            raise HwmlError(f"{where}: expected {_describe(seen)}")
        if key == "betas" and len(items) != 2:
            raise HwmlError(f"{where}: expected two numbers, like [0.9, 0.999]")
        whole = (
            all(isinstance(v, int) and not isinstance(v, bool) for v in seen if _is_number(v))
            and any(_is_number(v) for v in seen)
            or key == "hidden"
        )
        for x in items:
            if x != x or x in (float("inf"), float("-inf")):
                raise HwmlError(f"{where}: must be a finite number")
            if whole and not float(x).is_integer():
                raise HwmlError(f"{where}: must be a whole number")
            if key != "seed" and (x < 0 or key in _POSITIVE and x <= 0 or key in _FRACTIONS and x > 1):
                rule = "between 0 and 1" if key in _FRACTIONS else "positive" if key in _POSITIVE else "at least 0"
                raise HwmlError(f"{where}: must be {rule}")


def _describe(examples: list) -> str:
    kinds = []
    for v in examples:
        name = (
            "true/false"
            if isinstance(v, bool)
            else "a list of numbers"
            if isinstance(v, list)
            else "a name"
            if isinstance(v, str)
            else "a number"
            if _is_number(v)
            else None
        )
        if name and name not in kinds:
            kinds.append(name)
    return " or ".join(kinds) or "a value"


def train_run(
    kind,
    data,
    out,
    preset=None,
    overrides=None,
    max_steps=None,
    max_seconds=None,
    seed=0,
    device="auto",
    callbacks=(),
    stop_event=None,
    resume=False,
    init=None,
) -> dict:
    """Train into `out`. `init`: a run folder to fine-tune from (hwml.finetune); the preset
    then defaults to that run's, else to "medium"."""
    from hwml.data import load_dataset
    from hwml.finetune import InitFrom, resumed_init
    from hwml.train.engine import train

    module = task_module(kind)
    if init is not None and resume:
        raise HwmlError(
            f"{out}: --init starts a new run and --resume continues one: give one of them "
            "(a fine-tuned run resumes with --resume alone)"
        )
    if init is not None and Path(init).resolve() == Path(out).resolve():
        raise HwmlError(f"{out}: the fine-tuned run needs its own folder (--out), not the --init run's")
    source = init if init is not None else resumed_init(out) if resume else None
    start = InitFrom(source, kind) if source is not None else None
    if preset is None:
        preset = start.preset if start is not None and start.preset in module.PRESETS else "medium"
    check_overrides(kind, preset, {**(overrides or {}), "max_steps": max_steps, "max_seconds": max_seconds})
    dataset = load_dataset(data)
    if dataset.kind != kind:
        raise HwmlError(f"{data}: holds {dataset.format} ({dataset.kind}) data, not {kind} data")
    overrides = dict(overrides or {})
    if start is not None:
        overrides = start.overrides(module, preset, overrides)
    task = module.make_task(dataset, preset, overrides, seed)
    if start is not None:
        start.check_task(task)
    settings = {"max_steps": max_steps, "max_seconds": max_seconds, "seed": seed, "device": device}
    return train(task, settings, Path(out), callbacks=callbacks, stop_event=stop_event, resume=resume, init=start)


def evaluate_run(run_dir, data, split="all") -> dict:
    from hwml.evaluate import evaluate_run as evaluate

    run_config(run_dir)
    with _naming(data):
        return evaluate(Path(run_dir), data, split=split)


def predict_run(run_dir, inputs, out_csv, *, fsync: bool = True) -> dict:
    """fsync=False: the CSV is written atomically but not flushed to disk (the app's per-request
    CSVs live in a session's scratch folder; a burst of them should not queue on the disk)."""
    module = task_module(run_config(run_dir).get("task"), source=str(Path(run_dir) / "config.json"))
    inputs = [Path(p) for p in inputs]
    with _naming(inputs[0] if len(inputs) == 1 else None):
        return module.predict_files(Path(run_dir), inputs, Path(out_csv), fsync=fsync)


def warm_run(run_dir) -> None:
    """Load a run (kept by hwml.serving) and push a second of noise through its features and
    model, so the first real request meets warm code paths (imports, feature transforms,
    first-call allocations)."""
    import torch

    from hwml.audio.features import featurize
    from hwml.audio.params import FeatureParams
    from hwml.machine import single_thread
    from hwml.runs.cache import loaded_run

    model, config = loaded_run(run_dir)
    module = task_module(config.get("task"), source=str(Path(run_dir) / "config.json"))
    wave = torch.randn(16000, generator=torch.Generator().manual_seed(0)) * 0.05
    with single_thread():
        module.warm_up(model, config, featurize(wave, FeatureParams.from_dict(config["features"])))


def preload_runs(run_dirs) -> None:
    """warm_run each of `run_dirs` (the app does this in a background thread once its page is
    served). A failure is only logged: a damaged shipped model must not stop the app, and
    Predict reports it to whoever picks that model."""
    import logging

    for run_dir in run_dirs:
        try:
            warm_run(run_dir)
        except Exception as exc:  # noqa: BLE001 - reported, never fatal here
            logging.getLogger("hwml").warning("could not preload %s: %s", run_dir, exc)


@contextlib.contextmanager
def _naming(path):
    """Errors must name the file: prefix a message that names no file with the one input."""
    try:
        yield
    except HwmlError as exc:
        if path is None or str(path) in str(exc) or Path(path).name in str(exc):
            raise
        raise HwmlError(f"{path}: {exc}") from None
