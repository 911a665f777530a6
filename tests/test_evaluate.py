"""hwml.api.evaluate_run and hwml.runs.confusion: labels matched by class NAME, confusion files,
splits, many-class plots."""

import csv

import numpy as np
import pytest
import torch

from hwml.api import evaluate_run
from hwml.data.types import Dataset, FrameSet
from hwml.errors import HwmlError
from hwml.phoneme.task import make_task
from hwml.runs.confusion import plot_data, read_confusion, summarise
from hwml.train.engine import train

NAMES = ["aa", "b", "sil", "t", "z"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def frames(n_utts=30, seed=0, names=NAMES) -> FrameSet:
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(len(NAMES), 39, generator=torch.Generator().manual_seed(9)) * 2
    y = torch.randint(len(NAMES), (n_utts * 20,), generator=g)
    x = means[y] + torch.randn(len(y), 39, generator=g)
    offsets = torch.arange(0, len(y) + 1, 20)
    return FrameSet(x, y, offsets, [f"{u % 6}-x-{seed}-{u}" for u in range(n_utts)], list(names), 1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    data = Dataset("phoneme", "libriphone", "synthetic", frames(), frames(10, seed=1))
    task = make_task(data, "logreg", {"concat_nframes": 1, "valid_every": 20}, seed=0)
    train(task, {"max_steps": 60}, run_dir)
    return run_dir, data


def reordered(part: FrameSet, names: list[str]) -> FrameSet:
    """The same frames with the classes listed in another order (labels re-indexed to match)."""
    index = torch.tensor([names.index(n) if n in names else -1 for n in part.class_names])
    return FrameSet(part.feats, index[part.labels], part.offsets, part.utt_ids, names, 1)


def test_accuracy_and_files(run):
    run_dir, data = run
    result = evaluate_run(run_dir, data, split="test")
    assert list(result)[:2] == ["accuracy", "n"]
    assert result["n"] == len(data.test) and result["accuracy"] > 0.8
    assert sum(c["count"] for c in result["per_class"].values()) == result["n"]
    assert set(result["per_class"]) <= set(NAMES)
    with open(run_dir / "confusion.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"true", "predicted", "count", "fraction"}
    assert sum(int(r["count"]) for r in rows) == result["n"]
    for name in NAMES:
        fractions = [float(r["fraction"]) for r in rows if r["true"] == name]
        assert not fractions or sum(fractions) == pytest.approx(1.0, abs=1e-4)
    png = (run_dir / "confusion.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    names, counts = read_confusion(run_dir)
    assert names == NAMES and counts.sum() == result["n"]
    assert not [p for p in run_dir.iterdir() if ".tmp" in p.name]


def test_labels_are_matched_by_name_not_index(run):
    """A separately imported test folder lists its classes in another order (or a subset)."""
    run_dir, data = run
    base = evaluate_run(run_dir, data, split="test")
    shuffled = Dataset("phoneme", "libriphone", "other", data.train, reordered(data.test, ["z", "t", "sil", "b", "aa"]))
    again = evaluate_run(run_dir, shuffled, split="test")
    assert again["accuracy"] == base["accuracy"] and again["per_class"] == base["per_class"]
    keep = data.test.labels != NAMES.index("z")
    sub = FrameSet(data.test.feats[keep], data.test.labels[keep], None, None, NAMES, 1)
    subset = reordered(sub, ["t", "aa", "b", "sil"])  # 'z' is absent from this folder altogether
    part = evaluate_run(
        run_dir,
        Dataset(
            "phoneme",
            "timit_11",
            "sub",
            data.train,
            FrameSet(subset.feats, subset.labels, None, None, subset.class_names, 1),
        ),
        split="test",
    )
    assert part["n"] == int(keep.sum()) and "z" not in part["per_class"]


def test_unknown_class_names_are_an_error(run):
    run_dir, data = run
    stranger = FrameSet(
        data.test.feats, data.test.labels, data.test.offsets, data.test.utt_ids, ["aa", "b", "sil", "t", "zh"], 1
    )
    with pytest.raises(HwmlError, match="zh"):
        evaluate_run(run_dir, Dataset("phoneme", "libriphone", "odd", data.train, stranger), split="test")


def test_splits(run):
    run_dir, data = run
    valid = evaluate_run(run_dir, data, split="valid")
    from hwml.runs.folder import read_config

    config = read_config(run_dir)
    assert valid["n"] == config["data"]["n_valid_frames"]
    assert valid["accuracy"] == pytest.approx(config["best_valid_acc"])
    everything = evaluate_run(run_dir, data, split="all")
    assert everything["n"] == len(data.train) + len(data.test)
    unlabelled = Dataset(
        "phoneme",
        "libriphone",
        "nolabels",
        data.train,
        FrameSet(data.test.feats, None, data.test.offsets, data.test.utt_ids, NAMES, 1),
    )
    with pytest.raises(HwmlError, match="no labels"):
        evaluate_run(run_dir, unlabelled, split="test")
    with pytest.raises(HwmlError, match="unknown split"):
        evaluate_run(run_dir, data, split="dev")


def test_many_classes_plot_only_the_most_confused():
    rng = np.random.default_rng(0)
    n = 600
    counts = np.diag(rng.integers(5, 20, n))
    counts[3, 7] = counts[7, 3] = 50
    counts[100, 200] = 30
    data = plot_data(counts, [f"spk{i}" for i in range(n)], max_classes=40)
    assert data["shown"] == 40 and data["total"] == 600
    assert {"spk3", "spk7", "spk100", "spk200"} <= set(data["labels"])
    small = plot_data(np.array([[3, 1], [0, 4]]), ["a", "b"])
    assert small["labels"] == ["a", "b"] and small["matrix"] == [[0.75, 0.25], [0.0, 1.0]]


def test_summary_worst_confusions():
    counts = np.array([[8, 2, 0], [5, 5, 0], [0, 0, 0]])
    out = summarise(counts, ["x", "y", "z"])
    assert out["accuracy"] == pytest.approx(13 / 20) and out["n"] == 20
    assert out["worst_confusions"][0] == {"true": "y", "predicted": "x", "count": 5, "fraction": 0.5}
    assert set(out["per_class"]) == {"x", "y"}
