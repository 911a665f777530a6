"""Phone and browser recordings (m4a/AAC, webm/Opus, 3gp, mp4, ogg) decode; long, many-channel,
high-rate files are refused by their header or decoded in blocks that equal a whole-file decode.

Every file here is encoded by the test itself with PyAV (whose wheels bundle FFmpeg's encoders).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from hwml.audio.blocks import BlockResampler, kernel_rate, resampler
from hwml.audio.decode import AUDIO_SUFFIXES, is_audio, load_audio, read_audio
from hwml.errors import HwmlError

ROOT = Path(__file__).resolve().parents[1]


def signal(sr: int, seconds: float, channels: int = 1) -> np.ndarray:
    """Two tones and a chirp (so a codec's delay has one best alignment), (samples, channels)."""
    t = np.arange(int(sr * seconds)) / sr
    x = 0.25 * np.sin(2 * np.pi * 440 * t) + 0.15 * np.sin(2 * np.pi * 1250 * t)
    x = x + 0.1 * np.sin(2 * np.pi * (200 + 900 * t / seconds) * t)
    return np.stack([x * (1 - 0.2 * c) for c in range(channels)], 1).astype(np.float32)


def encode(path: Path, x: np.ndarray, sr: int, codec: str, fmt: str | None = None) -> Path:
    """Write (samples, channels) float32 with PyAV: the codec in the container the suffix names."""
    layout = "mono" if x.shape[1] == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=sr, layout=layout)
        fmt_name = stream.codec_context.codec.audio_formats[0].name
        for i in range(0, len(x), 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[i : i + 1024].T), format="fltp", layout=layout)
            frame.sample_rate = sr
            for f in av.AudioResampler(format=fmt_name, layout=layout, rate=stream.rate).resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def aligned_error(got: np.ndarray, want: np.ndarray, max_lag: int = 2048) -> float:
    """RMS of (got - want) over RMS of want, at the codec delay that fits best (within max_lag)."""
    n = min(len(got), len(want)) - max_lag
    best = np.inf
    for lag in range(0, max_lag, 1):
        a = got[lag : lag + n]
        best = min(best, float(np.sqrt(np.mean((a - want[:n]) ** 2))))
        if best < 1e-9:
            break
    return best / float(np.sqrt(np.mean(want[:n] ** 2)))


RECORDINGS = [  # (suffix, codec, container format, sample rate, channels): what phones and browsers save
    (".m4a", "aac", "ipod", 44100, 2),  # iPhone / Android voice memo
    (".webm", "libopus", "webm", 48000, 1),  # browser MediaRecorder
    (".mp4", "aac", "mp4", 48000, 2),  # a phone video's audio
    (".3gp", "aac", "3gp", 16000, 1),  # older Android recorders
    (".3gp", "amr_nb", "3gp", 8000, 1),  # narrow-band phone call recorders
    (".ogg", "libopus", "ogg", 48000, 1),  # an Opus voice note
]


@pytest.mark.parametrize("suffix,codec,fmt,sr,channels", RECORDINGS)
def test_phone_and_browser_recordings_decode_like_their_source(tmp_path, suffix, codec, fmt, sr, channels):
    x = signal(sr, 2.0, channels)
    path = encode(tmp_path / f"rec{suffix}", x, sr, codec, fmt)
    assert is_audio(path) and suffix in AUDIO_SUFFIXES
    wave = load_audio(path)
    want = torchaudio.functional.resample(torch.from_numpy(x.mean(1)), sr, 16000).numpy()
    assert wave.dtype == torch.float32 and wave.ndim == 1
    assert abs(len(wave) - len(want)) <= 2048 + 16000 * 0.05  # codec priming and padding
    limit = 0.7 if codec == "amr_nb" else 0.25  # AMR: a speech codec at 12 kbit/s, tones come out rough
    assert aligned_error(wave.numpy(), want) < limit
    own, own_sr = read_audio(path)
    assert own_sr == sr and abs(len(own) - len(x)) <= 2048 + sr * 0.05


def test_renamed_recording_still_decodes(tmp_path):
    """An m4a saved as .wav (a browser download, a careless rename): libsndfile refuses, PyAV reads it."""
    x = signal(44100, 1.0, 1)
    path = encode(tmp_path / "memo.m4a", x, 44100, "aac", "ipod").rename(tmp_path / "memo.wav")
    want = torchaudio.functional.resample(torch.from_numpy(x[:, 0]), 44100, 16000).numpy()
    assert aligned_error(load_audio(path).numpy(), want) < 0.25


