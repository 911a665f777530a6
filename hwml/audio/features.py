"""MFCC-39 (HW2) and log-mel-40 (HW4) features of a 16 kHz wave, with torchaudio.

Framing (both kinds): Hann windows of `win_length` samples every `hop_length` samples at
16 kHz, no centre padding (torchaudio `center=False`); see `hwml.audio.frames` for frame times.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torchaudio

from hwml.audio.decode import load_audio, wave_to_16k
from hwml.audio.params import LOGMEL40, MFCC39, FeatureParams
from hwml.errors import HwmlError

LOG_FLOOR = 1e-6  # added before the log; the same offset torchaudio's MFCC(log_mels=True) uses


def _mel_kwargs(p: FeatureParams) -> dict:
    """The mel filterbank both kinds share: Hann windows, no centre padding, power spectrum."""
    return dict(
        n_fft=p.n_fft,
        win_length=p.win_length,
        hop_length=p.hop_length,
        f_min=p.f_min,
        f_max=p.f_max,
        n_mels=p.n_mels,
        center=False,
        power=2.0,
    )


@functools.lru_cache(maxsize=8)
def _mel(p: FeatureParams) -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(sample_rate=p.sample_rate, **_mel_kwargs(p))


@functools.lru_cache(maxsize=8)
def _mfcc(p: FeatureParams) -> torchaudio.transforms.MFCC:
    return torchaudio.transforms.MFCC(
        sample_rate=p.sample_rate, n_mfcc=p.n_mfcc, log_mels=True, melkwargs=_mel_kwargs(p)
    )


def _check_wave(wave, p: FeatureParams, kind: str) -> torch.Tensor:
    if p.kind != kind:
        raise ValueError(f"{kind}() called with {p.kind} params")
    try:
        w = torch.as_tensor(wave, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        raise HwmlError(f"audio: expected a 1-D float wave, got {type(wave).__name__}") from None
    if w.ndim != 1:
        raise HwmlError(f"audio: expected a 1-D wave, got shape {tuple(w.shape)}")
    if w.numel() < p.n_fft:
        raise HwmlError(f"audio: {w.numel()} samples is shorter than one {p.n_fft}-sample analysis window")
    if not torch.isfinite(w).all():
        raise HwmlError("audio: contains NaN or infinite samples")
    return w


def _cmvn(x: torch.Tensor) -> torch.Tensor:
    """Per-utterance mean/variance normalisation of each feature dimension."""
    return (x - x.mean(0)) / x.std(0, correction=0).clamp_min(1e-5)


def mfcc39(wave, params: FeatureParams = MFCC39) -> torch.Tensor:
    """(T, 39): 13 MFCCs, their deltas and delta-deltas, normalised per utterance (HW2)."""
    w = _check_wave(wave, params, "mfcc39")
    with torch.no_grad():
        c = _mfcc(params)(w)  # (13, T)
        d1 = torchaudio.functional.compute_deltas(c, win_length=params.delta_win)
        d2 = torchaudio.functional.compute_deltas(d1, win_length=params.delta_win)
        x = torch.cat([c, d1, d2]).T.contiguous()
    return _cmvn(x) if params.cmvn else x


def logmel40(wave, params: FeatureParams = LOGMEL40) -> torch.Tensor:
    """(T, 40): log mel filterbank energies (HW4)."""
    w = _check_wave(wave, params, "logmel40")
    with torch.no_grad():
        x = torch.log(_mel(params)(w) + LOG_FLOOR).T.contiguous()
    return _cmvn(x) if params.cmvn else x


def featurize(
    source, params: FeatureParams = MFCC39, *, sample_rate: int | None = None, max_seconds: float | None = None
) -> torch.Tensor:
    """(T, params.dim) float32 features of an audio file or of an array.

    An array with `sample_rate` goes through `wave_to_16k` (any dtype, mono or multi-channel);
    without it, it must already be a 1-D float wave at 16 kHz.
    """
    if isinstance(source, (str, Path)):
        wave = load_audio(source, max_seconds=max_seconds)
    elif sample_rate is not None:
        wave = wave_to_16k(source, sample_rate, max_seconds=max_seconds)
    else:
        wave = source
    return (mfcc39 if params.kind == "mfcc39" else logmel40)(wave, params)


def mfcc_frames(wave, params: FeatureParams = MFCC39) -> torch.Tensor:
    """(T, n_mfcc) cepstra before deltas and normalisation: the frame-local part of `mfcc39`,
    which `hwml.audio.stream` computes chunk by chunk (each frame depends on its own samples only)."""
    w = _check_wave(wave, params, "mfcc39")
    with torch.no_grad():
        return _mfcc(params)(w).T.contiguous()


def log_mel_frames(wave, params: FeatureParams = LOGMEL40) -> torch.Tensor:
    """(T, n_mels) log mel energies before normalisation, of any feature kind's filterbank: the
    frame-local part of `logmel40` (hwml.audio.stream; the Live view's spectrogram)."""
    w = _check_wave(wave, params, params.kind)
    with torch.no_grad():
        return torch.log(_mel(params)(w) + LOG_FLOOR).T.contiguous()


def deltas(x: torch.Tensor, params: FeatureParams = MFCC39) -> torch.Tensor:
    """(T, D) -> (T, D) time derivatives, edge frames repeated: the deltas `mfcc39` appends."""
    with torch.no_grad():
        return torchaudio.functional.compute_deltas(x.T, win_length=params.delta_win).T
