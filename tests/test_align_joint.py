"""The joint aligner's scoring rule, and PocketSphinx's own alignment (hwml.align.pocketsphinx).

Data: hand-made graphs and a few built-in corpus utterances written here (eSpeak); never ../shared."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwml.align import joint, pocketsphinx, viterbi
from hwml.align.aligners import check_aligner
from hwml.audio.decode import load_audio
from hwml.audio.frames import num_frames
from hwml.data.phones import PHONES_39
from hwml.errors import HwmlError

P = {p: i for i, p in enumerate(PHONES_39)}


def labels_of(*runs) -> np.ndarray:
    return np.array([P[p] for p, n in runs for _ in range(n)])


def test_agreement_bonus_is_zero_inside_and_minus_penalty_outside_pocketsphinx_segments():
    # "BAD": sil? (closure sil) b ae d sil?, with an optional closure before b and d
    graph = viterbi.build_graph([[(("b",), ("ae",), ("d",))]], PHONES_39, min_frames=2)
    ps = labels_of(("sil", 3), ("b", 3), ("ae", 4), ("d", 3), ("sil", 2))
    bonus = joint.agreement_bonus(graph, ps, penalty=4.0)
    assert bonus.shape == (len(ps), graph.n_states)
    for s in range(graph.n_states):
        unit = graph.units[graph.unit[s]]
        allowed = {P[unit.phone]} | ({P[unit.closure]} if unit.closure else set())
        expected = np.where(np.isin(ps, list(allowed)), 0.0, -4.0)
        assert np.array_equal(bonus[:, s], expected), unit
    closures = [u for u in graph.units if u.closure]
    assert {u.closure for u in closures} == {"b", "d"}  # a closure agrees with PocketSphinx's stop too
    # schwa: PocketSphinx spells every reduced vowel AH, so ih agrees with it
    g2 = viterbi.build_graph([[(("ih",),)]], PHONES_39, min_frames=1, optional_sil=False)
    assert joint.agreement_bonus(g2, labels_of(("ah", 2), ("s", 1)), penalty=3.0)[:, 0].tolist() == [0, 0, -3]


def test_silence_cost_is_paid_once_on_entering_a_word_gap():
    graph = viterbi.build_graph([[(("m",),)], [(("aa",),)]], PHONES_39, min_frames=2)
    ps = labels_of(("sil", 4), ("m", 4), ("aa", 4))
    bonus = joint.agreement_bonus(graph, ps, penalty=0.0, sil_cost=2.5)
    first = np.r_[True, np.diff(graph.unit) != 0]
    gap = np.array([graph.units[u].phone == "sil" and graph.units[u].word < 0 for u in graph.unit])
    assert np.all(bonus[:, first & gap] == -2.5) and np.all(bonus[:, ~(first & gap)] == 0)


def test_joint_follows_pocketsphinx_where_the_model_cannot_tell_and_the_model_where_it_can():
    graph = viterbi.build_graph([[(("m",), ("aa",))], [(("n",),)]], PHONES_39, min_frames=2)
    ps = labels_of(("sil", 5), ("m", 4), ("aa", 6), ("n", 5), ("sil", 3))
    flat = np.full((len(ps), len(PHONES_39)), np.log(1 / len(PHONES_39)))
    result = joint.align(flat, graph, ps)
    assert result.labels.tolist() == ps.tolist()
    # a confident model moves the m/aa boundary 2 frames later against the agreement term
    sharp = flat.copy()
    sharp[9:11, P["m"]] = 0.0
    sharp[9:11, P["aa"]] = -20.0
    moved = joint.align(sharp, graph, ps, penalty=4.0)
    assert moved.labels[9:11].tolist() == [P["m"], P["m"]] and moved.labels[11] == P["aa"]
    # and a large penalty keeps PocketSphinx's boundary
    kept = joint.align(sharp, graph, ps, penalty=30.0)
    assert kept.labels.tolist() == ps.tolist()


def test_scaled_divides_by_the_corpus_prior():
    logps = [np.log(np.array([[0.9, 0.1], [0.5, 0.5]])), np.log(np.array([[0.7, 0.3]]))]
    prior = np.array([0.9 + 0.5 + 0.7, 0.1 + 0.5 + 0.3]) / 3
    out = joint.scaled(logps, 0.5)
    assert np.allclose(out[1], logps[1] - 0.5 * np.log(prior), atol=1e-6)
    assert joint.scaled(logps, 0.0) is logps


def test_aligner_names_are_checked():
    assert check_aligner(None) == "joint" and check_aligner("hwml") == "hwml"
    with pytest.raises(HwmlError, match="--aligner must be one of"):
        check_aligner("mfa")


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    from hwml.corpus.transcribed import write_transcribed

    root = tmp_path_factory.mktemp("spoken")
    return root, write_transcribed(root, "small", seed=2, per_speaker=1, n_speakers=3)


def test_pocketsphinx_alignment_is_monotone_covers_the_clip_with_the_dictionarys_phones(spoken):
    from hwml.align.lexicon import words as normalise

    decoder = pocketsphinx.thread_decoder()
    for item in spoken[1]:
        wave = load_audio(item["wav"]).numpy()
        words = normalise(item["text"], "t")
        phones, spans = pocketsphinx.segments(wave, words)
        starts = [a for a, _, _ in phones]
        assert starts[0] == 0 and all(b > a for a, b, _ in phones)
        assert all(phones[k][1] == phones[k + 1][0] for k in range(len(phones) - 1))  # no gap, no overlap
        assert abs(phones[-1][1] - num_frames(len(wave))) <= 3  # PocketSphinx's frame count: within 3
        assert len(spans) == len(words) and all(s[1] <= t[0] for s, t in zip(spans, spans[1:]))
        for (a, b, _), word in zip(spans, words):  # each word's phones: one of its dictionary spellings
            inside = [PHONES_39[p] for x, y, p in phones if a <= x and y <= b]
            spellings = [decoder.lookup_word(word.lower())] + [
                decoder.lookup_word(f"{word.lower()}({k})") for k in range(2, 6)
            ]
            options = [[PHONES_39[pocketsphinx.phone_39(p)] for p in s.split()] for s in spellings if s]
            assert inside in options, (word, inside, options)
        labels = pocketsphinx.frame_labels(phones, num_frames(len(wave)))
        assert len(labels) == num_frames(len(wave)) and labels.min() >= 0


@pytest.mark.parametrize("aligner", ["pocketsphinx", "joint"])
def test_import_with_each_aligner_labels_every_frame(spoken, tmp_path, aligner):
    from hwml.data import load_dataset
    from hwml.importers import import_phoneme

    root, items = spoken
    summary = import_phoneme(
        root / "audio", tmp_path / "out", aligner=aligner, lexicon_file=root / "lexicon.txt", progress=False
    )
    assert summary["alignment"]["aligner"] == aligner and summary["train_utterances"] == len(items)
    data = load_dataset(tmp_path / "out")
    assert len(data.train) == sum(num_frames(len(load_audio(i["wav"]))) for i in items)
    info = json.loads((tmp_path / "out" / "alignment.json").read_text())
    assert info["aligner"] == aligner
    if aligner == "pocketsphinx":
        with pytest.raises(HwmlError, match="--rounds and --align-model do not apply"):
            import_phoneme(root / "audio", tmp_path / "o2", aligner=aligner, rounds=1, progress=False)
