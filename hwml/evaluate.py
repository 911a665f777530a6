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

import csv
from pathlib import Path

import numpy as np
import torch

from hwml.data.types import Dataset, label_map
from hwml.errors import HwmlError
from hwml.safeio import atomic_path, atomic_write_text, csv_text

CONFUSION_CSV, CONFUSION_PNG = "confusion.csv", "confusion.png"
MAX_PLOT_CLASSES = 40


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


def summarise(counts: np.ndarray, names: list[str], top: int = 10) -> dict:
    """accuracy, n, per_class {name: {acc, count}} (classes present only), worst confusions."""
    n = int(counts.sum())
    rows = counts.sum(1)
    per_class = {
        names[i]: {"acc": float(counts[i, i] / rows[i]), "count": int(rows[i])}
        for i in range(len(names))
        if rows[i] > 0
    }
    off = counts.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(off, axis=None)[::-1][:top]
    worst = [
        {"true": names[t], "predicted": names[p], "count": int(off[t, p]), "fraction": float(off[t, p] / rows[t])}
        for t, p in zip(*np.unravel_index(flat, off.shape))
        if off[t, p] > 0
    ]
    return {
        "accuracy": float(np.trace(counts) / n) if n else 0.0,
        "n": n,
        "per_class": per_class,
        "worst_confusions": worst,
    }


def confusion_csv_text(counts: np.ndarray, names: list[str]) -> str:
    rows = counts.sum(1)
    return csv_text(
        ["true", "predicted", "count", "fraction"],
        ([names[t], names[p], int(counts[t, p]), f"{counts[t, p] / rows[t]:.6f}"] for t, p in zip(*np.nonzero(counts))),
    )


def read_confusion(run_dir) -> tuple[list[str], np.ndarray]:
    """(class names, counts matrix) from a run's confusion.csv and config (for the app)."""
    from hwml.runs import read_config

    names = read_config(run_dir)["class_names"]
    path = Path(run_dir) / CONFUSION_CSV
    if not path.is_file():
        raise HwmlError(f"{run_dir}: not evaluated yet (no {CONFUSION_CSV})")
    index = {n: i for i, n in enumerate(names)}
    counts = np.zeros((len(names), len(names)), dtype=np.int64)
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            counts[index[row["true"]], index[row["predicted"]]] = int(row["count"])
    return names, counts


def plot_data(counts: np.ndarray, names: list[str], max_classes: int = MAX_PLOT_CLASSES) -> dict:
    """What the confusion plot shows: all classes when they fit, else the max_classes most
    confused (largest off-diagonal row + column sums). Matrix rows are normalised by the true
    class count. {"labels", "matrix", "counts", "shown", "total"}."""
    present = np.nonzero(counts.sum(0) + counts.sum(1))[0]
    if len(present) > max_classes:
        off = counts.copy()
        np.fill_diagonal(off, 0)
        confusion = off.sum(0) + off.sum(1)
        present = np.sort(present[np.argsort(confusion[present], kind="stable")[::-1][:max_classes]])
    sub = counts[np.ix_(present, present)]
    rows = counts[present].sum(1, keepdims=True)  # of all predictions, not only the shown ones
    return {
        "labels": [names[i] for i in present],
        "matrix": (sub / np.maximum(rows, 1)).tolist(),
        "counts": sub.tolist(),
        "shown": len(present),
        "total": int((counts.sum(1) > 0).sum()),
    }


def confusion_figure(data: dict, title: str = ""):
    """A matplotlib Figure of plot_data(...): the caller saves or shows it, then closes it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = max(len(data["labels"]), 1)
    size = min(4 + 0.28 * k, 16)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(np.array(data["matrix"]).reshape(k, -1), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), data["labels"], rotation=90, fontsize=7 if k > 25 else 9)
    ax.set_yticks(range(k), data["labels"], fontsize=7 if k > 25 else 9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if data["shown"] < data["total"]:
        title += f" ({data['shown']} most confused of {data['total']} classes)"
    ax.set_title(title.strip(), fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fig.tight_layout()
    return fig


def write_confusion(run_dir, counts: np.ndarray, names: list[str], title: str) -> tuple[Path, Path]:
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    csv_path, png_path = run_dir / CONFUSION_CSV, run_dir / CONFUSION_PNG
    atomic_write_text(csv_path, confusion_csv_text(counts, names))
    fig = confusion_figure(plot_data(counts, names), title)
    try:
        with atomic_path(png_path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return csv_path, png_path


def evaluate_run(run_dir, data, split: str = "all") -> dict:
    """Score a run on `data` (a folder, a zip or a loaded Dataset) and write its confusion files.

    split: "all" (every labelled item: the training split plus a labelled test split), "valid"
    (the run's own validation part, rebuilt from config.json) or "test".
    """
    from hwml.runs import load_run
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
