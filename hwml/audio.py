"""Audio in, features out: the one place hwml turns sound into the course's features.

The built-in corpus, the importers and inference (uploads, the microphone) all call
`featurize` with the `FeatureParams` stored beside the data or in the checkpoint, so training
and test features cannot drift apart.

Framing (both kinds): Hann windows of `win_length` samples every `hop_length` samples at
16 kHz, no centre padding (torchaudio `center=False`). Frame t covers samples
[t*hop, t*hop + n_fft) (n_fft == win_length == 400 by default, i.e. 25 ms every 10 ms), its
centre is t*hop + n_fft/2, and a wave of n samples has 1 + (n - n_fft) // hop frames (none if
n < n_fft). A frame's phone label is the phone under its centre (`label_frames`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from hwml.errors import HwmlError

SAMPLE_RATE = 16000
MAX_SECONDS = float(os.environ.get("HWML_MAX_AUDIO_SECONDS", 600))  # per file; None args read it at call time
LOG_FLOOR = 1e-6  # added before the log; the same offset torchaudio's MFCC(log_mels=True) uses
MIN_RATE, MAX_RATE = 4000, 384000
KINDS = ("mfcc39", "logmel40")
_HOW = " (set HWML_MAX_AUDIO_SECONDS to change it)"


@dataclass(frozen=True)
class FeatureParams:
    """Everything that decides the features; stored in every dataset and checkpoint.

    cmvn: per-utterance mean/variance normalisation of each dimension; None picks the kind's
    default (on for mfcc39 as in HW2, off for logmel40 as in the course's HW4 features).
    """

    kind: str = "mfcc39"
    sample_rate: int = SAMPLE_RATE
    win_length: int = 400
    hop_length: int = 160
    n_fft: int = 400
    n_mels: int = 40
    n_mfcc: int = 13
    delta_win: int = 5
    f_min: float = 0.0
    f_max: float | None = None
    cmvn: bool | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise HwmlError(f"feature params: unknown kind {self.kind!r} (expected one of {', '.join(KINDS)})")
        if self.sample_rate != SAMPLE_RATE:
            raise HwmlError(f"feature params: sample_rate must be {SAMPLE_RATE} (audio is resampled to it)")
        if self.cmvn is None:
            object.__setattr__(self, "cmvn", self.kind == "mfcc39")
        ints = ("sample_rate", "win_length", "hop_length", "n_fft", "n_mels", "n_mfcc", "delta_win")
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise HwmlError(f"feature params: {name} must be a positive integer, got {value!r}")
        if not (self.hop_length <= self.win_length <= self.n_fft):
            raise HwmlError("feature params: need hop_length <= win_length <= n_fft")
        if self.n_mfcc > self.n_mels or self.delta_win < 3:
            raise HwmlError("feature params: need n_mfcc <= n_mels and delta_win >= 3")
        if not isinstance(self.cmvn, bool):
            raise HwmlError(f"feature params: cmvn must be true or false, got {self.cmvn!r}")
        for name in ("f_min", "f_max"):
            value = getattr(self, name)
            if not (
                isinstance(value, (int, float)) and not isinstance(value, bool) or value is None and name == "f_max"
            ):
                raise HwmlError(f"feature params: {name} must be a number, got {value!r}")
        nyquist = self.sample_rate / 2
        f_max = nyquist if self.f_max is None else self.f_max
        if not (0 <= self.f_min < f_max <= nyquist):
            raise HwmlError(f"feature params: need 0 <= f_min < f_max <= {nyquist:g}")

    @property
    def dim(self) -> int:
        return 3 * self.n_mfcc if self.kind == "mfcc39" else self.n_mels

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureParams:
        if not isinstance(d, dict):
            raise HwmlError(f"feature params: expected an object, got {type(d).__name__}")
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise HwmlError(f"feature params: unknown keys {sorted(unknown)}")
        return cls(**d)


MFCC39 = FeatureParams(kind="mfcc39")
LOGMEL40 = FeatureParams(kind="logmel40")


# ---------------------------------------------------------------------------------------------
# decoding and resampling


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
def _resampler(orig: int, new: int) -> torchaudio.transforms.Resample:
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


# ---------------------------------------------------------------------------------------------
# features


@functools.lru_cache(maxsize=8)
def _mel(p: FeatureParams) -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=p.sample_rate,
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
def _mfcc(p: FeatureParams) -> torchaudio.transforms.MFCC:
    mel = dict(
        n_fft=p.n_fft,
        win_length=p.win_length,
        hop_length=p.hop_length,
        f_min=p.f_min,
        f_max=p.f_max,
        n_mels=p.n_mels,
        center=False,
        power=2.0,
    )
    return torchaudio.transforms.MFCC(sample_rate=p.sample_rate, n_mfcc=p.n_mfcc, log_mels=True, melkwargs=mel)


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


class _SingleThread:
    """Run torch on one intra-op thread inside `with single_thread():` (the old count restored after).

    Features are many small ops: on a busy 2-core machine two OpenMP threads made them 10-50x
    slower than one (each op waits for a second core), so batch featurisation (imports) runs in
    here. The thread count is process-wide: nested and concurrent users are counted, and the
    last one out restores it.
    """

    def __init__(self):
        self.lock, self.users, self.before = threading.Lock(), 0, 1

    @contextlib.contextmanager
    def __call__(self):
        with self.lock:
            if self.users == 0:
                self.before = torch.get_num_threads()
                torch.set_num_threads(1)
            self.users += 1
        try:
            yield
        finally:
            with self.lock:
                self.users -= 1
                if self.users == 0:
                    torch.set_num_threads(self.before)


single_thread = _SingleThread()


# ---------------------------------------------------------------------------------------------
# frames, labels and context


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
