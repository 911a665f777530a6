"""Audio from strangers, through `hwml.audio` and through `predict` on trained runs: every format
the SPEC names decodes to the same 16 kHz mono features, and every broken file is refused with a
one-line error naming it, after which the same process keeps predicting."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf
import torch
from robust_helpers import assert_error, assert_refused, cli, cli_proc

from hwml.audio import decode
from hwml.audio.decode import load_audio
from hwml.audio.features import featurize
from hwml.audio.frames import num_frames
from hwml.audio.params import LOGMEL40, MFCC39
from hwml.errors import HwmlError

SECONDS = 1.0


def tone(sr: int, seconds: float = SECONDS, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    rng = np.random.default_rng(sr)
    x = amp * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(len(t))
    x = x.astype(np.float32)
    return np.stack([x, 0.5 * x], axis=1) if channels == 2 else x


# name -> (samples, rate, soundfile keyword arguments)
VALID = {
    "8k.wav": (tone(8000), 8000, {}),
    "22k.wav": (tone(22050), 22050, {}),
    "44k.wav": (tone(44100), 44100, {}),
    "48k_stereo.wav": (tone(48000, channels=2), 48000, {}),
    "24bit.wav": (tone(16000), 16000, {"subtype": "PCM_24"}),
    "float.wav": (tone(16000), 16000, {"subtype": "FLOAT"}),
    "u8.wav": (tone(16000), 16000, {"subtype": "PCM_U8"}),
    "flac.flac": (tone(44100), 44100, {}),
    "vorbis.ogg": (tone(48000), 48000, {"format": "OGG", "subtype": "VORBIS"}),
    "mpeg.mp3": (tone(44100), 44100, {"format": "MP3"}),
    "sphere.sph": (tone(16000), 16000, {"format": "NIST", "subtype": "PCM_16"}),
    "silent.wav": (np.zeros(16000, np.float32), 16000, {}),
    "clipped.wav": (np.clip(tone(16000, amp=4.0), -1, 1), 16000, {}),
    "one_window.wav": (tone(16000, seconds=0.025), 16000, {}),  # exactly 400 samples: one frame
}


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio-ok")
    for name, (x, sr, kw) in VALID.items():
        sf.write(root / name, x, sr, **kw)
    return {name: root / name for name in VALID}


def broken_files(root, valid_files) -> dict[str, tuple]:
    """name -> (path, words of the refusal)."""
    wav = valid_files["22k.wav"].read_bytes()
    nan = tone(16000)
    nan[1000] = np.nan
    cases = {
        "empty.wav": (b"", "empty"),
        "not_audio.wav": (b"this is a text file, not audio\n" * 50, "not a readable audio file"),
        "png_named.flac": (b"\x89PNG\r\n\x1a\n" + bytes(300), "not a readable audio file"),
        "header_only.wav": (wav[:44], "truncated"),
        "truncated.wav": (wav[: len(wav) // 2], "truncated"),
        "truncated.mp3": (valid_files["mpeg.mp3"].read_bytes()[:600], "truncated"),
        "truncated.sph": (valid_files["sphere.sph"].read_bytes()[: 1024 + 3000], "truncated"),
    }
    out = {}
    for name, (data, words) in cases.items():
        (root / name).write_bytes(data)
        out[name] = (root / name, words)
    sf.write(root / "short.wav", tone(16000, seconds=0.02), 16000)
    out["short.wav"] = (root / "short.wav", "shorter than one 25 ms analysis window")
    sf.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    out["nan.wav"] = (root / "nan.wav", "NaN")
    sf.write(root / "2khz.wav", tone(2000), 2000)
    out["2khz.wav"] = (root / "2khz.wav", "sample rate 2000 Hz")
    sf.write(root / "long.flac", tone(16000, seconds=3.0), 16000)
    out["long.flac"] = (root / "long.flac", "longer than the 2 s limit")
    return out


def test_every_valid_format_gives_the_same_kind_of_features(valid_files):
    for name, path in valid_files.items():
        wave = load_audio(path)
        seconds = 0.025 if name == "one_window.wav" else SECONDS
        assert wave.ndim == 1 and wave.dtype == torch.float32, name
        assert abs(len(wave) - seconds * 16000) <= 0.02 * 16000 + 1200 * name.endswith(".mp3"), (name, len(wave))
        for params in (MFCC39, LOGMEL40):
            x = featurize(path, params)
            assert x.shape == (num_frames(len(wave), params), params.dim), name
            assert torch.isfinite(x).all(), name
    # the decoders agree: the 44.1 kHz WAV and FLAC of the same tone give nearly the same spectrum
    a = featurize(valid_files["44k.wav"], LOGMEL40)
    b = featurize(valid_files["flac.flac"], LOGMEL40)
    assert a.shape == b.shape and (a - b).abs().mean() < 1e-3


def test_broken_audio_is_refused_by_the_api(tmp_path, valid_files, monkeypatch):
    monkeypatch.setattr(decode, "MAX_SECONDS", 2.0)  # the configurable cap (HWML_MAX_AUDIO_SECONDS)
    for _name, (path, words) in broken_files(tmp_path, valid_files).items():
        for call in (load_audio, featurize):
            with pytest.raises(HwmlError) as e:
                call(path)
            assert_error(e, path, words)


def test_cli_predict_on_valid_audio(tmp_path, capsys, valid_files, phoneme_run, speaker_run):
    files = list(valid_files.values())
    code, _, err = cli(capsys, "predict", phoneme_run, *files, "--out", tmp_path / "phones.csv")
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "phones.csv")))
    per_file = {r["file"] for r in rows}
    assert per_file == set(valid_files) and all(0 <= float(r["prob"]) <= 1 for r in rows)
    code, _, err = cli(capsys, "predict", speaker_run, *files, "--out", tmp_path / "speakers.csv")
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "speakers.csv")))
    assert len(rows) == len(files) and {r["Category"] for r in rows} <= {"spkA", "spkB", "spkC"}
    assert all(abs(sum(float(r[f"p{k}"]) for k in (1, 2, 3)) - 1) < 1e-3 for r in rows)


def test_cli_predict_refuses_broken_audio_and_keeps_working(
    tmp_path, capsys, valid_files, phoneme_run, speaker_run, monkeypatch
):
    monkeypatch.setattr(decode, "MAX_SECONDS", 2.0)
    good = valid_files["48k_stereo.wav"]
    for _name, (path, words) in broken_files(tmp_path, valid_files).items():
        for run in (phoneme_run, speaker_run):
            code, _, err = cli(capsys, "predict", run, good, path, "--out", tmp_path / "p.csv")
            assert_refused(code, err, path, words)
            assert not (tmp_path / "p.csv").exists()  # no partial output either
    code, _, err = cli(capsys, "predict", speaker_run, good, "--out", tmp_path / "p.csv")
    assert code == 0, err


def test_duration_cap_is_set_by_environment_in_a_real_process(tmp_path, valid_files, phoneme_run):
    long = tmp_path / "long.flac"
    sf.write(long, tone(16000, seconds=3.0), 16000)
    proc = cli_proc("predict", phoneme_run, long, "--out", tmp_path / "p.csv", env={"HWML_MAX_AUDIO_SECONDS": "2"})
    assert_refused(proc.returncode, proc.stderr, long, "longer than the 2 s limit", "HWML_MAX_AUDIO_SECONDS")
