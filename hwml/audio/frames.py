"""Frames in time: how many a wave gives, their centres, their phone labels, context windows.

Frame t covers samples [t*hop, t*hop + n_fft) (n_fft == win_length == 400 by default, i.e. 25 ms
every 10 ms), its centre is t*hop + n_fft/2, and a wave of n samples has 1 + (n - n_fft) // hop
frames (none if n < n_fft). A frame's phone label is the phone under its centre (`label_frames`).
"""

from __future__ import annotations

import torch

from hwml.audio.params import MFCC39, FeatureParams
from hwml.errors import HwmlError


def num_frames(n_samples: int, params: FeatureParams = MFCC39) -> int:
    """How many frames `featurize` gives for a wave of n_samples (at params.sample_rate)."""
    return 0 if n_samples < params.n_fft else 1 + (n_samples - params.n_fft) // params.hop_length


def frame_times(n_frames: int, params: FeatureParams = MFCC39) -> torch.Tensor:
    """(T,) float64 time in seconds of each frame's centre."""
    t = torch.arange(n_frames, dtype=torch.float64)
    return (t * params.hop_length + params.n_fft / 2) / params.sample_rate


def label_frames(n_frames: int, starts, ends, labels, sample_rate: int, params: FeatureParams = MFCC39) -> torch.Tensor:
    """(T,) int64 label of each frame: that of the segment [start, end) under the frame's centre.

    starts/ends are sample indices at `sample_rate` (the source file's own rate, as in a TIMIT
    .phn), labels the class index of each segment. Frames whose centre lies in no segment get
    -1 (as do segments labelled -1). Exact integer arithmetic: no rounding at boundaries.
    """
    starts, ends, labels = (torch.as_tensor(v, dtype=torch.int64).reshape(-1) for v in (starts, ends, labels))
    if n_frames <= 0 or starts.numel() == 0:
        return torch.full((max(n_frames, 0),), -1, dtype=torch.int64)
    order = torch.argsort(starts, stable=True)
    starts, ends, labels = starts[order], ends[order], labels[order]
    scale = 2 * params.sample_rate  # both sides in units of 1 / (2 * sr_src * sr_feat) seconds
    centre = (2 * params.hop_length * torch.arange(n_frames, dtype=torch.int64) + params.n_fft) * sample_rate
    seg = torch.searchsorted(starts * scale, centre, right=True) - 1
    safe = seg.clamp_min(0)
    inside = (seg >= 0) & (centre < ends[safe] * scale)
    return torch.where(inside, labels[safe], torch.full_like(safe, -1))


def _check_odd(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n % 2 == 0:
        raise HwmlError(f"concat_nframes must be a positive odd integer, got {n!r}")


def stack_context(frames, n: int) -> torch.Tensor:
    """(T, D) -> (T, n*D): each frame with its (n-1)/2 neighbours each side, edge frames repeated.

    Row t is frames[t-h], ..., frames[t], ..., frames[t+h] (h = n // 2), as the course's
    libriphone `concat_feat`.
    """
    _check_odd(n)
    x = torch.as_tensor(frames)
    if x.ndim != 2:
        raise HwmlError(f"features: expected a 2-D (frames, dims) array, got shape {tuple(x.shape)}")
    T, D = x.shape
    if T == 0:
        return x.new_zeros((0, n * D))
    idx = (torch.arange(T).unsqueeze(1) + torch.arange(-(n // 2), n // 2 + 1)).clamp_(0, T - 1)
    return x[idx].reshape(T, n * D)


def context_indices(frame_idx: torch.Tensor, utt_start: torch.Tensor, utt_end: torch.Tensor, n: int) -> torch.Tensor:
    """(B, n) row indices of each frame's context window, clamped into its own utterance.

    frame_idx, utt_start, utt_end: (B,) int64 global row indices; utt_end is exclusive.
    `feats[context_indices(...)].reshape(B, -1)` is `stack_context` for a batch of frames
    drawn from many utterances at once.
    """
    _check_odd(n)
    offsets = torch.arange(-(n // 2), n // 2 + 1, device=frame_idx.device)
    idx = frame_idx.unsqueeze(1) + offsets
    return torch.minimum(torch.maximum(idx, utt_start.unsqueeze(1)), (utt_end - 1).unsqueeze(1))


def label_segments(labels: list[str], params: FeatureParams) -> list[tuple[float, float, str]]:
    """Runs of equal frame labels as (start s, end s, label). Boundaries lie half a hop either
    side of the frame centres, so the segments tile the file from 0 without gaps."""
    if not labels:
        return []
    centres = frame_times(len(labels), params).tolist()
    half = params.hop_length / params.sample_rate / 2
    out, first = [], 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[first]:
            start = 0.0 if first == 0 else centres[first] - half
            out.append((round(start, 4), round(centres[t - 1] + half, 4), labels[first]))
            first = t
    return out
