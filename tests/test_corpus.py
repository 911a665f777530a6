"""The built-in corpus: eSpeak binding, phone mapping and timings, grammar, voices, the build
(coverage, determinism, caching) and the three course folders it writes."""

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hwml.corpus import SIZES, build, ensure_corpus, espeak, labels, sentences, voices
from hwml.corpus.build import CorpusSize, build_corpus
from hwml.data import load_dataset
from hwml.data.phones import PHONES_39
from hwml.errors import HwmlError
from hwml.machine import single_thread

TINY = CorpusSize(speakers=6, utterances=2, speaker_test=1, phone_test_every=6, timit_utterances=1)
ACCENTS = list(voices.ACCENT_SPEAKERS)


@pytest.fixture(autouse=True)
def one_torch_thread():
    with single_thread():
        yield


def _strip(token: str) -> str:
    return token.lstrip("',%=")


def _speak(text: str, voice: str) -> espeak.Synthesis:
    """A fresh private engine: the samples do not depend on what other tests synthesised."""
    with espeak.Engine(private=True) as engine:
        return engine.synthesize(text, voice)


# ----------------------------------------------------------------------------------- eSpeak


def test_synthesis_gives_audio_and_ordered_phone_events():
    syn = espeak.synthesize("The quick brown fox.", "en-us")
    assert syn.sample_rate == 22050 and syn.wave.dtype == np.float32
    assert 0.5 < len(syn.wave) / syn.sample_rate < 3 and 0.05 < np.abs(syn.wave).max() <= 1
    starts = [s for _, s in syn.phones]
    assert starts == sorted(starts) and 0 <= starts[0] and starts[-1] <= len(syn.wave)
    assert [p for p, _ in syn.phones][:2] == ["D", "@2"]


@pytest.mark.parametrize("accent", ["en-us", "en-gb-x-rp", "en-gb-scotland"])
def test_event_phones_match_espeaks_own_transcription(accent):
    text = "Joyce brought thirty wooden hooks to the village on Thursday."
    spoken = [p for p, _ in espeak.synthesize(text, accent).phones if not p.startswith("_")]
    written = [_strip(t) for t in espeak.text_to_phonemes(text, accent, "|").replace(" ", "|").split("|")]
    assert spoken == [t for t in written if t and not t.startswith("_")]


def _f0(syn) -> float:
    """Pitch (Hz) of the loudest 60 ms, from the autocorrelation peak between 2.5 and 20 ms."""
    n = int(0.06 * syn.sample_rate)
    power = np.convolve(syn.wave**2, np.ones(n), "valid")
    x = syn.wave[int(power.argmax()) :][:n].astype(np.float64)
    ac = np.correlate(x, x, "full")[n - 1 :]
    lo, hi = int(0.0025 * syn.sample_rate), int(0.02 * syn.sample_rate)
    return syn.sample_rate / (lo + int(ac[lo:hi].argmax()))


def test_settings_change_the_voice():
    base = espeak.synthesize("Hello there.", "en-us+m3")
    slow = espeak.synthesize("Hello there.", "en-us+m3", rate=100)
    assert len(slow.wave) > 1.3 * len(base.wave)
    high = espeak.synthesize("Hello there.", "en-us+m3", pitch=90)
    assert _f0(high) > 1.2 * _f0(base)
    with pytest.raises(HwmlError, match="no voice"):
        espeak.synthesize("Hello.", "xx-nonexistent")


def test_private_engine_is_reproducible_whatever_was_spoken_before():
    """eSpeak's state carries over between calls: a private copy of the library starts clean."""
    text = "Heather enjoyed the noisy oysters."
    espeak.synthesize("Something else first.", "en+f3")
    first = _speak(text, "en-us+f3")
    espeak.synthesize("And something more.", "en-us+f3")
    assert np.array_equal(first.wave, _speak(text, "en-us+f3").wave)


def test_every_speaker_voice_is_in_the_bundled_data():
    assert set(voices.VARIANTS) <= set(espeak.voice_variants())
    assert set(ACCENTS) <= set(espeak.english_languages())


# -------------------------------------------------------------------------------- mapping


def test_mapping_covers_every_phoneme_of_the_grammar_in_every_accent():
    words = " ".join(
        [
            *sentences.NAMES,
            *sentences.NOUNS,
            *sentences.PLURALS,
            *sentences.ADJECTIVES,
            *(w for pair in sentences.VERBS for w in pair),
            *sentences.PLACES,
            *sentences.TIMES,
            *sentences.ADVERBS,
            *sentences.LINKS,
            *sentences.REPORTS,
            *sentences.PRONOUNS,
            *sentences.MODALS,
            *sentences.COUNTS,
            *sentences.INTERJECTIONS,
            *sentences.WH,
            *sentences.DETERMINERS,
            *sentences.PREPOSITIONS,
            "did please were that is an",
        ]
    )
    for accent in ACCENTS:
        tokens = espeak.text_to_phonemes(words, accent, "|").replace(" ", "|").split("|")
        spoken = [p for s in sentences.sentences(12, accent) for p, _ in espeak.synthesize(s, accent).phones]
        for phone in {_strip(t) for t in tokens if t} | set(spoken):
            if phone != ";":
                assert set(labels.phone_classes(phone, accent)) <= set(PHONES_39), (accent, phone)


