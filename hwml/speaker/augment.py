"""Augmentations of log-mel training crops: small composable functions, one seeded generator.

All work on (B, T, n_mels) crops of log mel power (`hwml.audio.features.logmel40`) with their (B, T)
length mask, and leave padded frames untouched. They stand in for what speaker-recognition
recipes do to the waveform (level, additive noise) at a fraction of the cost: in the log-mel
domain a gain is an added constant and noise is log(exp(x) + noise power).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _crop_mean(x: Tensor, mask: Tensor, dims=(1,)) -> Tensor:
    keep = mask[..., None].to(x.dtype)
    return (x * keep).sum(dims, keepdim=True) / keep.sum(dims, keepdim=True).clamp(min=1)


def spec_augment(x: Tensor, mask: Tensor, freq_mask: int, time_mask: int, gen: torch.Generator) -> Tensor:
    """SpecAugment-style masking (Park et al. 2019): per crop one band of up to
    `freq_mask` mel bins and one span of up to `time_mask` frames is replaced by the crop's own
    mean (neutral under any input normalisation). Padding stays zero."""
    b, t, d = x.shape
    mean = _crop_mean(x, mask)
    hit = torch.zeros(b, t, d, dtype=torch.bool)
    if freq_mask:
        width = torch.randint(0, freq_mask + 1, (b,), generator=gen)
        start = (torch.rand(b, generator=gen) * (d - width + 1)).long()
        bins = torch.arange(d)
        hit |= ((bins >= start[:, None]) & (bins < (start + width)[:, None]))[:, None, :]
    if time_mask:
        length = mask.sum(1)
        width = torch.minimum(torch.randint(0, time_mask + 1, (b,), generator=gen), length // 4)
        start = (torch.rand(b, generator=gen) * (length - width + 1)).long()
        steps = torch.arange(t)
        hit |= ((steps >= start[:, None]) & (steps < (start + width)[:, None]))[:, :, None]
    hit &= mask[..., None]
    return torch.where(hit, mean.expand_as(x), x)


def random_level(x: Tensor, mask: Tensor, max_db: float, gen: torch.Generator) -> Tensor:
    """A random gain of up to +-max_db per crop: a constant added to log power."""
    gain_db = (torch.rand(x.shape[0], generator=gen) * 2 - 1) * max_db
    shift = gain_db * (math.log(10) / 10)
    return torch.where(mask[..., None], x + shift[:, None, None], x)


def random_noise(x: Tensor, mask: Tensor, snr_db: tuple[float, float], prob: float, gen: torch.Generator) -> Tensor:
    """Additive coloured noise at a random SNR (uniform in snr_db) on a share `prob` of the crops.

    The noise has a random spectral tilt (from bass-heavy hum to hiss) and fluctuates frame to
    frame like a filtered random signal (gamma-distributed band power); its level is set
    against the crop's mean power, so the SNR holds for loud and quiet speakers alike.
    """
    b, t, d = x.shape
    hit = torch.rand(b, generator=gen) < prob
    if not bool(hit.any()):
        return x
    power = x.exp()
    keep = mask[..., None].to(x.dtype)
    speech = (power * keep).sum((1, 2)) / (keep.sum((1, 2)) * d).clamp(min=1)
    snr = snr_db[0] + torch.rand(b, generator=gen) * (snr_db[1] - snr_db[0])
    level = speech * 10 ** (-snr / 10)
    tilt = (torch.rand(b, generator=gen) * 2 - 1) * 3.0  # +-3 nepers across the band
    shape = torch.exp(tilt[:, None] * torch.linspace(-0.5, 0.5, d)[None, :])
    shape = shape / shape.mean(1, keepdim=True)
    noise = level[:, None, None] * shape[:, None, :] * _gamma4(b, t, d, gen)
    noisy = torch.log(power + noise)
    return torch.where(hit[:, None, None] & mask[..., None], noisy, x)


def _gamma4(b: int, t: int, d: int, gen: torch.Generator) -> Tensor:
    """Gamma(4, 4) samples from `gen` (the sum of 4 unit exponentials, over 4)."""
    u = torch.rand(4, b, t, d, generator=gen).clamp(min=1e-12)
    return -u.log().sum(0) / 4
