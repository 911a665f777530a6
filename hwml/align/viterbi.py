"""Viterbi forced alignment: which frames belong to which phone of a known transcript.

An utterance's words (each a list of pronunciations from `hwml.align.lexicon`) become a left-to-right
graph of phone units: an optional `sil` before, between and after the words; the pronunciation
variants of a word and the alternatives of a slot (flap, schwa) side by side; and an optional
`sil` before each stop and affricate, because TIMIT's 39 classes label a stop's closure as
silence (pcl, tcl, ... fold to sil) and models trained on them hear it so. A unit lasts at
least `min_frames` frames: it is a chain of that many states, the last one looping.

`viterbi` finds the best path through the graph over a (T, C) matrix of frame log-posteriors
(optionally divided by class priors, the hybrid-HMM scaled likelihood), in log space, one numpy
step per frame over all states at once. Its result gives frame labels (the libriphone training
targets), phone segments and word segments (`textgrid_text` writes them for Praat).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwml.align.lexicon import Pron
from hwml.errors import HwmlError

STOPS = frozenset({"p", "t", "k", "b", "d", "g", "ch", "jh"})
MIN_FRAMES = 3  # 30 ms at the 10 ms hop
START = -1


@dataclass
class Unit:
    phone: str
    word: int  # index into the utterance's words, -1 for silence between them
    preds: tuple[int, ...]  # units that may come just before (START: the utterance's first frame)
    closure: str = ""  # a `sil` unit before a stop: that stop (its closure)


@dataclass
class Graph:
    """States of an utterance's alignment graph (`build_graph`)."""

    units: list[Unit]
    phone: np.ndarray  # (S,) class index of each state
    unit: np.ndarray  # (S,) unit of each state
    preds: np.ndarray  # (S, K) states that may precede each state (S = none)
    start: np.ndarray  # (S,) bool: may be the first frame's state
    end: np.ndarray  # (S,) bool: may be the last frame's state
    min_frames: int  # the fewest frames any path through the graph needs

    @property
    def n_states(self) -> int:
        return len(self.phone)


class _Builder:
    def __init__(self):
        self.units: list[Unit] = []
        self.frontier: set[int] = {START}  # units the next unit may follow

    def add(self, phone: str, word: int, preds: set[int], closure: str = "") -> int:
        self.units.append(Unit(phone, word, tuple(sorted(preds)), closure))
        return len(self.units) - 1

    def optional_sil(self) -> None:
        self.frontier = self.frontier | {self.add("sil", -1, self.frontier)}

    def word(self, prons: list[Pron], word: int, closures: bool) -> None:
        before, after = self.frontier, set()
        for pron in prons:
            frontier = before
            for slot in pron:
                nxt = set()
                for phone in slot:
                    if not phone:  # the slot may be left out
                        nxt |= frontier
                        continue
                    preds = set(frontier)
                    if closures and phone in STOPS:
                        # a closure may follow anything but a silence (that silence is the closure)
                        plain = {u for u in frontier if u == START or self.units[u].phone != "sil"}
                        if plain:
                            preds.add(self.add("sil", word, plain, phone))
                    nxt.add(self.add(phone, word, preds))
                frontier = nxt
            after |= frontier
        self.frontier = after


def build_graph(
    words: list[list[Pron]],
    class_names,
    *,
    min_frames: int = MIN_FRAMES,
    optional_sil: bool = True,
    closures: bool = True,
) -> Graph:
    """The alignment graph of an utterance: `words[i]` lists word i's pronunciations."""
    if min_frames < 1:
        raise HwmlError(f"minimum phone duration must be at least 1 frame, got {min_frames}")
    index = {name: i for i, name in enumerate(class_names)}
    b = _Builder()
    if optional_sil:
        b.optional_sil()
    for w, prons in enumerate(words):
        b.word(prons, w, closures)
        if optional_sil:
            b.optional_sil()
    missing = sorted({u.phone for u in b.units} - set(index))
    if missing:
        raise HwmlError(f"the alignment model has no class for phone(s) {', '.join(missing)}")
    n = min_frames
    first = np.arange(len(b.units)) * n  # each unit is n consecutive states
    last = first + n - 1
    S = len(b.units) * n
    K = max([len(u.preds) + (n == 1) for u in b.units] + [2])
    preds = np.full((S, K), S, np.int64)
    start = np.zeros(S, bool)
    shortest = np.zeros(len(b.units), np.int64)
    for u, unit in enumerate(b.units):
        entry = [last[p] for p in unit.preds if p != START]
        start[first[u]] = START in unit.preds
        preds[first[u], : len(entry)] = entry
        if n == 1:
            preds[first[u], len(entry)] = first[u]
        else:
            preds[first[u] + 1 : last[u] + 1, 0] = np.arange(first[u], last[u])
            preds[last[u], 1] = last[u]
        shortest[u] = n + min(0 if p == START else shortest[p] for p in unit.preds)
    end = np.zeros(S, bool)
    end[last[sorted(b.frontier - {START})]] = True
    finals = [shortest[u] for u in b.frontier if u != START]
    return Graph(
        b.units,
        np.repeat([index[u.phone] for u in b.units], n),
        np.repeat(np.arange(len(b.units)), n),
        preds,
        start,
        end,
        int(min(finals)) if finals else 0,
    )