def test_mapping_follows_what_each_accent_says():
    assert labels.phone_classes("3", "en-us") == ("er",)  # butter: ɚ
    assert labels.phone_classes("3", "en-gb-x-rp") == ("ah",)  # ə
    assert labels.phone_classes("V", "en-gb-x-gbclan") == ("uh",)  # northern STRUT: ʊ
    assert labels.phone_classes("A@", "en-us") == ("aa", "r")
    assert labels.phone_classes("A@", "en") == ("aa",)
    assert labels.phone_classes("t#", "en-us") == ("dx",)
    assert labels.phone_classes("_:", "en") == ("sil",)
    with pytest.raises(KeyError):
        labels.phone_classes("QQ", "en-us")


@pytest.mark.parametrize("voice", ["en-us+m3", "en-us+klatt", "en-us+f2"])
def test_segments_cover_the_wave_and_end_in_silence(voice):
    """(eSpeak starts speaking at once; the corpus adds the leading silence, tested below.)"""
    syn = _speak("A big dog barked at the tiny cat.", voice)
    starts, ends, classes = labels.segments(syn, "en-us")
    assert starts[0] == 0 and ends[-1] == len(syn.wave) and np.array_equal(starts[1:], ends[:-1])
    assert (ends[1:] - starts[1:] >= round(labels.STEP_S * syn.sample_rate)).all()
    assert classes[-1] == labels.SIL
    assert (classes[1:] != classes[:-1]).all()
    names = [PHONES_39[c] for c in classes]
    assert [n for n in names if n != "sil"][:4] == ["ah", "b", "ih", "g"]
    # closures are silence, as TIMIT's bcl, tcl, kcl (folded to sil): the voice bar of b in
    # "big", the silent closures of t in "at" and "tiny" and of k in "cat"
    stops = [i for i, n in enumerate(names) if n in ("b", "t", "k")]
    assert [names[i] for i in stops][-5:] == ["t", "t", "t", "k", "t"]
    for i in (stops[0], *stops[-4:-1]):
        assert names[i - 1] == "sil", (names[i], names[i - 2 : i + 1])


def test_phone_timings_follow_the_audio():
    """A pause is silent and a vowel is loud: labels sit on the right samples."""
    syn = _speak("Oh, see.", "en-gb-x-rp")
    starts, ends, classes = labels.segments(syn, "en-gb-x-rp")
    level = lambda c: max(
        float(np.sqrt(np.mean(syn.wave[s:e] ** 2)))  # noqa: E731
        for s, e, k in zip(starts, ends, classes)
        if PHONES_39[k] == c
    )
    peak = float(np.abs(syn.wave).max())
    assert level("ow") > 0.05 * peak and level("iy") > 0.05 * peak
    silent = [
        float(np.abs(syn.wave[s:e]).max())
        for s, e, k in zip(starts, ends, classes)
        if k == labels.SIL and e - s > 0.05 * syn.sample_rate
    ]
    assert silent and max(silent) < 0.02 * peak


# ------------------------------------------------------------------------- grammar, voices


def test_sentences_are_varied_and_reproducible():
    a = sentences.sentences(300, 0)
    assert a == sentences.sentences(300, 0) and a != sentences.sentences(300, 1)
    assert len(set(a)) >= 295 and all(s[0].isupper() and s[-1] in ".?" for s in a)
    assert all(6 <= len(s.split()) <= 20 for s in a)


def test_speakers_are_many_distinct_voices():
    speakers = voices.speakers(72)
    assert len({s.name for s in speakers}) == 72 >= 60
    assert len({s.voice for s in speakers}) == 72
    assert {s.accent for s in voices.speakers(24)} == set(ACCENTS)  # small spreads over all
    style = voices.utterance_style(speakers[0], __import__("random").Random(0))
    assert abs(style.rate - speakers[0].rate) <= 0.12 * speakers[0].rate + 1


# ----------------------------------------------------------------------------- the build


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(tmp_path):
    build_corpus(tmp_path / "a", TINY, seed=3)
    build_corpus(tmp_path / "b", TINY, seed=3)
    build_corpus(tmp_path / "c", TINY, seed=4)
    a, b, c = (_digest(tmp_path / x) for x in "abc")
    assert a == b and len(a) > 10
    assert a["timit_11/train_11.npy"] != c["timit_11/train_11.npy"]


