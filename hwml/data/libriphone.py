"""HW2 (2022/2023) "libriphone" folder: one (T, 39) MFCC tensor per utterance, labels as text.

Course files: `feat/train/<utt>.pt`, `feat/test/<utt>.pt`, `train_labels.txt` (`<utt> <label> ...`,
one label per frame, 41 classes), `train_split.txt` / `test_split.txt` (utterance ids; submissions
follow test_split.txt order). hwml sidecars: `classes.txt`, `test_labels.txt` (same format as
train_labels.txt). Utterance boundaries are kept as offsets so context windows never cross them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hwml.audio.params import MFCC_DIM
from hwml.data.common import check_label_range, check_plain_name, load_frames, read_class_names, write_class_names
from hwml.data.types import Dataset, FrameSet
from hwml.errors import HwmlError
from hwml.safeio import atomic_write_text, read_text, save_pt_atomic

N_CLASSES = 41


def read_split(path: Path) -> list[str]:
    ids = [line.strip() for line in read_text(path).splitlines()]
    ids = [check_plain_name(u, path, f"line {i + 1}") for i, u in enumerate(ids) if u]
    if not ids:
        raise HwmlError(f"{path}: lists no utterances")
    seen = set()
    for u in ids:
        if u in seen:
            raise HwmlError(f"{path}: utterance {u!r} is listed twice")
        seen.add(u)
    return ids


def read_label_file(path: Path) -> dict[str, np.ndarray]:
    """`<utt> <label> <label> ...` per line -> {utt: int64 labels}."""
    labels: dict[str, np.ndarray] = {}
    for i, line in enumerate(read_text(path).splitlines()):
        fields = line.split()
        if not fields:
            continue
        utt = check_plain_name(fields[0], path, f"line {i + 1}")
        if utt in labels:
            raise HwmlError(f"{path}: line {i + 1}: utterance {utt!r} appears twice")
        try:
            labels[utt] = np.array([int(x) for x in fields[1:]], dtype=np.int64)
        except (ValueError, OverflowError):
            raise HwmlError(f"{path}: line {i + 1}: labels must be integers") from None
        if len(labels[utt]) == 0:
            raise HwmlError(f"{path}: line {i + 1}: utterance {utt!r} has no labels")
    return labels


def _read_part(root: Path, part: str, names: list[str], label_file: str | None) -> FrameSet:
    split = root / f"{part}_split.txt"
    ids = read_split(split)
    paths = [root / "feat" / part / f"{u}.pt" for u in ids]
    for u, p in zip(ids, paths):
        if not p.is_file():
            raise HwmlError(f"{p}: file not found (utterance {u!r} is listed in {split.name})")
    labels = None
    if label_file is not None:
        by_utt = read_label_file(root / label_file)
        missing = next((u for u in ids if u not in by_utt), None)
        if missing is not None:
            raise HwmlError(f"{root / label_file}: no labels for utterance {missing!r} (listed in {split.name})")
        labels = np.concatenate([by_utt[u] for u in ids])
        check_label_range(labels, len(names), root / label_file)
        feats, offsets = load_frames(
            paths, width=MFCC_DIM, lengths=[len(by_utt[u]) for u in ids], lengths_from=label_file
        )
        labels = torch.from_numpy(labels)
    else:
        feats, offsets = load_frames(paths, width=MFCC_DIM)
    return FrameSet(feats, labels, offsets, ids, names, stacked=1)


def read_libriphone(root, *, mmap: bool = True) -> Dataset:
    """All utterances of a split in one (N, 39) tensor + offsets (mmap is unused: small enough)."""
    root = Path(root)
    names = read_class_names(root, N_CLASSES)
    train = _read_part(root, "train", names, "train_labels.txt")
    test = None
    if (root / "test_split.txt").exists():
        has_labels = (root / "test_labels.txt").exists()
        test = _read_part(root, "test", names, "test_labels.txt" if has_labels else None)
    elif (root / "test_labels.txt").exists():
        raise HwmlError(f"{root / 'test_labels.txt'}: held-out labels without test_split.txt")
    overlap = set(train.utt_ids) & set(test.utt_ids if test else ())
    if overlap:
        raise HwmlError(f"{root / 'test_split.txt'}: utterance {sorted(overlap)[0]!r} is also in train_split.txt")
    return Dataset("phoneme", "libriphone", str(root), train, test)


def _write_part(root: Path, part: str, frames: FrameSet, label_file: str | None) -> None:
    if frames.offsets is None or frames.utt_ids is None:
        raise ValueError(f"write_libriphone: the {part} FrameSet needs offsets and utt_ids")
    if frames.dim != MFCC_DIM or frames.stacked != 1:
        raise ValueError(
            f"write_libriphone: {part} features must be single (N, {MFCC_DIM}) frames, got {tuple(frames.feats.shape)}"
        )
    if len(set(frames.utt_ids)) != len(frames.utt_ids):
        raise ValueError(f"write_libriphone: duplicate utterance ids in {part}")
    feats = torch.as_tensor(np.asarray(frames.feats)) if not isinstance(frames.feats, torch.Tensor) else frames.feats
    bounds = frames.offsets.tolist()
    lines = []
    for u, s, e in zip(frames.utt_ids, bounds[:-1], bounds[1:]):
        check_plain_name(u, f"write_libriphone({part})", "utterance id")
        save_pt_atomic(root / "feat" / part / f"{u}.pt", feats[s:e], fsync=False)
        if label_file is not None:
            lines.append(" ".join([u, *map(str, frames.labels[s:e].tolist())]) + "\n")
    if label_file is not None:
        atomic_write_text(root / label_file, "".join(lines))
    atomic_write_text(root / f"{part}_split.txt", "".join(f"{u}\n" for u in frames.utt_ids))


def write_libriphone(root, train: FrameSet, test: FrameSet | None = None) -> Path:
    """Write the course's libriphone folder; split files go last, so a crash leaves no valid index."""
    root = Path(root)
    if train.labels is None:
        raise ValueError("write_libriphone: the training FrameSet needs labels")
    for part in (train, test):
        if part is not None and part.labels is not None:
            check_label_range(part.labels, len(train.class_names), "write_libriphone")
    root.mkdir(parents=True, exist_ok=True)
    for name in ("train_split.txt", "test_split.txt", "test_labels.txt"):
        (root / name).unlink(missing_ok=True)
    _write_part(root, "train", train, "train_labels.txt")
    if test is not None:
        _write_part(root, "test", test, "test_labels.txt" if test.labels is not None else None)
    write_class_names(root, train.class_names, N_CLASSES)
    return root
