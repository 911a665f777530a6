"""A run's confusion files: `confusion.csv` (long form, one row per (true, predicted) pair that
occurred: `true,predicted,count,fraction`, fraction = count / items of that true class, i.e. the
row-normalised matrix) and `confusion.png` (row-normalised, class names on both axes; with many
classes, e.g. 600 speakers, only the most confused ones); the summary numbers of a matrix.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from hwml.errors import HwmlError
from hwml.runs.folder import read_config
from hwml.safeio import atomic_path, atomic_write_text, csv_text

CONFUSION_CSV, CONFUSION_PNG = "confusion.csv", "confusion.png"
MAX_PLOT_CLASSES = 40


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
