"""Pieces every course-format reader and writer shares: class-name sidecars, id and label checks,
and loading many per-utterance feature files into one contiguous tensor."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hwml import settings
from hwml.errors import HwmlError
from hwml.safeio import atomic_write_text, load_tensor_file, read_text

CLASSES_FILE = "classes.txt"
_PLAIN_NAME = re.compile(r"[^/\\\s\x00]+")


def default_class_names(n: int) -> list[str]:
    return [str(i) for i in range(n)]


def read_class_names(root: Path, n_default: int) -> list[str]:
    """Names from hwml's `classes.txt` sidecar (line i names label i), else the course's "0".."n-1"."""
    path = root / CLASSES_FILE
    if not path.exists():
        return default_class_names(n_default)
    names = [line.strip() for line in read_text(path).splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise HwmlError(f"{path}: lists no class names")
    for i, name in enumerate(names):
        if not name:
            raise HwmlError(f"{path}: line {i + 1} is empty, expected a class name")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise HwmlError(f"{path}: class name {dup!r} appears twice")
    return names


def write_class_names(root: Path, names: list[str], n_default: int) -> None:
    """Write `classes.txt` unless the names are the course's own numbers (then drop a stale one)."""
    if list(names) == default_class_names(n_default):
        (root / CLASSES_FILE).unlink(missing_ok=True)
    else:
        if any(not n or n != n.strip() or "\n" in n or "\r" in n for n in names):
            raise ValueError("class names must be non-empty single-line strings without outer spaces")
        atomic_write_text(root / CLASSES_FILE, "".join(f"{n}\n" for n in names))


def check_plain_name(name: str, path, where: str) -> str:
    """Utterance ids and feature paths become file names: no folders, no '..', no whitespace."""
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name) or name in (".", ".."):
        raise HwmlError(f"{path}: {where}: {name!r} is not a plain file name")
    return name


def check_label_range(labels: np.ndarray | torch.Tensor, n_classes: int, path) -> None:
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        bad = int(labels.min()) if int(labels.min()) < 0 else int(labels.max())
        raise HwmlError(f"{path}: label {bad} is out of range 0..{n_classes - 1}")


def offsets_from_lengths(lengths) -> torch.Tensor:
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.as_tensor(lengths, dtype=torch.int64), 0)
    return offsets


def load_frames(
    paths: list[Path],
    *,
    width: int | None = None,
    lengths: list[int] | None = None,
    lengths_from: str = "",
    out: torch.Tensor | None = None,
    workers: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-utterance (T, width) files -> one (sum T, width) float32 tensor + (U+1,) offsets.

    With `lengths` known up front (labels, mel_len) the result is preallocated (or `out`, e.g. a
    memory-mapped cache) and filled in place, so peak memory is the data once, not twice.
    Many files (PARALLEL_MIN_FILES+, e.g. the course's 64,666): read by `workers` processes
    (default `load_workers()`, torch's DataLoader), chunk by chunk in order; torch.load is
    GIL-bound, so threads measured slower and processes are what runs in parallel
    (bench_data_scale.py --hw4 --compare-workers).
    """
    progress = tqdm(paths, desc="loading features", unit="file", leave=False, disable=len(paths) < 5000)
    if lengths is None:
        parts = []
        for path in progress:
            parts.append(load_tensor_file(path, width=width))
            width = parts[-1].shape[1]
        return torch.cat(parts), offsets_from_lengths([len(x) for x in parts])
    if width is None:
        width = load_tensor_file(paths[0]).shape[1]
    for path, n in zip(paths, lengths):  # bound the allocation by what the files can hold
        if n * width > path.stat().st_size:
            raise HwmlError(f"{path}: {lengths_from} says {n} frames, more than the file holds")
    feats = out if out is not None else torch.empty(sum(lengths), width, dtype=torch.float32)
    workers = load_workers() if workers is None else workers
    if workers > 1 and len(paths) >= PARALLEL_MIN_FILES:
        _load_parallel(paths, lengths, width, lengths_from, feats, workers, progress)
        return feats, offsets_from_lengths(lengths)
    _load_into(feats, progress, lengths, width, lengths_from)
    return feats, offsets_from_lengths(lengths)


PARALLEL_MIN_FILES = 2000  # fewer files load faster in this process than a pool starts
CHUNK_FILES = 500  # files per job: ~40 MB of course-size features through the pipe


def load_workers() -> int:
    """Processes that load a big folder ($HWML_LOAD_WORKERS: hwml.settings.load_workers)."""
    return settings.load_workers()


def _load_into(out: torch.Tensor, paths, lengths: list[int], width: int, lengths_from: str) -> torch.Tensor:
    """The files' frames, one after another into `out`, each checked against its stated length."""
    start = 0
    for path, n in zip(paths, lengths):
        x = load_tensor_file(path, width=width)
        if len(x) != n:
            raise HwmlError(f"{path}: has {len(x)} frames but {lengths_from} says {n}")
        out[start : start + n] = x
        start += n
    return out


def _load_chunk(paths: list[Path], lengths: list[int], width: int, lengths_from: str) -> torch.Tensor:
    """One chunk of files' frames, concatenated (a worker of _load_parallel, or this process)."""
    return _load_into(torch.empty(sum(lengths), width, dtype=torch.float32), paths, lengths, width, lengths_from)


class _Chunks(torch.utils.data.Dataset):
    """CHUNK_FILES files per item; a bad file's HwmlError comes back as its message (a str), so
    the caller raises the usual one-line error and not the DataLoader's wrapped traceback."""

    def __init__(self, paths, lengths, width, lengths_from):
        self.paths, self.lengths, self.width, self.lengths_from = paths, lengths, width, lengths_from
        self.bounds = list(range(0, len(paths), CHUNK_FILES)) + [len(paths)]

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def __getitem__(self, i: int):
        a, b = self.bounds[i], self.bounds[i + 1]
        try:
            return _load_chunk(self.paths[a:b], self.lengths[a:b], self.width, self.lengths_from)
        except HwmlError as exc:
            return str(exc)


def _load_parallel(paths, lengths, width, lengths_from, feats: torch.Tensor, workers: int, progress) -> None:
    """Fill feats from the files with torch's DataLoader: `workers` processes, chunks back in
    order through shared memory, at most 2 a worker in flight (memory stays ~ that, not the set
    twice); the first bad file's error is raised."""
    chunks = _Chunks(paths, lengths, width, lengths_from)
    starts = offsets_from_lengths(lengths).tolist()
    loader = iter(torch.utils.data.DataLoader(chunks, batch_size=None, num_workers=workers, prefetch_factor=2))
    try:
        for a, b, chunk in zip(chunks.bounds[:-1], chunks.bounds[1:], loader):
            if isinstance(chunk, str):
                raise HwmlError(chunk)
            feats[starts[a] : starts[b]] = chunk
            del chunk
            progress.update(b - a)
    finally:
        del loader  # stops the workers, also after an error
    progress.close()
