"""HW2 (2021) "timit_11" folder: 11-frame MFCC windows as .npy, labels as strings.

Course files: `train_11.npy` float32 (N, 429), `train_label_11.npy` (N,) `<U2` strings '0'..'38',
`test_11.npy` (M, 429). hwml sidecars: `classes.txt`, `test_label_11.npy` (held-out answers).
The course set is 1.23 M x 429 (2.1 GB), so features stay memory-mapped: validating them reads
the file in chunks through ordinary reads, which leaves no mapped pages resident.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hwml.audio.params import MFCC_DIM
from hwml.data.common import check_label_range, read_class_names, write_class_names
from hwml.data.types import Dataset, FrameSet
from hwml.errors import HwmlError
from hwml.safeio import load_npy, save_npy_atomic

N_CLASSES = 39
CONTEXT = 11  # the course's rows: 11-frame windows of MFCC_DIM features
TRAIN, TRAIN_LABELS, TEST, TEST_LABELS = "train_11.npy", "train_label_11.npy", "test_11.npy", "test_label_11.npy"
_CHUNK_BYTES = 16 * 2**20


def _all_finite(path: Path, feats: np.ndarray) -> bool:
    """NaN/inf anywhere? A float64 sum is finite iff every float32 term is, and costs no temp array."""
    rows = max(1, _CHUNK_BYTES // (feats.shape[1] * 4))
    if not isinstance(feats, np.memmap):
        return all(
            np.isfinite(np.add.reduce(feats[i : i + rows], axis=None, dtype=np.float64))
            for i in range(0, len(feats), rows)
        )
    buf = np.empty((rows, feats.shape[1]), dtype=np.float32)
    with open(path, "rb") as f:
        f.seek(feats.offset)
        for i in range(0, len(feats), rows):
            chunk = buf[: min(rows, len(feats) - i)]
            if f.readinto(memoryview(chunk).cast("B")) != chunk.nbytes:
                raise HwmlError(f"{path}: truncated")
            if not np.isfinite(np.add.reduce(chunk, axis=None, dtype=np.float64)):
                return False
    return True


def _read_feats(path: Path, mmap: bool) -> np.ndarray:
    feats = load_npy(path, mmap=mmap, max_bytes=None)
    if feats.ndim != 2:
        raise HwmlError(f"{path}: expected a 2-D (frames, {CONTEXT * MFCC_DIM}) array, got shape {feats.shape}")
    if feats.dtype.kind != "f":
        raise HwmlError(f"{path}: dtype {feats.dtype}, expected float32 features")
    if len(feats) == 0:
        raise HwmlError(f"{path}: empty, no frames")
    if feats.shape[1] == 0 or feats.shape[1] % MFCC_DIM or (feats.shape[1] // MFCC_DIM) % 2 == 0:
        raise HwmlError(
            f"{path}: has {feats.shape[1]} columns, expected {MFCC_DIM} x an odd number of "
            f"frames ({CONTEXT * MFCC_DIM} in the course)"
        )
    if feats.dtype != np.float32 or not feats.dtype.isnative or not feats.flags.c_contiguous:
        feats = np.ascontiguousarray(feats, dtype=np.float32)  # rare (never the course files): a copy
    if not _all_finite(path, feats):
        raise HwmlError(f"{path}: contains NaN or infinite values")
    return feats


def _read_labels(path: Path, n_rows: int, feats_name: str, n_classes: int) -> torch.Tensor:
    raw = load_npy(path)
    if raw.ndim != 1:
        raise HwmlError(f"{path}: expected a 1-D array of labels, got shape {raw.shape}")
    if len(raw) != n_rows:
        raise HwmlError(f"{path}: has {len(raw)} labels but {feats_name} has {n_rows} rows")
    if raw.dtype.kind not in "USiu":
        raise HwmlError(f"{path}: dtype {raw.dtype}, expected label strings like '0'..'{n_classes - 1}'")
    labels = np.empty(len(raw), dtype=np.int64)
    step = 1 << 20
    for i in range(0, len(raw), step):
        try:
            labels[i : i + step] = raw[i : i + step].astype(np.int64)
        except (ValueError, OverflowError):
            bad = next((s for s in raw[i : i + step].tolist() if not str(s).strip().isdigit()), "?")
            raise HwmlError(f"{path}: label {bad!r} is not a class number") from None
    check_label_range(labels, n_classes, path)
    return torch.from_numpy(labels)


def read_timit11(root, *, mmap: bool = True) -> Dataset:
    root = Path(root)
    names = read_class_names(root, N_CLASSES)
    feats = _read_feats(root / TRAIN, mmap)
    stacked = feats.shape[1] // MFCC_DIM
    train = FrameSet(
        feats, _read_labels(root / TRAIN_LABELS, len(feats), TRAIN, len(names)), None, None, names, stacked
    )
    test = None
    if (root / TEST).exists():
        test_feats = _read_feats(root / TEST, mmap)
        if test_feats.shape[1] != feats.shape[1]:
            raise HwmlError(f"{root / TEST}: has {test_feats.shape[1]} columns but {TRAIN} has {feats.shape[1]}")
        test_labels = None
        if (root / TEST_LABELS).exists():
            test_labels = _read_labels(root / TEST_LABELS, len(test_feats), TEST, len(names))
        test = FrameSet(test_feats, test_labels, None, None, names, stacked)
    elif (root / TEST_LABELS).exists():
        raise HwmlError(f"{root / TEST_LABELS}: held-out labels without {TEST}")
    return Dataset("phoneme", "timit_11", str(root), train, test)


def _label_strings(labels: torch.Tensor, n_classes: int) -> np.ndarray:
    """Course labels are decimal strings, `<U2` for its 39 classes."""
    return labels.numpy().astype(f"<U{max(2, len(str(n_classes - 1)))}")


def _feats_array(frames: FrameSet) -> np.ndarray:
    feats = frames.feats
    feats = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else feats
    return np.asarray(feats, dtype=np.float32)


def write_timit11(root, train: FrameSet, test: FrameSet | None = None) -> Path:
    """Write the course's timit_11 folder (plus `classes.txt` / `test_label_11.npy` when they carry
    information). Feature rows must already be 11-frame (odd-frame) windows of 39-dim MFCCs."""
    root = Path(root)
    if train.labels is None:
        raise ValueError("write_timit11: the training FrameSet needs labels")
    for part in (train, test):
        if part is not None and (part.feats.ndim != 2 or part.dim % MFCC_DIM or part.dim // MFCC_DIM % 2 == 0):
            raise ValueError(f"write_timit11: features must be (N, 39 x odd frames), got {tuple(part.feats.shape)}")
    n_classes = len(train.class_names)
    for part in (train, test):
        if part is not None and part.labels is not None:
            check_label_range(part.labels, n_classes, "write_timit11")
    root.mkdir(parents=True, exist_ok=True)
    save_npy_atomic(root / TRAIN, _feats_array(train))
    save_npy_atomic(root / TRAIN_LABELS, _label_strings(train.labels, n_classes))
    for name in (TEST, TEST_LABELS):
        (root / name).unlink(missing_ok=True)
    if test is not None:
        save_npy_atomic(root / TEST, _feats_array(test))
        if test.labels is not None:
            save_npy_atomic(root / TEST_LABELS, _label_strings(test.labels, n_classes))
    write_class_names(root, train.class_names, N_CLASSES)
    return root
