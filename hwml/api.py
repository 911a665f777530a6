"""The verbs the CLI and the app share: train, evaluate and predict a run (and warm the shipped ones).

Each resolves the data folder (or zip) once, picks the task package from the data's kind or the
run's config.json, and hands over: the computing happens in `hwml.phoneme` and `hwml.speaker`,
which have the same modules with the same functions (hwml/DESIGN.md). Torch is imported inside
the functions: the app's page and the CLI's argument parsing use this module without it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from hwml.errors import HwmlError
from hwml.runs.folder import CONFIG, read_config
from hwml.runs.shipped import resolve_run

TASK_KINDS = ("phoneme", "speaker")


def _unknown_task(kind, source) -> HwmlError:
    where = f"{source}: " if source else ""
    return HwmlError(f"{where}unknown task {kind!r}: expected one of {', '.join(TASK_KINDS)}")


def task_presets(kind: str, source=None) -> ModuleType:
    """hwml.phoneme.presets or hwml.speaker.presets (torch-free). `source`: the file that named
    the task (a run's config.json), for the error message."""
    if kind == "phoneme":
        from hwml.phoneme import presets
    elif kind == "speaker":
        from hwml.speaker import presets
    else:
        raise _unknown_task(kind, source)
    return presets


@dataclass(frozen=True)
class TaskPackage:
    """The modules of a task package that the verbs use (the same names in both packages)."""

    presets: ModuleType  # PRESETS (+ SETTINGS), architecture(settings)
    task: ModuleType  # make_task(dataset, preset, overrides, seed)
    split: ModuleType  # valid_split(config, train_split)
    predict: ModuleType  # predict_logits, predict_files, warm_up


def task_package(kind: str, source=None) -> TaskPackage:
    """The modules of hwml.phoneme or hwml.speaker (imports torch)."""
    if kind == "phoneme":
        from hwml.phoneme import predict, presets, split, task
    elif kind == "speaker":
        from hwml.speaker import predict, presets, split, task
    else:
        raise _unknown_task(kind, source)
    return TaskPackage(presets, task, split, predict)


def _run_package(run_dir) -> TaskPackage:
    return task_package(read_config(run_dir).get("task"), source=str(Path(run_dir) / CONFIG))


# --------------------------------------------------------------------------------------- train


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
    """Train into `out`. `init`: a run folder to fine-tune from (hwml.train.finetune); the preset
    then defaults to that run's, else to "medium"."""
    from hwml.data import load_dataset
    from hwml.train.checks import check_budget, check_overrides
    from hwml.train.engine import train
    from hwml.train.finetune import InitFrom, resumed_init

    package = task_package(kind)
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
        preset = start.preset if start is not None and start.preset in package.presets.PRESETS else "medium"
    check_overrides(package.presets, preset, {**(overrides or {}), "max_steps": max_steps, "max_seconds": max_seconds})
    dataset = load_dataset(data)
    if dataset.kind != kind:
        raise HwmlError(f"{data}: holds {dataset.format} ({dataset.kind}) data, not {kind} data")
    overrides = dict(overrides or {})
    if start is not None:
        overrides = start.overrides(package.presets, preset, overrides)
        check_budget(package.presets, preset, overrides)
    task = package.task.make_task(dataset, preset, overrides, seed)
    if start is not None:
        start.check_task(task)
    settings = {"max_steps": max_steps, "max_seconds": max_seconds, "seed": seed, "device": device}
    return train(task, settings, Path(out), callbacks=callbacks, stop_event=stop_event, resume=resume, init=start)


def check_training_settings(kind, preset, overrides, max_steps=None, max_seconds=None) -> None:
    """A visitor's training request checked before it is queued (hwml.train.checks, the app's
    stricter logging bound included): HwmlError with one line when a setting is out of range
    or the run is over the machine's budget."""
    from hwml.train.checks import check_overrides

    package = task_package(kind)
    preset = preset or "medium"
    every = {**(overrides or {}), "max_steps": max_steps, "max_seconds": max_seconds}
    check_overrides(package.presets, preset, every, visitor=True)


# ------------------------------------------------------------------------------------ evaluate


def evaluate_run(run_dir, data, split: str = "all") -> dict:
    """Score a run on `data` (a folder, a zip or a loaded Dataset) and write its confusion files.

    split: "all" (every labelled item: the training split plus a labelled test split), "valid"
    (the run's own validation part, rebuilt from config.json) or "test". Labels are matched by
    class NAME, not index: a test folder imported separately may list its classes in another
    order, or only some of them, and still scores correctly; a name the run never saw is an
    error, not a silent mismatch. A shipped model (`shipped:phoneme`) is refused: copy it first.
    """
    run_dir = resolve_run(run_dir, writes=True)
    read_config(run_dir)
    with _naming(None if _is_dataset(data) else data):
        return _evaluate(Path(run_dir), data, split)


def _is_dataset(data) -> bool:
    from hwml.data.types import Dataset

    return isinstance(data, Dataset)


def _evaluate(run_dir: Path, data, split: str) -> dict:
    import numpy as np
    import torch

    from hwml.runs.checkpoint import load_run
    from hwml.runs.confusion import summarise, write_confusion

    model, config = load_run(run_dir)
    package = task_package(config.get("task"), source=str(run_dir / CONFIG))
    if _is_dataset(data):
        dataset = data
    else:
        from hwml.data import load_dataset

        dataset = load_dataset(data, need_train=split != "test")
    if dataset.kind != config["task"]:
        raise HwmlError(f"{dataset.root}: holds {dataset.kind} data but the run is a {config['task']} run")
    names = config["class_names"]
    true, pred = [], []
    for part_name, part in _eval_parts(config, dataset, split, package):
        if part.labels is None:
            continue
        logits = package.predict.predict_logits(model, config, part)
        t, p = score(logits, part.labels, part.class_names, names, f"{dataset.root} ({part_name})")
        true.append(t)
        pred.append(p)
    if not true or sum(len(t) for t in true) == 0:
        raise HwmlError(f"{dataset.root}: no labelled {split} data to evaluate")
    true, pred = torch.cat(true).numpy(), torch.cat(pred).numpy()
    counts = np.bincount(true * len(names) + pred, minlength=len(names) ** 2).reshape(len(names), len(names))
    result = {**summarise(counts, names), "split": split, "data": str(dataset.root)}
    title = f"{config.get('preset', '')} on {Path(str(dataset.root)).name} ({split}): acc {result['accuracy']:.3f}"
    csv_path, png_path = write_confusion(run_dir, counts, names, title)
    return {**result, "confusion_csv": str(csv_path), "confusion_png": str(png_path)}


def _eval_parts(config: dict, dataset, split: str, package: TaskPackage) -> list[tuple[str, object]]:
    if split == "all":
        parts = [("train", dataset.train)]
        if dataset.test is not None and dataset.test.labels is not None:
            parts.append(("test", dataset.test))
        return parts
    if split == "test":
        if dataset.test is None or dataset.test.labels is None:
            raise HwmlError(f"{dataset.root}: the test split has no labels to evaluate against")
        return [("test", dataset.test)]
    if split == "valid":
        return [("valid", package.split.valid_split(config, dataset.train))]
    raise HwmlError(f"unknown split {split!r}: use all, valid or test")


def score(logits, labels, data_names: list[str], run_names: list[str], where: str):
    """(true, predicted) run-class indices of the labelled items; labels < 0 are unlabelled."""
    from hwml.data.types import label_map

    labelled = labels >= 0
    mapping = label_map(data_names, run_names)
    true = mapping[labels[labelled]]
    if bool((true < 0).any()):
        unknown = sorted({data_names[i] for i in labels[labelled][true < 0].tolist()})
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise HwmlError(f"{where}: class name(s) {shown} are not among the run's {len(run_names)} classes")
    return true, logits[labelled].argmax(1)


# ------------------------------------------------------------------------------------- predict


def predict_run(run_dir, inputs, out_csv, *, fsync: bool = True, textgrid_dir=None) -> dict:
    """fsync=False: the CSV is written atomically but not flushed to disk (the app's per-request
    CSVs live in a session's scratch folder; a burst of them should not queue on the disk).
    run_dir may be `shipped:phoneme` / `shipped:speaker`.
    textgrid_dir (phoneme runs): also write each file's phone segments there as a Praat TextGrid."""
    run_dir = resolve_run(run_dir)
    package = _run_package(run_dir)
    inputs = [Path(p) for p in inputs]
    extra = {}
    if textgrid_dir is not None:
        if read_config(run_dir).get("task") != "phoneme":
            raise HwmlError(f"{run_dir}: TextGrids of predicted phones need a phoneme run, not a speaker run")
        extra["textgrid_dir"] = Path(textgrid_dir)
    with _naming(inputs[0] if len(inputs) == 1 else None):
        return package.predict.predict_files(Path(run_dir), inputs, Path(out_csv), fsync=fsync, **extra)


def warm_run(run_dir) -> None:
    """Load a run (kept by hwml.runs.cache) and push a second of noise through its features and
    model, so the first real request meets warm code paths (imports, feature transforms,
    first-call allocations)."""
    import torch

    from hwml.audio.features import featurize
    from hwml.audio.params import FeatureParams
    from hwml.machine import single_thread
    from hwml.runs.cache import loaded_run

    model, config = loaded_run(run_dir)
    package = task_package(config.get("task"), source=str(Path(run_dir) / CONFIG))
    wave = torch.randn(16000, generator=torch.Generator().manual_seed(0)) * 0.05
    with single_thread():
        package.predict.warm_up(model, config, featurize(wave, FeatureParams.from_dict(config["features"])))


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
