"""Forced alignment of one clip and its typed transcript: the app's Predict and the Learn tab.

`align_audio` featurises the clip as the phoneme run was trained (its config's features),
scores every frame with the run's model once, and returns both readings of those scores: the
free frame-by-frame prediction (each frame's most likely phone: what Predict shows without a
transcript, identical to `hwml.phoneme.predict.predict_files`) and the forced alignment (Viterbi
through the transcript's phones, `hwml.align`: words -> cmudict -> 39 classes, optional
silences, minimum phone duration). It also keeps what the Viterbi picture needs: each graph
unit's log-posterior over time and the unit the best path is in at every frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwml.errors import HwmlError

MAX_CELLS = 200_000_000  # frames x graph states one Viterbi may take (its back-pointers: one byte each)
FRAME_COLUMNS = ["file", "frame", "time", "phone", "prob", "aligned", "word"]
SEGMENT_COLUMNS = ["start", "end", "phone", "word", "free", "agree"]


@dataclass
class ViterbiPicture:
    """The best path through the alignment graph, unit by unit (a unit: one phone of the graph,
    `min_frames` states long). Rows are the graph's units in order: optional silences,
    pronunciation variants and closures included, so the path visibly skips some rows."""

    phones: list[str]  # (U,) each unit's phone
    words: list[int]  # (U,) index into the transcript's words; -1: a silence between words
    logp: np.ndarray  # (U, T) float32 log-posterior of each unit's phone at each frame
    path: np.ndarray  # (T,) the unit the best path is in at each frame (never decreases)
    min_frames: int  # frames each unit lasts at least


@dataclass
class ClipAlignment:
    """A clip aligned to its transcript, beside the free prediction from the same frame scores.

    Segments are (start s, end s, label); their bounds lie half a hop either side of the frame
    centres (the first starts at 0), as `hwml.audio.frames.label_segments`."""

    file: str
    transcript: str
    words: list[str]  # the transcript's dictionary words (upper case)
    prons: list  # each word's pronunciations (hwml.align.lexicon slots)
    seconds: float
    times: np.ndarray  # (T,) frame centres, s
    aligned: list[str]  # (T,) forced-alignment frame labels
    word_of_frame: list[str]  # (T,) the word each frame belongs to ("" in silence)
    phones: list[tuple[float, float, str]]  # forced-alignment phone segments
    phone_frames: list[tuple[int, int, str]]  # the same as frame ranges [first, end)
    word_segments: list[tuple[float, float, str]]
    free: list[str]  # (T,) free prediction: each frame's most likely phone
    free_prob: np.ndarray  # (T,) its probability
    free_segments: list[tuple[float, float, str]]
    viterbi: ViterbiPicture
    logmel: np.ndarray  # (T', 40) log-mel spectrogram, for pictures
    logmel_times: np.ndarray  # (T',) its frame centres, s

    @property
    def agreement(self) -> float:
        """Share of frames where the free prediction equals the forced alignment."""
        return float(np.mean(np.array(self.free) == np.array(self.aligned))) if self.aligned else 0.0

    def segment_rows(self) -> list[dict]:
        """One row per aligned phone (SEGMENT_COLUMNS): `free` is the phone the free prediction
        gives most often over its frames, `agree` the share of its frames where that equals it."""
        free = np.array(self.free)
        rows = []
        for (start, end, phone), (a, b, _) in zip(self.phones, self.phone_frames):
            names, counts = np.unique(free[a:b], return_counts=True)
            rows.append(
                {
                    "start": start,
                    "end": end,
                    "phone": phone,
                    "word": self.word_of_frame[a],
                    "free": str(names[counts.argmax()]),
                    "agree": round(float(np.mean(free[a:b] == phone)), 3),
                }
            )
        return rows


def _open(run_or_model):
    """(model, config) of a phoneme run folder, or a (model, config) pair as given."""
    if isinstance(run_or_model, (tuple, list)):
        model, config = run_or_model
    else:
        from hwml.runs.checkpoint import load_run

        model, config = load_run(run_or_model)
    if config.get("task", "phoneme") != "phoneme":
        raise HwmlError(f"{run_or_model}: a {config.get('task')} run; forced alignment needs a phoneme run")
    return model, config


def _lexicon(lexicon):
    from hwml.align.lexicon import Lexicon

    return lexicon if isinstance(lexicon, Lexicon) else Lexicon(lexicon)


def pronunciations(transcript: str, lexicon=None, source="transcript") -> tuple[list[str], list]:
    """(words, their pronunciations) of a typed transcript; one HwmlError names every word the
    dictionary lacks (a typed sentence is fixed in one go)."""
    from hwml.align.lexicon import words as normalise

    words = normalise(transcript or "", source)
    if not words:
        raise HwmlError(f"{source}: the transcript is empty: type the words that are spoken")
    lex = _lexicon(lexicon)
    unknown = list(dict.fromkeys(w for w in words if w not in lex))
    if unknown:
        names = ", ".join(repr(w) for w in unknown)
        one = len(unknown) == 1
        raise HwmlError(
            f"{source}: {'the word ' + names + ' is' if one else 'the words ' + names + ' are'} not in "
            f"the CMU Pronouncing Dictionary; spell {'it' if one else 'them'} with words it knows, the "
            "way they sound" + (", or add them to the lexicon file" if lex.extra_file else "")
        )
    return words, [lex.pronounce(w, source) for w in words]


def align_audio(
    run_or_model, audio_path, transcript: str, lexicon=None, *, min_frames: int | None = None, optional_sil: bool = True
) -> ClipAlignment:
    """Force-align `audio_path` to `transcript` with a phoneme run (a run folder or (model,
    config)); the free prediction comes from the same frame scores. `lexicon`: None (cmudict),
    a lexicon file (`WORD PH1 PH2 ...` lines) or a `hwml.align.lexicon.Lexicon`.

    HwmlError: an empty transcript, a word the dictionary lacks (named), a clip shorter than
    the transcript's phones need at `min_frames` frames each (default `hwml.align.viterbi.MIN_FRAMES`).
    """
    import torch

    from hwml.align import viterbi
    from hwml.audio.decode import load_audio
    from hwml.audio.features import featurize, logmel40
    from hwml.audio.frames import frame_times, label_segments
    from hwml.audio.params import LOGMEL40, SAMPLE_RATE, FeatureParams
    from hwml.data.types import FrameSet
    from hwml.phoneme.predict import predict_logits

    audio_path = Path(audio_path)
    words, prons = pronunciations(transcript, lexicon)
    model, config = _open(run_or_model)
    names = list(config["class_names"])
    params = FeatureParams.from_dict(config["features"])
    wave = load_audio(audio_path)
    feats = featurize(wave, params)
    graph = viterbi.build_graph(
        prons, names, min_frames=viterbi.MIN_FRAMES if min_frames is None else min_frames, optional_sil=optional_sil
    )
    T = len(feats)
    if T * graph.n_states > MAX_CELLS:
        raise HwmlError(
            f"{audio_path.name}: {T / 100:.0f} s with {len(words)} words is too long to align at once; "
            "cut it into sentences"
        )
    frames = FrameSet(feats, None, torch.tensor([0, T]), [audio_path.stem], names, 1)
    logits = predict_logits(model, config, frames)
    logp = viterbi.log_scores(logits)
    path = viterbi.viterbi(logp, graph, source=audio_path.name)
    result = viterbi.align(logp, graph, path=path)

    times = frame_times(T, params).numpy()
    half = params.hop_length / params.sample_rate / 2

    def span(a: int, b: int) -> tuple[float, float]:
        return round(0.0 if a == 0 else float(times[a]) - half, 4), round(float(times[b - 1]) + half, 4)

    aligned = [names[i] for i in result.labels.tolist()]
    word_of_frame = [""] * T
    for a, b, w in result.words:
        word_of_frame[a:b] = [words[w]] * (b - a)
    probs = torch.softmax(logits, dim=1)
    p, idx = probs.max(1)
    free = [names[i] for i in idx.tolist()]
    units = graph.unit[path]
    n = graph.n_states // max(1, len(graph.units))
    picture = ViterbiPicture(
        [u.phone for u in graph.units],
        [u.word for u in graph.units],
        np.ascontiguousarray(logp[:, graph.phone[::n]].T),
        units,
        n,
    )
    logmel = logmel40(wave, LOGMEL40)
    return ClipAlignment(
        file=audio_path.name,
        transcript=transcript,
        words=words,
        prons=prons,
        seconds=len(wave) / SAMPLE_RATE,
        times=times,
        aligned=aligned,
        word_of_frame=word_of_frame,
        phones=[(*span(a, b), ph) for a, b, ph in result.phones],
        phone_frames=list(result.phones),
        word_segments=[(*span(a, b), words[w]) for a, b, w in result.words],
        free=free,
        free_prob=p.numpy(),
        free_segments=label_segments(free, params),
        viterbi=picture,
        logmel=logmel.numpy(),
        logmel_times=frame_times(len(logmel), LOGMEL40).numpy(),
    )


def pron_text(prons) -> str:
    """A word's pronunciations as text: slots by spaces, alternatives by '/', a slot that may be
    left out in brackets, variants by ' | ' (WATER: "w aa t/dx er/ah")."""

    def slot(alts):
        text = "/".join(a for a in alts if a)
        return f"({text})" if "" in alts else text

    return " | ".join(" ".join(slot(s) for s in pron) for pron in prons)


def write_frames_csv(result: ClipAlignment, out_csv) -> Path:
    """One row per frame, FRAME_COLUMNS: the free prediction's `file,frame,time,phone,prob` (as
    `predict` writes them) then the forced alignment's frame label and word: the frame labels a
    transcript gives, ready to train on."""
    from hwml.safeio import write_csv_atomic

    rows = (
        (
            result.file,
            t,
            f"{result.times[t]:.3f}",
            result.free[t],
            f"{result.free_prob[t]:.4f}",
            result.aligned[t],
            result.word_of_frame[t],
        )
        for t in range(len(result.aligned))
    )
    write_csv_atomic(Path(out_csv), FRAME_COLUMNS, rows)
    return Path(out_csv)
