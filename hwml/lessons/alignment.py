"""From transcripts to frame labels: a built-in sentence force-aligned and scored against the exact
phone times eSpeak used to make it."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hwml.errors import HwmlError

if TYPE_CHECKING:
    pass


ALIGN_SEED = 1  # built-in sentences of seed 1: ones the shipped model (trained on seed 0) never heard


ALIGN_EXAMPLES = 8  # built-in sentences to pick from (the first utterance of each of the first voices)


BOUNDARY_TOLERANCE_S = 0.020


@dataclass
class AlignmentLesson:
    """A built-in corpus sentence force-aligned by a phoneme run, next to eSpeak's exact phones."""

    text: str
    voice: str
    result: object  # hwml.align.clip.ClipAlignment
    truth: list[str]  # (T,) eSpeak's phone under each frame centre
    truth_segments: list[tuple[float, float, str]]
    rows: list[dict]  # one per aligned phone: start, end, word, aligned, eSpeak, agree
    aligned_vs_truth: float  # share of frames whose aligned phone is eSpeak's
    free_vs_truth: float  # the same for the free frame-by-frame prediction
    boundaries_within_20ms: float  # share of eSpeak's phone boundaries with an aligned one within 20 ms
    wave: np.ndarray  # the utterance (float32) at sample_rate, to listen to
    sample_rate: int


def alignment_example(source, example: int = 1, seed: int = ALIGN_SEED) -> AlignmentLesson:
    """Speak built-in sentence `example` (1..ALIGN_EXAMPLES: the first utterance of that voice),
    force-align it to its text with `source` (a phoneme run folder or (model, config)) and
    compare with the phone times eSpeak used to make it."""
    import soundfile as sf

    from hwml.align.clip import align_audio
    from hwml.audio.frames import label_frames, label_segments
    from hwml.audio.params import FeatureParams
    from hwml.corpus.transcribed import write_transcribed
    from hwml.data.phones import PHONES_39
    from hwml.importers import read_phn

    if isinstance(example, bool) or not isinstance(example, (int, float)) or not 1 <= int(example) <= ALIGN_EXAMPLES:
        raise HwmlError(f"pick a built-in sentence between 1 and {ALIGN_EXAMPLES}, got {example!r}")
    with tempfile.TemporaryDirectory(prefix="hwml-align-lesson-") as tmp:
        item = write_transcribed(tmp, "small", seed=seed, per_speaker=1, n_speakers=int(example))[-1]
        result = align_audio(source, item["wav"], item["text"], lexicon=Path(tmp) / "lexicon.txt")
        wave, sr = sf.read(item["wav"], dtype="float32")
        starts, ends, labels = read_phn(item["phn"])
    params = FeatureParams(kind="mfcc39")
    truth = [
        PHONES_39[i] if i >= 0 else ""
        for i in label_frames(len(result.aligned), starts, ends, labels, sr, params).tolist()
    ]
    truth_arr, aligned = np.array(truth), np.array(result.aligned)
    rows = []
    for (start, end, phone), (a, b, _) in zip(result.phones, result.phone_frames):
        names, counts = np.unique(truth_arr[a:b], return_counts=True)
        rows.append(
            {
                "start": start,
                "end": end,
                "word": result.word_of_frame[a],
                "aligned": phone,
                "eSpeak": str(names[counts.argmax()]),
                "agree": round(float(np.mean(truth_arr[a:b] == phone)), 3),
            }
        )
    changes = [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
    true_bounds = np.array([starts[i] / sr for i in changes])
    edges = np.array([start for start, _, _ in result.phones[1:]])
    hits = (
        int((np.abs(true_bounds[:, None] - edges[None, :]).min(1) <= BOUNDARY_TOLERANCE_S + 1e-9).sum())
        if len(true_bounds) and len(edges)
        else 0
    )
    return AlignmentLesson(
        text=item["text"],
        voice=item["speaker"],
        result=result,
        truth=truth,
        truth_segments=label_segments(truth, params),
        rows=rows,
        aligned_vs_truth=float(np.mean(aligned == truth_arr)),
        free_vs_truth=float(np.mean(np.array(result.free) == truth_arr)),
        boundaries_within_20ms=hits / max(1, len(true_bounds)),
        wave=wave,
        sample_rate=sr,
    )
