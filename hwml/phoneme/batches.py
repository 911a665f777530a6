"""Phoneme batches, gathered by one index tensor each: no Dataset, no DataLoader, no Python call
per frame (pitfall 7 of the Learn tab, hwml/lessons/pitfalls.py).

Frames stay where the reader put them (a (N, 39) tensor for libriphone, a read-only (N, 429)
memmap for timit_11): random row indices (sorted, for memmap locality), context windows clamped to
each frame's own utterance (`hwml.audio.frames.context_indices`), or whole-utterance chunks for
the sequence model.
"""

from __future__ import annotations

import numpy as np
import torch

from hwml.audio.frames import context_indices
from hwml.data.types import FrameSet
from hwml.errors import HwmlError


def gather_rows(feats, rows: torch.Tensor) -> torch.Tensor:
    """feats[rows] as a float32 tensor; on a numpy memmap one fancy-indexing read."""
    if isinstance(feats, torch.Tensor):
        return feats[rows]
    return torch.from_numpy(np.ascontiguousarray(feats[rows.numpy()], dtype=np.float32))


def utterance_bounds(frames: FrameSet) -> tuple[torch.Tensor, torch.Tensor]:
    """(start, end) of each frame's utterance; a split without offsets is one utterance."""
    n = len(frames)
    offsets = frames.offsets if frames.offsets is not None else torch.tensor([0, n])
    lengths = offsets[1:] - offsets[:-1]
    return torch.repeat_interleave(offsets[:-1], lengths), torch.repeat_interleave(offsets[1:], lengths)


def stacked_inputs(frames: FrameSet, rows: torch.Tensor, n: int, bounds=None) -> torch.Tensor:
    """(B, n * 39) model inputs for frame rows: the stored window when it already is n frames
    wide (timit_11), else n frames around each row, clamped to its utterance (edge repeat)."""
    if frames.stacked == n:
        return gather_rows(frames.feats, rows)
    if frames.stacked != 1:
        raise HwmlError(f"features are {frames.stacked}-frame windows but the model needs {n}-frame windows")
    start, end = bounds if bounds is not None else utterance_bounds(frames)
    idx = context_indices(rows, start[rows], end[rows], n)
    return gather_rows(frames.feats, idx.reshape(-1)).reshape(len(rows), -1)


def subset(frames: FrameSet, rows: torch.Tensor | None = None, utts: list[int] | None = None) -> FrameSet:
    """A FrameSet of some rows (no boundaries kept) or of whole utterances (boundaries kept)."""
    if utts is not None:
        starts, ends = frames.offsets[utts], frames.offsets[[u + 1 for u in utts]]
        rows = (
            torch.cat([torch.arange(int(s), int(e)) for s, e in zip(starts, ends)])
            if utts
            else torch.zeros(0, dtype=torch.long)
        )
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(ends - starts, 0)])
        ids = [frames.utt_ids[u] for u in utts]
    else:
        offsets, ids = None, None
    labels = frames.labels[rows] if frames.labels is not None else None
    return FrameSet(gather_rows(frames.feats, rows), labels, offsets, ids, frames.class_names, frames.stacked)


def utterance_batches(frames: FrameSet, utts: torch.Tensor, max_frames: int):
    """Whole utterances grouped by similar length (padded size <= max_frames), each padded by
    repeating its last frame. Yields ((x (B, T, D), lengths), rows of the real frames)."""
    offsets = frames.offsets
    lengths = offsets[utts + 1] - offsets[utts]
    order = utts[torch.argsort(lengths, descending=True)]
    i = 0
    while i < len(order):
        T = int(offsets[order[i] + 1] - offsets[order[i]])
        group = order[i : i + max(1, max_frames // max(T, 1))]
        i += len(group)
        start, length = offsets[group], offsets[group + 1] - offsets[group]
        idx = torch.minimum(start[:, None] + torch.arange(T)[None, :], (start + length - 1)[:, None])
        mask = torch.arange(T)[None, :] < length[:, None]
        x = gather_rows(frames.feats, idx.reshape(-1)).reshape(len(group), T, -1)
        yield (x, length), idx[mask]
