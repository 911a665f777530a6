"""Audio files and recordings -> a mono float32 wave at 16 kHz, with every broken input refused.

Any format libsndfile reads: WAV (8/16/24/32-bit, float), NIST SPHERE, FLAC, OGG, MP3, AIFF, AU.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from hwml import settings
from hwml.audio.params import MFCC39, SAMPLE_RATE
from hwml.errors import HwmlError

# the audio files hwml reads (import, predict, enrol), by suffix, in the order messages list them
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".sph", ".nist", ".aiff", ".aif", ".au")
MAX_SECONDS = settings.max_audio_seconds()  # per file; None arguments read it at call time
MIN_RATE, MAX_RATE = 4000, 384000
_HOW = " (set HWML_MAX_AUDIO_SECONDS to change it)"


def is_audio(name) -> bool:
    """Whether a file name has one of AUDIO_SUFFIXES (any case)."""
    return Path(name).suffix.lower() in AUDIO_SUFFIXES


def _sphere_problem(path: Path) -> str | None:
    """libsndfile reads NIST SPHERE but neither checks its sample count nor knows 'shorten'."""
    with open(path, "rb") as f:
        head = f.read(1024)
    if not head.startswith(b"NIST_1A"):
        return None
    fields_ = dict(re.findall(rb"^(\w+) -(?:i|r|s\d+) (\S+)", head, re.M))
    if b"shorten" in fields_.get(b"sample_coding", b""):
        return "NIST SPHERE with 'shorten' compression is not supported; convert it to WAV first (sph2pipe)"
    try:
        header_bytes = int(head.split(b"\n")[1])
        count = int(fields_[b"sample_count"])
        width = int(fields_.get(b"sample_n_bytes", b"2")) * int(fields_.get(b"channel_count", b"1"))
    except (IndexError, KeyError, ValueError):
        return None  # let libsndfile judge the header
    have = (path.stat().st_size - header_bytes) // max(width, 1)
    if have < count:
        return f"truncated: the header says {count} samples, the file holds {max(have, 0)}"
    return None


def _wav_truncated(extra_info: str) -> str | None:
    """libsndfile silently shortens a WAV whose data chunk runs past the end of the file."""
    m = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", extra_info, re.M)
    if m and 0 < int(m[1]) < 0xFFFFFF00 and int(m[1]) > int(m[2]):  # not a streaming placeholder
        return f"truncated: the header says {m[1]} data bytes, the file holds {m[2]}"
    return None


def read_audio(path, *, max_seconds: float | None = None) -> tuple[torch.Tensor, int]:
    """Decode an audio file to a mono float32 wave at its own sample rate.

    Any format libsndfile reads: WAV (8/16/24/32-bit, float), NIST SPHERE, FLAC, OGG, MP3.
    Refuses (HwmlError) unreadable, truncated, empty, non-finite, too-long and too-short input.
    """
    path = Path(path)
    max_seconds = MAX_SECONDS if max_seconds is None else max_seconds
    if not path.is_file():
        raise HwmlError(f"{path}: " + ("not a file" if path.exists() else "no such file"))
    try:
        if path.stat().st_size == 0:
            raise HwmlError(f"{path}: empty file")
        problem = _sphere_problem(path)
    except OSError as e:
        raise HwmlError(f"{path}: cannot read ({e.strerror or type(e).__name__})") from None
    if problem:
        raise HwmlError(f"{path}: {problem}")
    try:
        with sf.SoundFile(path) as f:
            sr, declared = f.samplerate, f.frames
            _check_rate(sr, path)
            if declared / sr > max_seconds:
                raise HwmlError(f"{path}: {declared / sr:.1f} s is longer than the {max_seconds:g} s limit{_HOW}")
            problem = _wav_truncated(f.extra_info)
            if problem:
                raise HwmlError(f"{path}: {problem}")
            data = f.read(int(max_seconds * sr) + 1, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as e:
        reason = getattr(e, "error_string", None) or str(e)
        raise HwmlError(f"{path}: not a readable audio file ({' '.join(reason.split())})") from None
    if len(data) > max_seconds * sr:
        raise HwmlError(f"{path}: longer than the {max_seconds:g} s limit{_HOW}")
    if 0 < len(data) < 0.95 * declared < 2**62:  # MP3: decoder stopped short of the header's length
        raise HwmlError(f"{path}: truncated: decoded {len(data)} of {declared} samples")
    return _mono(data, path), sr


def load_audio(path, *, max_seconds: float | None = None) -> torch.Tensor:
    """Decode, mix to mono and resample a file: a 1-D float32 wave at 16 kHz."""
    wave, sr = read_audio(path, max_seconds=max_seconds)
    return _resample(wave, sr, SAMPLE_RATE, path)


def wave_to_16k(wave, sr: int, *, max_seconds: float | None = None, name: str = "audio") -> torch.Tensor:
    """An in-memory recording (e.g. Gradio's microphone: int16, (samples, channels)) to 16 kHz mono.

    Integer samples are scaled to [-1, 1); a 2-D array is mixed down over its channel axis
    (the shorter one when it has at most 8 entries, else the last).
    """
    try:
        x = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
        sr = int(sr)
    except (TypeError, ValueError):
        raise HwmlError(f"{name}: expected an array of samples and a sample rate") from None
    if x.dtype.kind not in "iuf" or x.ndim not in (1, 2):
        raise HwmlError(f"{name}: expected a 1-D or 2-D numeric array of samples, got {x.dtype} {x.shape}")
    if x.ndim == 2 and x.shape[0] < x.shape[1] and x.shape[0] <= 8:
        x = x.T  # (channels, samples) -> (samples, channels)
    _check_rate(sr, name)
    max_seconds = MAX_SECONDS if max_seconds is None else max_seconds
    if len(x) > max_seconds * sr:
        raise HwmlError(f"{name}: {len(x) / sr:.1f} s is longer than the {max_seconds:g} s limit{_HOW}")
    if x.dtype.kind in "iu":
        bits = 8 * x.dtype.itemsize
        offset = 2 ** (bits - 1) if x.dtype.kind == "u" else 0
        x = (x.astype(np.float64) - offset) / 2 ** (bits - 1)
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32 becomes inf: _mono says so
        wave = _mono(x.astype(np.float32, copy=False), name)
    return _resample(wave, sr, SAMPLE_RATE, name)


def _check_rate(sr: int, name) -> None:
    if not MIN_RATE <= sr <= MAX_RATE:
        raise HwmlError(f"{name}: sample rate {sr} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")


def _mono(data: np.ndarray, name) -> torch.Tensor:
    if data.size == 0:
        raise HwmlError(f"{name}: no audio samples")
    wave = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1) if data.ndim == 2 else data))
    if not torch.isfinite(wave).all():
        raise HwmlError(f"{name}: contains NaN or infinite samples")
    return wave


@functools.lru_cache(maxsize=16)
def _resampler(orig: int, new: int):
    import torchaudio  # here, not at the top: importing decode (AUDIO_SUFFIXES) stays light

    return torchaudio.transforms.Resample(orig, new)


def _resample(wave: torch.Tensor, sr: int, target: int, name) -> torch.Tensor:
    if wave.numel() * target < MFCC39.n_fft * sr:
        raise HwmlError(f"{name}: {wave.numel() / sr * 1000:.1f} ms is shorter than one 25 ms analysis window")
    if sr != target:
        if target // math.gcd(sr, target) > 640:  # odd rate (e.g. 44101 Hz): a huge polyphase kernel;
            sr = round(sr / 25) * 25  # treat it as the nearest multiple of 25 Hz (< 0.3 % off)
        with torch.no_grad():
            wave = _resampler(sr, target)(wave)
    return wave.contiguous()