def test_broken_recordings_are_refused_in_one_line(tmp_path):
    path = encode(tmp_path / "rec.m4a", signal(44100, 2.0, 1), 44100, "aac", "ipod")
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    junk = tmp_path / "junk.webm"
    junk.write_bytes(b"not a recording at all\n" * 50)
    video = tmp_path / "silent.mp4"
    with av.open(str(video), "w") as out:  # a video without sound
        stream = out.add_stream("mpeg4", rate=5)
        stream.width = stream.height = 32
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 40, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    for bad, problem in [
        (cut, "not a readable audio file|truncated|no audio"),
        (junk, "not a readable"),
        (video, "no audio stream"),
    ]:
        with pytest.raises(HwmlError, match=problem) as err:
            load_audio(bad)
        assert str(err.value).startswith(str(bad)) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "suffix,codec,fmt", [(".flac", None, None), (".m4a", "aac", "ipod"), (".webm", "libopus", "webm")]
)
def test_too_long_is_refused_by_its_header(tmp_path, suffix, codec, fmt):
    """The header's duration is checked before decoding: the message gives the header's seconds."""
    x = signal(48000, 3.0, 2)
    path = tmp_path / f"long{suffix}"
    if codec is None:
        sf.write(path, x, 48000)
    else:
        encode(path, x, 48000, codec, fmt)
    with pytest.raises(HwmlError, match=r"3\.\d s is longer than the 2 s limit \(set HWML_MAX_AUDIO_SECONDS"):
        load_audio(path, max_seconds=2)
    assert len(load_audio(path, max_seconds=10)) > 40000


def test_header_refusal_reads_no_samples(tmp_path):
    """A FLAC whose header claims an hour but whose frames are garbage: refused for its length, so
    nothing was decoded (decoding would have failed on the garbage first)."""
    path = tmp_path / "hour.flac"
    sf.write(path, signal(16000, 1.0), 16000)
    data = bytearray(path.read_bytes())
    # STREAMINFO: 'fLaC', block header (4 B), then 10 B, then 36 bits of total samples
    total = 3600 * 16000
    i = 4 + 4 + 13
    data[i] = (data[i] & 0xF0) | (total >> 32)
    data[i + 1 : i + 5] = (total & 0xFFFFFFFF).to_bytes(4, "big")
    data[42:] = b"\x00" * (len(data) - 42)
    path.write_bytes(bytes(data))
    with pytest.raises(HwmlError, match=r"3600\.0 s is longer than the 600 s limit"):
        load_audio(path, max_seconds=600)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 44101, 48000, 384000])
def test_block_resampling_equals_one_whole_call(sr):
    rng = np.random.default_rng(sr)
    x = torch.from_numpy(rng.standard_normal(150_000).astype(np.float32))
    rate = kernel_rate(sr, 16000)
    whole = resampler(rate, 16000)(x)
    stream = BlockResampler(sr, 16000, block=4000)
    i = 0
    while i < len(x):
        n = int(rng.integers(1, 25_000))
        stream.feed(x[i : i + n])
        i += n
    out = stream.finish()
    assert out.shape == whole.shape and torch.allclose(out, whole, atol=2e-6, rtol=0)


def test_block_decode_equals_whole_decode(tmp_path):
    """A 384 kHz, 8-channel FLAC longer than a block: decoded, mixed and resampled in blocks, the
    same wave as reading it whole, mixing and resampling in one call."""
    sr, seconds = 384_000, 4.0
    x = signal(sr, seconds, 8)
    x[:, 5] = np.random.default_rng(0).uniform(-0.3, 0.3, len(x))
    path = tmp_path / "lab.flac"
    sf.write(path, x, sr, subtype="PCM_24")
    whole, _ = sf.read(path, dtype="float32", always_2d=True)
    want = torchaudio.functional.resample(torch.from_numpy(whole.mean(axis=1)), sr, 16000)
    got = load_audio(path)
    assert got.shape == want.shape == (int(16000 * seconds),)
    assert torch.allclose(got, want, atol=2e-6, rtol=0)
    mono, got_sr = read_audio(path)
    assert got_sr == sr and torch.equal(mono, torch.from_numpy(whole.mean(axis=1)))


def test_many_channel_high_rate_file_takes_memory_for_its_result_only(tmp_path):
    """20 s of 8-channel 384 kHz audio is 246 MB as float32 samples; decoded in blocks, the process
    grows by well under that (peak RSS measured in a fresh interpreter)."""
    path = tmp_path / "wide.flac"
    sr = 384_000
    block = signal(sr, 1.0, 8)
    with sf.SoundFile(path, "w", sr, 8, subtype="PCM_16") as f:
        for _ in range(20):
            f.write(block)
    code = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(ROOT)!r})
        from hwml.audio.decode import load_audio
        import torchaudio  # the resampler's import, before the baseline
        from hwml.audio.blocks import resampler
        resampler(384000, 16000)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        wave = load_audio({str(path)!r})
        assert len(wave) == 320000, len(wave)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    grown_mb = int(out.stdout.split()[-1])
    assert grown_mb < 100, f"decoding grew the process by {grown_mb} MB (whole-file decode: ~246 MB + copies)"
