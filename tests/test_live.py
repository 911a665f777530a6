"""The Live view's streaming core: chunks in, the offline path's features and labels out, garbage
dropped, state bounded (hwml.audio.stream, hwml.phoneme.stream, hwml.speaker.stream, hwml.serve.live).

Speech comes from eSpeak NG (the built-in corpus's engine), the models from checkpoints/ or
built here; nothing is read from outside the repository.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hwml.audio.decode import wave_to_16k
from hwml.audio.features import featurize, log_mel_frames, mfcc39
from hwml.audio.params import LOGMEL40, FeatureParams
from hwml.audio.stream import FeatureStream, StreamResampler, chunk_wave
from hwml.errors import HwmlError
from hwml.phoneme.stream import CMVN_FRAMES

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parent.parent
SHIPPED_PHONEME = REPO / "checkpoints" / "phoneme"
SHIPPED_SPEAKER = REPO / "checkpoints" / "speaker"


def speech(text: str, voice: str = "en-us") -> tuple[int, np.ndarray]:
    from hwml.corpus.espeak import synthesize

    syn = synthesize(text, voice)
    return syn.sample_rate, syn.wave.astype(np.float32)


def chunks(x, seed: int, low: int, high: int):
    rng = np.random.default_rng(seed)
    i = 0
    while i < len(x):
        n = int(rng.integers(low, high))
        yield x[i : i + n]
        i += n


@pytest.mark.parametrize("rate", [48000, 44100, 22050, 16000, 8000])
def test_streamed_resampling_equals_resampling_the_whole_recording(rate):
    x = (np.random.default_rng(rate).standard_normal(rate * 2) * 0.1).astype(np.float32)
    whole = wave_to_16k(x, rate)
    r = StreamResampler(rate)
    streamed = torch.cat([r.push(c) for c in chunks(x, 1, 1, rate // 3)] + [r.finish()])
    assert streamed.shape == whole.shape
    assert torch.allclose(streamed, whole, atol=1e-6)


@pytest.mark.parametrize("params", [FeatureParams(kind="mfcc39", cmvn=False), LOGMEL40])
def test_streamed_feature_rows_equal_the_offline_rows(params):
    rate, x = speech("The weather is cold and windy today.")
    wave = wave_to_16k(x, rate)
    fs = FeatureStream(params)
    parts = [fs.push(c) for c in chunks(wave, 2, 40, 6000)] + [fs.finish()]
    assert [p.start for p in parts] == list(np.cumsum([0] + [len(p.feats) for p in parts[:-1]]))
    streamed = torch.cat([p.feats for p in parts])
    offline = featurize(wave, params)
    assert streamed.shape == offline.shape
    assert torch.allclose(streamed, offline, atol=1e-4)
    assert len(fs.raw) <= 2 * fs.half  # only the deltas' context is kept


def test_online_cmvn_normalises_by_the_frames_so_far():
    rate, x = speech("Seven lamps glow in the hall.")
    wave = wave_to_16k(x, rate)
    fs = FeatureStream(FeatureParams(kind="mfcc39"))
    streamed = torch.cat([fs.push(c).feats for c in chunks(wave, 3, 100, 4000)] + [fs.finish().feats])
    raw = mfcc39(wave, FeatureParams(kind="mfcc39", cmvn=False)).double()
    n = torch.arange(1, len(raw) + 1, dtype=torch.float64)[:, None]
    mean = raw.cumsum(0) / n
    std = (raw.pow(2).cumsum(0) / n - mean**2).clamp_min(0).sqrt().clamp_min(1e-5)
    assert torch.allclose(streamed.double(), (raw - mean) / std, atol=1e-3)


def test_garbage_chunks_get_a_clear_error():
    for bad, words in [
        ((16000, np.array([np.nan, 0.0] * 300, np.float32)), "NaN"),
        ((16000, np.zeros((3, 3, 3))), "1-D or 2-D"),
        ("noise", "expected (sample rate, samples)"),
        ((16000, np.array(["a", "b"])), "numeric"),
        ((16000, np.zeros(16000 * 11, np.float32)), "more than"),
        ((3, np.zeros(100, np.float32)), "sample rate"),
        ((16000.5, np.zeros(100, np.float32)), "integer"),
        ((16000, np.full(100, 1e6, np.float32)), "far outside"),
    ]:
        with pytest.raises(HwmlError, match=words.replace("(", r"\(").replace(")", r"\)")):
            chunk_wave(bad)
    rate, stereo = chunk_wave((44100, np.full((100, 2), [16384, -16384], np.int16)))
    assert rate == 44100 and stereo.shape == (100,) and np.allclose(stereo, 0.0)


def phone_stream(model, config, wave, lookahead=30, seed=4):
    from hwml.phoneme.stream import PhoneStream

    ps = PhoneStream(model, config, lookahead=lookahead)
    parts = [ps.push(c) for c in chunks(wave, seed, 500, 6000)] + [ps.finish()]
    return torch.cat([p.ids for p in parts]), ps


def offline_ids(model, config, wave):
    from hwml.phoneme.predict import one_utterance, predict_logits

    feats = featurize(wave, FeatureParams.from_dict(config["features"]))
    return predict_logits(model, config, one_utterance(feats, "clip", config["class_names"])).argmax(1)


def test_a_context_mlp_streams_exactly_the_offline_labels():
    from hwml.models import build_model
    from hwml.runs.folder import read_config

    config = copy.deepcopy(read_config(SHIPPED_PHONEME))
    config["features"]["cmvn"] = False  # per-utterance CMVN cannot stream (hwml.audio.stream)
    config["concat_nframes"] = 11
    config["model"] = {"name": "mlp", "kwargs": {"in_dim": 39 * 11, "n_classes": 39, "hidden": [64, 64]}}
    torch.manual_seed(0)
    model = build_model(config["model"]).eval()
    rate, x = speech("A bright yellow kite flew over the river bank.")
    wave = wave_to_16k(x, rate)
    streamed, ps = phone_stream(model, config, wave)
    offline = offline_ids(model, config, wave)
    assert len(set(offline.tolist())) > 3  # a labelling that can disagree
    assert torch.equal(streamed, offline)
    assert len(ps.rows) <= 2 * 5  # the context window, nothing more


@pytest.mark.skipif(not (SHIPPED_PHONEME / "model.safetensors").is_file(), reason="no shipped phoneme model")
def test_the_bilstm_streams_within_the_measured_gap():
    from hwml.runs.cache import loaded_run

    model, config = loaded_run(SHIPPED_PHONEME)
    rate, x = speech("Please bring the green basket to the kitchen before dinner.")
    wave = wave_to_16k(x, rate)
    offline = offline_ids(model, config, wave)
    streamed, ps = phone_stream(model, config, wave, lookahead=30)
    agree = float((streamed == offline).float().mean())
    assert len(streamed) == len(offline) and agree >= 0.85, agree  # README: Live
    assert len(ps.rows) <= CMVN_FRAMES + 600  # normalisation window + the largest chunk's frames
    # without normalisation and with the whole clip as look-ahead, streaming is whole-utterance output
    plain = copy.deepcopy(config)
    plain["features"]["cmvn"] = False
    streamed, _ = phone_stream(model, plain, wave, lookahead=10_000)
    assert torch.equal(streamed, offline_ids(model, plain, wave))


@pytest.mark.skipif(not (SHIPPED_PHONEME / "model.safetensors").is_file(), reason="no shipped phoneme model")
def test_garbage_is_dropped_and_the_stream_goes_on_then_closes():
    from hwml.serve.live import open_live

    rate, x = speech("Nine small boats sail home.")
    pcm = (x * 32767).astype(np.int16)

    def labels(with_garbage: bool):
        live = open_live(SHIPPED_PHONEME, None)
        for i, c in enumerate(chunks(pcm, 5, 2000, 6000)):
            if with_garbage and i % 2 == 1:  # (a first chunk at another rate would set the rate)
                for bad in [(rate, np.full(64, np.nan, np.float32)), (rate, "x"), None, (rate + 1, c)]:
                    assert live.feed(bad).dropped
            assert live.feed((rate, c)).dropped == ""
        final = live.close()
        with pytest.raises(HwmlError, match="ended"):
            live.feed((rate, pcm[:1000]))
        return final.segments

    clean = labels(False)
    assert clean and labels(True) == clean


@pytest.mark.skipif(not (SHIPPED_SPEAKER / "model.safetensors").is_file(), reason="no shipped speaker model")
def test_who_is_speaking_changes_with_the_voice_and_says_silence(tmp_path):
    from hwml.serve.live import open_live
    from hwml.serve.who_is_speaking import Roster
    from hwml.speaker.identify import open_model

    sm = open_model(SHIPPED_SPEAKER)
    voices = {"Ann": "en-us+f3", "Bob": "en-gb-x-rp+m3"}
    roster = Roster()
    for name, voice in voices.items():
        for k, text in enumerate(["The garden is full of roses in June.", "We walked along the quiet beach."]):
            rate, x = speech(text, voice)
            path = tmp_path / f"{name}{k}.wav"
            sf.write(path, x, rate)
            roster = roster.add(sm, name, [str(path)])
    rate_a, a = speech("My brother plays the violin every evening.", voices["Ann"])
    rate_b, b = speech("A cold wind blew across the open field.", voices["Bob"])
    assert rate_a == rate_b
    stream = np.concatenate([a, np.zeros(rate_a, np.float32), b])
    live = open_live(None, SHIPPED_SPEAKER, roster)
    seen = []
    for c in chunks(stream, 6, rate_a // 4, rate_a // 4 + 1):
        who = live.feed((rate_a, c)).who
        seen.append(who.name if who.state == "speaking" else who.state)
    compact = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
    assert "Ann" in compact and "silence" in compact and "Bob" in compact, compact
    assert compact.index("Ann") < compact.index("silence") < len(compact) - 1 - compact[::-1].index("Bob")
    assert seen[-1] == "Bob"
    assert len(live.speaker.rows) <= live.speaker.window and len(live.logmel) <= live.view


def test_a_long_stream_keeps_bounded_state():
    from hwml.models import build_model
    from hwml.runs.folder import read_config
    from hwml.serve.live import LiveSession

    config = copy.deepcopy(read_config(SHIPPED_PHONEME))
    config["concat_nframes"] = 5
    config["model"] = {"name": "mlp", "kwargs": {"in_dim": 39 * 5, "n_classes": 39, "hidden": [32]}}
    torch.manual_seed(0)
    live = LiveSession((build_model(config["model"]).eval(), config))
    noise = (np.random.default_rng(7).standard_normal(48000 * 40) * 3000).astype(np.int16)  # 40 s at 48 kHz
    for c in chunks(noise, 8, 12000, 12001):
        update = live.feed((48000, c))
    assert update.seconds == pytest.approx(40, abs=0.01)
    assert len(live.logmel) == live.view and len(live.labels) <= live.view
    assert len(live.phones.rows) <= CMVN_FRAMES + 2 + 30 and len(live.resampler.pending) < 48000
    assert len(update.times) == live.view and update.segments[0][0] >= float(update.times[0]) - 0.01
    assert log_mel_frames(torch.zeros(400), LOGMEL40).shape == (1, 40)


@pytest.mark.skipif(not (SHIPPED_PHONEME / "model.safetensors").is_file(), reason="no shipped phoneme model")
def test_the_learn_lesson_streams_a_clip_at_several_lookaheads():
    from hwml.lessons.lookahead import LOOKAHEADS, lookahead_table

    rows = lookahead_table(SHIPPED_PHONEME)
    assert [r["look-ahead"] for r in rows] == [f"{n * 10} ms" for n in LOOKAHEADS]
    shares = [float(r["agree"].rstrip("%")) for r in rows]
    assert all(50 < s <= 100 for s in shares) and shares[-1] >= shares[0]
