"""Audio files and recordings -> a mono float32 wave at 16 kHz, with every broken input refused.

Any format libsndfile reads: WAV (8/16/24/32-bit, float), NIST SPHERE, FLAC, OGG, MP3, AIFF, AU; and
recordings from phones and browsers (m4a/AAC, webm/Opus, 3gp, mp4) through PyAV. Files are checked by
their header (rate, duration against HWML_MAX_AUDIO_SECONDS) before any sample is decoded, and decoded,
mixed down and resampled in blocks, so a long many-channel file costs memory for its 16 kHz result only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from hwml import settings
from hwml.audio.blocks import BlockResampler, av_blocks, open_av, soundfile_blocks
from hwml.audio.params import MFCC39, SAMPLE_RATE
from hwml.errors import HwmlError

# the audio files hwml reads (import, predict, enrol), by suffix, in the order messages list them
# phone and browser recordings that libsndfile cannot read: decoded by PyAV (its wheels bundle FFmpeg)
COMPRESSED_SUFFIXES = (".m4a", ".mp4", ".aac", ".3gp", ".webm", ".opus")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".sph", ".nist", ".aiff", ".aif", ".au", *COMPRESSED_SUFFIXES)
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


def _decode(path, max_seconds: float | None) -> tuple[int, Iterator[np.ndarray]]:
    """Check a file by its header, then (sample rate, mono float32 blocks); the blocks raise at the end
    when the file was longer than its limit or decoded short of its header."""
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
    if path.suffix.lower() in COMPRESSED_SUFFIXES:
        return _decode_av(path, max_seconds)
    try:
        f = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as e:
        reason = getattr(e, "error_string", None) or str(e)
        if "format not recognised" in reason.lower() or "unknown format" in reason.lower():
            return _decode_av(path, max_seconds, reason)  # e.g. an .ogg holding AAC, or a renamed .m4a
        raise HwmlError(f"{path}: not a readable audio file ({' '.join(reason.split())})") from None
    if f.subtype == "OPUS":  # libsndfile 1.2 misreads some Ogg Opus files when read in blocks
        f.close()
        return _decode_av(path, max_seconds)
    try:
        sr, declared = f.samplerate, f.frames
        _check_rate(sr, path)
        if declared / sr > max_seconds:
            raise HwmlError(f"{path}: {declared / sr:.1f} s is longer than the {max_seconds:g} s limit{_HOW}")
        problem = _wav_truncated(f.extra_info)
        if problem:
            raise HwmlError(f"{path}: {problem}")
    except BaseException:
        f.close()
        raise
    return sr, _soundfile_stream(path, f, sr, declared, max_seconds)


def _soundfile_stream(path, f, sr, declared, max_seconds) -> Iterator[np.ndarray]:
    total = 0
    try:
        with f:
            for block in soundfile_blocks(f, int(max_seconds * sr)):
                total += len(block)
                yield block
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as e:
        reason = getattr(e, "error_string", None) or str(e)
        raise HwmlError(f"{path}: not a readable audio file ({' '.join(reason.split())})") from None
    if total > max_seconds * sr:
        raise HwmlError(f"{path}: longer than the {max_seconds:g} s limit{_HOW}")
    if 0 < total < 0.95 * declared < 2**62:  # MP3: decoder stopped short of the header's length
        raise HwmlError(f"{path}: truncated: decoded {total} of {declared} samples")


def _decode_av(path, max_seconds, why: str = "") -> tuple[int, Iterator[np.ndarray]]:
    """Phone and browser recordings (m4a/AAC, webm/Opus, 3gp, mp4) through PyAV's bundled FFmpeg."""
    try:
        container, stream, sr, seconds = open_av(path)
    except HwmlError:
        if why:  # neither libsndfile nor FFmpeg knows it: libsndfile's reason is the familiar one
            raise HwmlError(f"{path}: not a readable audio file ({' '.join(why.split())})") from None
        raise
    try:
        _check_rate(sr, path)
        if seconds is not None and seconds > max_seconds:
            raise HwmlError(f"{path}: {seconds:.1f} s is longer than the {max_seconds:g} s limit{_HOW}")
    except BaseException:
        container.close()
        raise

    def stream_blocks():
        total = 0
        for block in av_blocks(path, container, stream, int(max_seconds * sr)):
            total += len(block)
            yield block
        if total > max_seconds * sr:  # a header without a duration (browser webm): counted while decoding
            raise HwmlError(f"{path}: longer than the {max_seconds:g} s limit{_HOW}")

    return sr, stream_blocks()


def read_audio(path, *, max_seconds: float | None = None) -> tuple[torch.Tensor, int]:
    """Decode an audio file to a mono float32 wave at its own sample rate.

    Any format libsndfile reads (WAV 8/16/24/32-bit and float, NIST SPHERE, FLAC, OGG, MP3) and,
    through PyAV, phone and browser recordings (m4a/AAC, webm/Opus, 3gp, mp4). Channels are mixed
    down a block at a time. Refuses (HwmlError) unreadable, truncated, empty, non-finite, too-long
    (by the header, before decoding, where it tells) and too-short input.
    """
    sr, blocks = _decode(path, max_seconds)
    parts = list(blocks)
    data = np.concatenate(parts) if len(parts) > 1 else (parts[0] if parts else np.zeros(0, np.float32))
    return _mono(data, path), sr


def load_audio(path, *, max_seconds: float | None = None) -> torch.Tensor:
    """Decode, mix to mono and resample a file: a 1-D float32 wave at 16 kHz.

    Decoded, mixed down and resampled a block at a time (hwml.audio.blocks): memory follows the
    16 kHz result, not the file's rate and channel count.
    """
    sr, blocks = _decode(path, max_seconds)
    stream = BlockResampler(sr, SAMPLE_RATE)
    for block in blocks:
        stream.feed(_mono(block, path) if len(block) else torch.zeros(0))
    if stream.seen == 0:
        raise HwmlError(f"{path}: no audio samples")
    _check_length(stream.seen, sr, path)
    return stream.finish()


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
    x = pcm_to_float(x)
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32 becomes inf: _mono says so
        wave = _mono(x.astype(np.float32, copy=False), name)
    return _resample(wave, sr, SAMPLE_RATE, name)


def pcm_to_float(x: np.ndarray) -> np.ndarray:
    """Integer PCM (signed or unsigned, any width) to floats in [-1, 1); float input unchanged."""
    if x.dtype.kind not in "iu":
        return x
    bits = 8 * x.dtype.itemsize
    offset = 2 ** (bits - 1) if x.dtype.kind == "u" else 0
    return (x.astype(np.float64) - offset) / 2 ** (bits - 1)


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


def _check_length(n: int, sr: int, name) -> None:
    if n * SAMPLE_RATE < MFCC39.n_fft * sr:
        raise HwmlError(f"{name}: {n / sr * 1000:.1f} ms is shorter than one 25 ms analysis window")


def _resample(wave: torch.Tensor, sr: int, target: int, name) -> torch.Tensor:
    _check_length(wave.numel(), sr, name)
    stream = BlockResampler(sr, target)
    stream.feed(wave)
    return stream.finish()
