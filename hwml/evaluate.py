"""Evaluate a run on labelled data (both tasks): accuracy, per-class accuracy, confusions.

Labels are matched by class NAME, not index: a test folder imported separately may list its
classes in another order, or only some of them, and still scores correctly; a name the run
never saw is an error, not a silent mismatch. Output goes into the run folder: `confusion.csv`
(long form, one row per (true, predicted) pair that occurred: `true,predicted,count,fraction`,
fraction = count / frames of that true class, i.e. the row-normalised matrix) and
`confusion.png` (row-normalised, class names on both axes; with many classes, e.g. 600
speakers, only the most confused ones).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hwml.data.types import Dataset, label_map
from hwml.errors import HwmlError
from hwml.runs.confusion import summarise, write_confusion


def eval_parts(config: dict, dataset: Dataset, split: str, module) -> list[tuple[str, object]]:
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
        if not hasattr(module, "valid_split"):
            raise HwmlError(f"{config['task']} runs cannot rebuild their validation split")
        return [("valid", module.valid_split(config, dataset.train))]
    raise HwmlError(f"unknown split {split!r}: use all, valid or test")


def score(
    logits: torch.Tensor, labels: torch.Tensor, data_names: list[str], run_names: list[str], where: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(true, predicted) run-class indices of the labelled items; labels < 0 are unlabelled."""
    labelled = labels >= 0
    mapping = label_map(data_names, run_names)
    true = mapping[labels[labelled]]
    if bool((true < 0).any()):
        unknown = sorted({data_names[i] for i in labels[labelled][true < 0].tolist()})
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise HwmlError(f"{where}: class name(s) {shown} are not among the run's {len(run_names)} classes")
    return true, logits[labelled].argmax(1)


def evaluate_run(run_dir, data, split: str = "all") -> dict:
    """Score a run on `data` (a folder, a zip or a loaded Dataset) and write its confusion files.

    split: "all" (every labelled item: the training split plus a labelled test split), "valid"
    (the run's own validation part, rebuilt from config.json) or "test".
    """
    from hwml.runs.checkpoint import load_run
    from hwml.tasks import task_module

    model, config = load_run(run_dir)
    module = task_module(config.get("task"), source=str(Path(run_dir) / "config.json"))
    if isinstance(data, Dataset):
        dataset = data
    else:
        from hwml.data import load_dataset

        dataset = load_dataset(data, need_train=split != "test")
    if dataset.kind != config["task"]:
        raise HwmlError(f"{dataset.root}: holds {dataset.kind} data but the run is a {config['task']} run")
    names = config["class_names"]
    true, pred = [], []
    for part_name, part in eval_parts(config, dataset, split, module):
        if part.labels is None:
            continue
        logits = module.predict_logits(model, config, part)
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
