"""Speaker batches as index gathers: a training batch is offsets + random starts (one seeded
generator) -> one index tensor -> feats[index], with a length mask instead of -20 padding
(pitfalls 4, 7 and 10 of the Learn tab); inference batches are whole utterances by length."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from hwml.data.types import UtteranceSet
from hwml.errors import HwmlError


def random_crops(
    utts: UtteranceSet, idx: Tensor, segment_len: int, gen: torch.Generator, keep: slice = slice(None)
) -> tuple[Tensor, Tensor]:
    """(B, W, n_mels) crops of utterances idx and their (B, W) mask, W = min(segment_len, longest).

    One uniform start per utterance from `gen`; utterances shorter than W are zero-padded and
    masked. One gather for the whole batch, or for its rows `keep` only (the draws are the same).
    """
    lengths = utts.lengths[idx]
    width = int(min(segment_len, int(lengths.max())))
    room = (lengths - width).clamp(min=0)
    start = (torch.rand(len(idx), generator=gen) * (room + 1)).long().clamp(max=room)
    return gather_windows(utts, idx[keep], start[keep], lengths.clamp(max=width)[keep], width)


def gather_windows(utts: UtteranceSet, utt: Tensor, start: Tensor, length: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """Frames [start, start+length) of each utterance, zero-padded to width, with their mask."""
    t = torch.arange(width)
    mask = t[None, :] < length[:, None]
    base = utts.offsets[utt] + start
    index = torch.where(mask, base[:, None] + t[None, :], base[:, None])
    x = utts.feats[index]
    if length.min() < width:
        x.masked_fill_(~mask[..., None], 0.0)
    return x, mask


@dataclass
class WindowBatch:
    """Whole utterances `utts` (sorted batch of indices), as window rows owned by them."""

    utts: Tensor  # (U,) utterance indices into the set
    owner: Tensor  # (R,) row -> position in utts
    x: Tensor  # (R, W, n_mels)
    mask: Tensor  # (R, W)


def window_batches(
    utts: UtteranceSet, indices: Tensor | None = None, window: int = 512, max_frames: int = 16384
) -> Iterator[WindowBatch]:
    """Whole-utterance batches for inference: by similar length, at most ~max_frames padded frames.

    An utterance longer than `window` becomes windows of `window` frames every window/2 frames
    (the last one flush with the end); all windows of an utterance share one batch.
    """
    indices = torch.arange(len(utts)) if indices is None else indices
    lengths = utts.lengths[indices]
    hop = max(1, window // 2)
    n_win = torch.where(lengths <= window, 1, (lengths - window + hop - 1) // hop + 1)
    width = lengths.clamp(max=window)
    order = torch.argsort(lengths, stable=True).tolist()
    n_win_l, width_l = n_win.tolist(), width.tolist()
    batch: list[int] = []
    rows = 0
    for i in order:
        if batch and (rows + n_win_l[i]) * width_l[i] > max_frames:
            yield _window_batch(utts, indices, torch.tensor(batch), lengths, window, hop)
            batch, rows = [], 0
        batch.append(i)
        rows += n_win_l[i]
    if batch:
        yield _window_batch(utts, indices, torch.tensor(batch), lengths, window, hop)


def _window_batch(utts, indices, pos, lengths, window, hop) -> WindowBatch:
    L = lengths[pos]
    n_win = torch.where(L <= window, 1, (L - window + hop - 1) // hop + 1)
    owner = torch.repeat_interleave(torch.arange(len(pos)), n_win)
    k = torch.arange(len(owner)) - torch.repeat_interleave(torch.cumsum(n_win, 0) - n_win, n_win)
    start = torch.minimum(k * hop, (L[owner] - window).clamp(min=0))
    length = L[owner].clamp(max=window)
    x, mask = gather_windows(utts, indices[pos][owner], start, length, int(length.max()))
    return WindowBatch(pos, owner, x, mask)


def average_rows(rows: Tensor, owner: Tensor, n: int) -> Tensor:
    """Mean of the rows that belong to each of n owners."""
    total = rows.new_zeros((n, rows.shape[-1])).index_add_(0, owner, rows)
    count = torch.bincount(owner, minlength=n).to(rows.dtype).clamp(min=1)
    return total / count[:, None]


def as_utterances(feats: UtteranceSet | list | tuple | Tensor) -> UtteranceSet:
    """An UtteranceSet from a list of (T, n_mels) tensors (or a single one)."""
    if isinstance(feats, UtteranceSet):
        return feats
    if getattr(feats, "ndim", None) == 2:  # one (T, n_mels) tensor or array
        feats = [feats]
    items = [torch.as_tensor(f, dtype=torch.float32) for f in feats]
    if not items or any(f.ndim != 2 or f.shape[0] == 0 or f.shape[1] != items[0].shape[1] for f in items):
        raise HwmlError("expected one or more non-empty (frames, n_mels) feature matrices of equal width")
    lengths = torch.tensor([len(f) for f in items])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)])
    return UtteranceSet(torch.cat(items), offsets, [str(i) for i in range(len(items))], None, [])
