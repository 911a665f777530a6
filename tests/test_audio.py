"""hwml.audio: decoding every supported format, refusing bad audio, features, framing, context."""

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwml.audio.decode import load_audio, wave_to_16k
from hwml.audio.features import featurize, logmel40, mfcc39
from hwml.audio.frames import context_indices, frame_times, label_frames, num_frames, stack_context
from hwml.audio.params import LOGMEL40, MFCC39, FeatureParams
from hwml.errors import HwmlError
from hwml.machine import single_thread

CAN_MP3 = "MP3" in sf.available_formats()


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Many small feature ops: one thread is far faster on a shared 2-core box (audio.single_thread)."""
    with single_thread():
        yield


def sine(freq=440.0, sr=16000, seconds=1.0, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(wave, sr=16000):
    spec = np.abs(np.fft.rfft(np.asarray(wave, dtype=np.float64)))
    return np.argmax(spec) * sr / len(wave)


# --- parameters -------------------------------------------------------------------------------


def test_params_defaults_and_round_trip():
    assert (MFCC39.dim, LOGMEL40.dim) == (39, 40)
    assert MFCC39.cmvn is True and LOGMEL40.cmvn is False
    assert (MFCC39.win_length, MFCC39.hop_length, MFCC39.sample_rate) == (400, 160, 16000)
    for p in (MFCC39, LOGMEL40, FeatureParams(kind="logmel40", cmvn=True, n_mels=64)):
        assert FeatureParams.from_dict(p.to_dict()) == p
        assert hash(FeatureParams.from_dict(p.to_dict())) == hash(p)


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "mfcc13"},
        {"hop_length": 0},
        {"win_length": 512, "n_fft": 400},
        {"n_mfcc": 50},
        {"f_max": 9000.0},
        {"f_min": "0"},
        {"cmvn": "yes"},
        {"sample_rate": "16000"},
        {"sample_rate": 8000},
        {"nonsense": 1},
    ],
)
def test_params_refuse_bad_values(bad):
    with pytest.raises(HwmlError, match="feature params"):
        FeatureParams.from_dict({"kind": "mfcc39", **bad})


# --- features ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [400, 401, 559, 560, 16000, 16123])
def test_frame_count_convention(n):
    wave = torch.randn(n, generator=torch.Generator().manual_seed(0)) * 0.1
    expected = 1 + (n - 400) // 160
    assert num_frames(n) == expected
    assert mfcc39(wave).shape == (expected, 39)
    assert logmel40(wave).shape == (expected, 40)
    assert featurize(wave, LOGMEL40).dtype == torch.float32
    times = frame_times(expected)
    assert torch.allclose(times, 0.0125 + 0.01 * torch.arange(expected, dtype=torch.float64))


def test_mfcc39_is_normalised_and_deterministic():
    wave = torch.randn(32000, generator=torch.Generator().manual_seed(1)) * 0.1
    x = mfcc39(wave)
    assert torch.allclose(x.mean(0), torch.zeros(39), atol=1e-4)
    assert torch.allclose(x.std(0, correction=0), torch.ones(39), atol=1e-3)
    assert torch.equal(x, mfcc39(wave.clone()))
    raw = mfcc39(wave, FeatureParams(kind="mfcc39", cmvn=False))
    direct = torchaudio.transforms.MFCC(
        16000, 13, log_mels=True, melkwargs=dict(n_fft=400, hop_length=160, n_mels=40, center=False)
    )(wave)
    assert torch.allclose(raw[:, :13], direct.T, atol=1e-4)
    assert torch.allclose(raw[:, 13:26], torchaudio.functional.compute_deltas(direct).T, atol=1e-4)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0, 6000.0])
def test_sine_energy_lands_in_its_mel_band(freq):
    fb = torchaudio.functional.melscale_fbanks(201, 0.0, 8000.0, 40, 16000)  # (freqs, mels)
    expected = int(fb[round(freq / 40)].argmax())
    x = logmel40(torch.from_numpy(sine(freq)))
    assert int(x.mean(0).argmax()) == expected


def test_silence_and_clipping_give_finite_features():
    for wave in (torch.zeros(8000), torch.from_numpy(np.clip(sine(amp=5.0), -1, 1))):
        assert torch.isfinite(mfcc39(wave)).all() and torch.isfinite(logmel40(wave)).all()
    assert mfcc39(torch.zeros(8000)).abs().max() < 1e-6


@pytest.mark.parametrize(
    "wave",
    [
        torch.zeros(399),
        torch.zeros(2, 800),
        torch.tensor([0.0] * 500 + [float("nan")]),
        np.array(["a"] * 500),
        [[0.0], [0.0, 1.0]],
    ],
)
def test_features_refuse_bad_waves(wave):
    with pytest.raises(HwmlError):
        featurize(wave, MFCC39)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float32, st.integers(0, 1200), elements=st.floats(-2, 2, width=32)), st.sampled_from([MFCC39, LOGMEL40])
)
def test_featurize_only_raises_hwml_errors(wave, params):
    try:
        x = featurize(wave, params)
    except HwmlError:
        return
    assert x.shape == (num_frames(len(wave)), params.dim) and torch.isfinite(x).all()


# --- decoding ---------------------------------------------------------------------------------

FORMATS = [
    ("WAV", "PCM_16", "wav", 1e-4),
    ("WAV", "PCM_24", "wav", 1e-6),
    ("WAV", "PCM_U8", "wav", 1e-2),
    ("WAV", "FLOAT", "wav", 0.0),
    ("NIST", "PCM_16", "WAV", 1e-4),
    ("FLAC", "PCM_16", "flac", 1e-4),
    ("OGG", "VORBIS", "ogg", None),
    pytest.param("MP3", "MPEG_LAYER_III", "mp3", None, marks=pytest.mark.skipif(not CAN_MP3, reason="no MP3")),
]


@pytest.mark.parametrize("fmt,subtype,ext,tol", FORMATS)
def test_every_format_decodes(tmp_path, fmt, subtype, ext, tol):
    x = sine()
    path = tmp_path / f"a.{ext}"
    sf.write(path, x, 16000, format=fmt, subtype=subtype)
    wave = load_audio(path)
    assert wave.dtype == torch.float32 and wave.ndim == 1
    if tol is not None:  # lossless: the samples themselves
        assert len(wave) == len(x) and np.abs(wave.numpy() - x).max() <= tol
    else:  # lossy: same tone, same length within a frame of codec delay
        assert abs(len(wave) - len(x)) <= 2048 and abs(dominant_hz(wave) - 440) < 3
    assert featurize(path, MFCC39).shape[1] == 39


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000, 11025, 44101])
def test_resampling_to_16k(tmp_path, sr):
    path = tmp_path / "a.wav"
    sf.write(path, sine(440.0, sr, 2.0), sr, subtype="FLOAT")
    wave = load_audio(path)
    assert abs(len(wave) - 32000) <= 1 + 32000 * 0.003
    assert abs(dominant_hz(wave) - 440) < 2
    assert 0.3 < wave[1000:-1000].abs().max() < 0.55


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from([np.int16, np.uint8, np.int32, np.float32, np.float64]),
    st.lists(st.integers(0, 1500), min_size=1, max_size=2),
    st.sampled_from([3000, 8000, 16000, 44100, 48000]),
)
def test_wave_to_16k_only_raises_hwml_errors(dtype, shape, sr):
    x = np.random.default_rng(len(shape)).uniform(-1, 1, size=shape) * (100 if np.dtype(dtype).kind in "iu" else 1)
    try:
        wave = wave_to_16k(x.astype(dtype), sr)
    except HwmlError:
        return
    assert wave.ndim == 1 and wave.dtype == torch.float32 and len(wave) >= 400 and torch.isfinite(wave).all()


def test_single_thread_nests_and_restores():
    before = torch.get_num_threads()
    with single_thread():
        with single_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_stereo_is_mixed_to_mono(tmp_path):
    left = sine(440.0, 48000)
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, np.zeros_like(left)], 1), 48000, subtype="PCM_16")
    wave = load_audio(path)
    assert len(wave) == 16000 and 0.22 < wave[1000:-1000].abs().max() < 0.27


def test_wave_to_16k_takes_microphone_arrays():
    mic = (sine(440.0, 48000) * 32767).astype(np.int16)
    stereo = np.stack([mic, mic], 1)  # Gradio: (samples, channels)
    a = wave_to_16k(stereo, 48000)
    b = wave_to_16k(stereo.T.astype(np.float32) / 32768, 48000)  # channels first, float
    c = wave_to_16k(((mic.astype(np.int32) + 32768) >> 8).astype(np.uint8), 48000)
    assert len(a) == len(b) == len(c) == 16000
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(a, c, atol=0.02)
    assert featurize(stereo, MFCC39, sample_rate=48000).shape == (98, 39)
    assert torch.equal(
        featurize(stereo[::3], LOGMEL40, sample_rate=16000),
        logmel40(torch.from_numpy(stereo[::3, 0] / 32768).float()),
    )


def test_featurize_path_equals_wave(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, sine(700.0, 8000), 8000, subtype="FLOAT")
    wave = load_audio(path)
    assert torch.equal(featurize(path, LOGMEL40), logmel40(wave))
    assert torch.allclose(featurize(sine(700.0, 8000), LOGMEL40, sample_rate=8000), logmel40(wave))


# --- bad audio --------------------------------------------------------------------------------


def _wav_bytes(tmp_path, **kw):
    p = tmp_path / "full.wav"
    sf.write(p, sine(), 16000, **kw)
    return p.read_bytes()


def _cases(tmp_path):
    good_wav = _wav_bytes(tmp_path, subtype="PCM_16")
    sph = tmp_path / "full.sph"
    sf.write(sph, sine(), 16000, format="NIST", subtype="PCM_16")
    flac = tmp_path / "full.flac"
    sf.write(flac, sine(), 16000)
    head = sph.read_bytes()[:1024].rstrip(b"\0 ").replace(b"-s3 pcm", b"-s26 pcm,embedded-shorten-v2.00")
    shorten = head.ljust(1024, b" ") + b"\x01\x02" * 4000  # as LDC ships many SPHERE corpora
    cases = {
        "empty.wav": (b"", "empty file"),
        "text.wav": (b"hello, this is not audio at all\n" * 20, "not a readable audio file"),
        "header_only.wav": (good_wav[:20], "not a readable audio file"),
        "cut.wav": (good_wav[: len(good_wav) // 2], "truncated"),
        "cut.sph": (sph.read_bytes()[: 1024 + 5000], "truncated"),
        "cut.flac": (flac.read_bytes()[: flac.stat().st_size // 2], "not a readable audio file"),
        "short.sph": (shorten, "shorten"),
    }
    if CAN_MP3:
        mp3 = tmp_path / "full.mp3"
        sf.write(mp3, sine(seconds=3.0), 16000, format="MP3")
        cases["cut.mp3"] = (mp3.read_bytes()[: mp3.stat().st_size // 3], "truncated")
    return cases


def test_bad_audio_is_refused_with_its_name(tmp_path):
    for name, (data, problem) in _cases(tmp_path).items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(HwmlError, match=problem) as err:
            load_audio(path)
        msg = str(err.value)
        assert msg.startswith(str(path)) and "\n" not in msg, name


def test_missing_long_short_nan_and_odd_rates(tmp_path):
    with pytest.raises(HwmlError, match="no such file"):
        load_audio(tmp_path / "nope.wav")
    long = tmp_path / "long.flac"
    sf.write(long, sine(seconds=3.0), 16000)
    with pytest.raises(HwmlError, match="longer than the 2 s limit"):
        load_audio(long, max_seconds=2)
    assert len(load_audio(long, max_seconds=3.5)) == 48000
    short = tmp_path / "short.wav"
    sf.write(short, sine(seconds=0.02), 16000)
    with pytest.raises(HwmlError, match="shorter than one 25 ms analysis window"):
        load_audio(short)
    nan = tmp_path / "nan.wav"
    x = sine()
    x[100] = np.nan
    sf.write(nan, x, 16000, subtype="FLOAT")
    with pytest.raises(HwmlError, match="NaN"):
        load_audio(nan)
    slow = tmp_path / "slow.wav"
    sf.write(slow, sine(sr=2000), 2000)
    with pytest.raises(HwmlError, match="sample rate 2000 Hz"):
        load_audio(slow)
    with pytest.raises(HwmlError, match="longer than the 1 s limit"):
        wave_to_16k(np.zeros(96001, np.int16), 48000, max_seconds=1)
    with pytest.raises(HwmlError, match="expected a 1-D or 2-D numeric"):
        wave_to_16k(np.array(["a", "b"]), 16000)


# --- labels and context -----------------------------------------------------------------------


def test_label_frames_uses_frame_centres_exactly():
    # frame centres at 16 kHz: 200, 360, 520, 680, ... ; at an 8 kHz source: 100, 180, 260, 340
    labels = label_frames(5, starts=[0, 180, 300], ends=[180, 300, 330], labels=[3, 7, -1], sample_rate=8000)
    assert labels.tolist() == [3, 7, 7, -1, -1]  # 340 is past every segment; 260 is in [180, 300)
    assert label_frames(3, [200], [360], [5], 16000).tolist() == [5, -1, -1]  # start inclusive, end exclusive
    assert label_frames(2, [], [], [], 16000).tolist() == [-1, -1]
    unsorted = label_frames(5, [180, 0], [300, 180], [7, 3], 8000)
    assert unsorted.tolist() == [3, 7, 7, -1, -1]


def naive_stack(x, n):
    T, h = len(x), n // 2
    return torch.stack([torch.cat([x[min(max(t + k, 0), T - 1)] for k in range(-h, h + 1)]) for t in range(T)])


@pytest.mark.parametrize("T,n", [(1, 1), (1, 11), (3, 11), (20, 5), (57, 11), (8, 21)])
def test_stack_context_matches_a_naive_loop(T, n):
    x = torch.randn(T, 39, generator=torch.Generator().manual_seed(T * n))
    got = stack_context(x, n)
    assert got.shape == (T, n * 39)
    assert torch.equal(got, naive_stack(x, n))
    assert torch.equal(got[0, : 39 * (n // 2)], x[0].repeat(n // 2))  # left edge repeats frame 0
    assert torch.equal(stack_context(x.numpy(), n), got)


def test_stack_context_edges_and_errors():
    assert stack_context(torch.zeros(0, 39), 11).shape == (0, 429)
    for n in (0, 4, -3, 2.0):
        with pytest.raises(HwmlError, match="odd"):
            stack_context(torch.zeros(5, 39), n)
    with pytest.raises(HwmlError):
        stack_context(torch.zeros(39), 3)


def test_context_indices_stay_inside_each_utterance():
    gen = torch.Generator().manual_seed(0)
    lengths = [7, 1, 12, 4]
    feats = torch.randn(sum(lengths), 39, generator=gen)
    offsets = torch.tensor([0] + lengths).cumsum(0)
    utt = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    idx = torch.randperm(len(feats), generator=gen)
    got = feats[context_indices(idx, offsets[utt[idx]], offsets[utt[idx] + 1], 5)].reshape(len(idx), -1)
    expected = torch.cat([stack_context(feats[a:b], 5) for a, b in zip(offsets[:-1], offsets[1:])])
    assert torch.equal(got, expected[idx])