def viterbi(logp: np.ndarray, graph: Graph, source="utterance", bonus: np.ndarray | None = None) -> np.ndarray:
    """(T,) best state path through `graph` for (T, C) frame log-scores, plus `bonus` (T, S) per
    frame and state where given (`hwml.align.joint`); HwmlError naming `source` when the
    utterance is shorter than the shortest path."""
    T = len(logp)
    if graph.n_states == 0:
        raise HwmlError(f"{source}: the transcript has no words")
    if T < graph.min_frames:
        raise HwmlError(
            f"{source}: {T} frames ({T / 100:.2f} s) is too short for its transcript, which needs "
            f"at least {graph.min_frames} ({graph.n_states // len(graph.units)} frames a phone)"
        )
    S = graph.n_states
    emit = np.asarray(logp, np.float64)[:, graph.phone]  # (T, S)
    if bonus is not None:
        emit = emit + bonus
    back = np.empty((T, S), np.int8)
    scores = np.full(S + 1, -np.inf)  # slot S: "no predecessor"
    scores[:S] = np.where(graph.start, emit[0], -np.inf)
    rows = np.arange(S)
    preds = graph.preds
    for t in range(1, T):
        cand = scores[preds]
        k = cand.argmax(1)
        back[t] = k
        scores[:S] = cand[rows, k] + emit[t]
    final = np.where(graph.end, scores[:S], -np.inf)
    s = int(final.argmax())
    if not np.isfinite(final[s]):
        raise HwmlError(f"{source}: no alignment fits the audio (scores are not finite)")
    path = np.empty(T, np.int64)
    path[-1] = s
    for t in range(T - 1, 0, -1):
        s = path[t - 1] = preds[s, back[t, s]]
    return path


def log_scores(logits, prior_scale: float = 0.0, log_prior=None) -> np.ndarray:
    """Frame log-posteriors from logits, minus `prior_scale` x log prior (scaled likelihoods).

    The importer uses plain posteriors: dividing by priors (the mean posterior) lowered frame
    agreement on the built-in corpus (0.909 -> 0.901 at scale 1)."""
    import torch

    logp = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1).numpy()
    if prior_scale and log_prior is not None:
        logp = logp - prior_scale * np.asarray(log_prior, np.float32)
    return logp


@dataclass
class Alignment:
    labels: np.ndarray  # (T,) class index per frame
    phones: list[tuple[int, int, str]]  # (first frame, end frame, phone) runs of units
    words: list[tuple[int, int, int]]  # (first frame, end frame, word index)


def align(logp: np.ndarray, graph: Graph, source="utterance", path: np.ndarray | None = None) -> Alignment:
    """Viterbi (unless its state `path` is given), then the path as frame labels, phone segments
    and word segments."""
    path = viterbi(logp, graph, source) if path is None else path
    units = graph.unit[path]
    labels = graph.phone[path]
    cuts = np.flatnonzero(np.diff(units)) + 1
    bounds = np.concatenate([[0], cuts, [len(path)]]).tolist()
    phones, words = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        unit = graph.units[units[a]]
        if phones and phones[-1][2] == unit.phone == "sil":
            phones[-1] = (phones[-1][0], b, "sil")  # a word gap and a closure: one silence
        else:
            phones.append((a, b, unit.phone))
        if unit.phone != "sil" or unit.word >= 0:
            if words and words[-1][2] == unit.word:
                words[-1] = (words[-1][0], b, unit.word)
            else:
                words.append((a, b, unit.word))
    return Alignment(labels, phones, words)


def write_textgrid(
    path,
    alignment: Alignment,
    word_names: list[str],
    duration: float,
    hop_s: float = 0.01,
    first_centre_s: float = 0.0125,
) -> None:
    """A Praat TextGrid (long text format) with `words` and `phones` tiers, written atomically.

    Boundaries lie halfway between frame centres; the first interval starts at 0 and the last
    ends at the audio's end, so the tiers cover the whole file.
    """
    from praatio import textgrid

    from hwml.safeio import atomic_path

    n, end = len(alignment.labels), round(duration, 6)

    def seconds(frame: int) -> float:
        if frame <= 0 or frame >= n:
            return 0.0 if frame <= 0 else end
        return round(min(first_centre_s + (frame - 0.5) * hop_s, end), 6)

    tg = textgrid.Textgrid(0.0, end)
    for name, entries in (
        ("words", [(seconds(a), seconds(b), word_names[w]) for a, b, w in alignment.words]),
        ("phones", [(seconds(a), seconds(b), p) for a, b, p in alignment.phones]),
    ):
        tg.addTier(textgrid.IntervalTier(name, [e for e in entries if e[1] > e[0]], 0.0, end))
    with atomic_path(path, fsync=False) as tmp:
        tg.save(str(tmp), format="long_textgrid", includeBlankSpaces=True, reportingMode="silence")