def test_small_corpus_covers_every_class(small_corpus):
    info = json.loads((small_corpus / "corpus.json").read_text())
    counts = info["phoneme_train_class_frames"]
    assert set(counts) == set(PHONES_39) and min(counts.values()) > 0
    # default has the same speakers' mix with 8x the training utterances: >= 200 per class with
    # a 2x margin (bench/bench_corpus.py measures the default itself)
    small, default = SIZES["small"], SIZES["default"]
    scale = (default.speakers * default.utterances) / (small.speakers * small.utterances)
    assert min(counts.values()) * scale >= 2 * 200
    timit = load_dataset(small_corpus / "timit_11")
    assert set(torch.unique(timit.train.labels).tolist()) == set(range(39))


def test_corpus_folders_load_as_course_data(small_corpus):
    size = SIZES["small"]
    timit = load_dataset(small_corpus / "timit_11")
    assert (timit.kind, timit.format, timit.train.dim, timit.test.dim) == ("phoneme", "timit_11", 429, 429)
    assert timit.train.class_names == list(PHONES_39) and timit.test.labels is not None

    libri = load_dataset(small_corpus / "libriphone")
    assert (libri.format, libri.train.dim, libri.train.class_names) == ("libriphone", 39, list(PHONES_39))
    speaker_of = lambda u: u.rsplit("-", 1)[0]  # noqa: E731
    train_speakers = {speaker_of(u) for u in libri.train.utt_ids}
    test_speakers = {speaker_of(u) for u in libri.test.utt_ids}
    assert not train_speakers & test_speakers and len(test_speakers) == size.speakers // size.phone_test_every
    for part in (libri.train, libri.test):  # silence before and after every utterance
        starts, last = part.offsets[:-1], part.offsets[1:] - 1
        sil = PHONES_39.index("sil")
        assert (part.labels[starts] == sil).all() and (part.labels[last] == sil).all()
    feats = libri.train.feats
    assert torch.isfinite(feats).all() and abs(float(feats.mean())) < 0.05  # per-utterance CMVN

    spk = load_dataset(small_corpus / "speaker")
    assert (spk.kind, spk.format, spk.train.feats.shape[1]) == ("speaker", "hw4", 40)
    assert len(spk.train.class_names) == size.speakers
    assert len(spk.train) == size.speakers * (size.utterances - size.speaker_test)
    assert len(spk.test) == size.speakers * size.speaker_test
    assert sorted(spk.test.labels.tolist()) == sorted(list(range(size.speakers)) * size.speaker_test)
    assert not set(spk.train.utt_ids) & set(spk.test.utt_ids)
    assert (spk.train.lengths > 150).all()


def test_cached_corpus_is_reused_not_rebuilt(small_corpus):
    marker = small_corpus / "corpus.json"
    before = marker.stat().st_mtime_ns
    t = time.perf_counter()
    assert ensure_corpus(root=small_corpus, size="small", seed=0) == small_corpus
    assert time.perf_counter() - t < 0.5 and marker.stat().st_mtime_ns == before


def test_default_root_and_rebuild_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("HWML_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(SIZES, "tiny", TINY)
    assert build.default_root("tiny", 5) == tmp_path / "cache" / "corpus" / f"tiny-5-v{build.VERSION}"

    calls = []

    def interrupted(out, size, seed, progress=None):
        calls.append(out)
        (out / "libriphone").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "build_corpus", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_corpus(size="tiny", seed=5)
    root = build.default_root("tiny", 5)
    assert not root.exists() and not calls[0].exists()  # nothing that looks finished is left
    monkeypatch.undo()

    monkeypatch.setenv("HWML_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(SIZES, "tiny", TINY)
    killed = root.parent / f".{root.name}.tmp-1-0badc0de"  # a build killed outright, long ago
    killed.mkdir()
    os.utime(killed, (time.time() - 7200, time.time() - 7200))
    seen = []
    assert ensure_corpus(size="tiny", seed=5, progress=lambda f, m: seen.append(f)) == root
    assert seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen) and not killed.exists()
    assert json.loads((root / "corpus.json").read_text())["seed"] == 5
    # an earlier corpus with other settings is replaced; a folder of someone else's is not
    ensure_corpus(root=root, size="tiny", seed=6)
    assert json.loads((root / "corpus.json").read_text())["seed"] == 6
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(HwmlError, match="holds no built-in corpus"):
        ensure_corpus(root=foreign, size="tiny")
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": "huge"}, "size must be one of"),
        ({"seed": -1}, "seed must be"),
        ({"seed": "3"}, "seed must be"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs, message):
    with pytest.raises(HwmlError, match=message):
        ensure_corpus(root=tmp_path / "x", **kwargs)
