"""Speaker audio -> an HW4 Dataset folder: one folder per speaker with audio at any depth below it
(LibriSpeech: `speaker/chapter/*.flac`), or a flat folder of FSDD-style `{label}_{speaker}_{n}.wav`."""

from __future__ import annotations

import hashlib
import random
import re
import time
from pathlib import Path

import torch

from hwml.audio import decode
from hwml.audio.decode import AUDIO_SUFFIXES, is_audio, load_audio
from hwml.audio.features import logmel40
from hwml.audio.params import LOGMEL40, SAMPLE_RATE
from hwml.data.common import offsets_from_lengths
from hwml.data.types import UtteranceSet
from hwml.errors import HwmlError
from hwml.importers.common import BadFiles, check_paths, featurise_all, walk
from hwml.safeio import write_folder_atomic

FSDD_NAME = re.compile(r"^([^_]+)_(.+)_(\d+)$")  # {label}_{speaker}_{n}, e.g. 7_jackson_32


def _speaker_recordings(src: Path) -> tuple[str, list[tuple[str, Path]]]:
    """(layout, [(speaker, file)]): flat `{label}_{speaker}_{n}` names, or one folder per speaker."""
    top = sorted(p for p in src.iterdir() if p.is_file() and not p.name.startswith(".") and is_audio(p.name))
    if top:
        for p in top:
            if not FSDD_NAME.match(p.stem):
                raise HwmlError(
                    f"{p}: audio directly in {src} must be named {{label}}_{{speaker}}_{{n}} "
                    "(as in FSDD); otherwise put each speaker's audio in a folder of its own"
                )
        nested = [folder / f for folder, files in walk(src) if folder != src for f in files if is_audio(f)]
        if nested:
            raise HwmlError(f"{src}: has both audio files and speaker folders ({nested[0]}); use one layout")
        return "fsdd-names", [(FSDD_NAME.match(p.stem)[2], p) for p in top]
    recs = [
        (folder.relative_to(src).parts[0], folder / f)
        for folder, files in walk(src)
        if folder != src
        for f in files
        if is_audio(f)
    ]
    return "speaker-folders", recs


def _held_out(recs: list[tuple[str, Path]], fraction: float, seed: int) -> set[Path]:
    """Recordings for the labelled test part: per speaker, seeded, each speaker keeps >= 1 for training."""
    by_speaker: dict[str, list[Path]] = {}
    for speaker, path in recs:
        by_speaker.setdefault(speaker, []).append(path)
    held = set()
    for speaker, paths in by_speaker.items():
        n_test = min(len(paths) - 1, round(fraction * len(paths)))
        held.update(random.Random(f"{seed}:{speaker}").sample(paths, n_test))
    return held


def _segments(wave: torch.Tensor, seconds: float | None) -> list[torch.Tensor]:
    """Cut into `seconds`-long pieces; a tail shorter than half a piece is dropped (kept if it is all there is)."""
    if seconds is None:
        return [wave]
    size = round(seconds * SAMPLE_RATE)
    pieces = list(wave.split(size))
    if len(pieces) > 1 and len(pieces[-1]) < size / 2:
        pieces.pop()
    return pieces


def _utterance_set(utts: list[tuple[str, torch.Tensor, int]], class_names: list[str]) -> UtteranceSet:
    return UtteranceSet(
        feats=torch.cat([f for _, f, _ in utts]),
        offsets=offsets_from_lengths([len(f) for _, f, _ in utts]),
        utt_ids=[u for u, _, _ in utts],
        labels=torch.tensor([y for _, _, y in utts], dtype=torch.int64),
        class_names=class_names,
    )


def import_speaker(
    src,
    out,
    *,
    segment_seconds: float | None = None,
    test_fraction: float = 0.0,
    seed: int = 0,
    skip_bad: bool = False,
    progress: bool = True,
) -> dict:
    """Speaker audio -> HW4 Dataset folder (LOGMEL40), optionally with a labelled test part.

    Layouts: one folder per speaker with audio at any depth below it (LibriSpeech:
    `speaker/chapter/*.flac`), or a flat folder of `{label}_{speaker}_{n}.wav` files (FSDD).
    `segment_seconds` cuts recordings into utterances of that length. `test_fraction` holds
    out that share of each speaker's recordings (whole recordings, so no segment of a test
    recording is trained on), written as testdata.json + test_labels.csv. Returns a summary.
    """
    from hwml.data.hw4 import write_hw4

    src, out = Path(src), Path(out)
    check_paths(src, out)
    if segment_seconds is not None and not (0.1 <= segment_seconds <= decode.MAX_SECONDS):
        raise HwmlError(f"segment_seconds must be between 0.1 and {decode.MAX_SECONDS:g}, got {segment_seconds}")
    if not 0.0 <= test_fraction < 1.0:
        raise HwmlError(f"test_fraction must be in [0, 1), got {test_fraction}")
    started = time.perf_counter()
    layout, recs = _speaker_recordings(src)
    if not recs:
        raise HwmlError(f"{src}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) found")
    speakers = sorted({s for s, _ in recs})
    if len(speakers) < 2:
        raise HwmlError(
            f"{src}: found only one speaker ({speakers[0]!r}); "
            "point at the folder that holds one sub-folder per speaker"
        )
    held = _held_out(recs, test_fraction, seed)
    bad = BadFiles(skip_bad)
    parts = {"train": [], "test": []}
    seconds = 0.0

    def featurise(rec):
        wave = load_audio(rec[1])
        return len(wave) / SAMPLE_RATE, [logmel40(p) for p in _segments(wave, segment_seconds)]

    for (speaker, path), result in featurise_all(recs, featurise, "import speaker", progress):
        if isinstance(result, HwmlError):
            bad(path, result)
            continue
        secs, pieces = result
        seconds += secs
        rel = path.relative_to(src).as_posix()
        for k, feats in enumerate(pieces):
            uid = "uttr-" + hashlib.sha1(f"{rel}#{k}".encode()).hexdigest()[:32] + ".pt"
            parts["test" if path in held else "train"].append((uid, feats, speaker))
    trained = sorted({s for _, _, s in parts["train"]})
    if len(trained) < 2:
        raise HwmlError(
            f"{src}: fewer than two speakers with usable audio" + (" (files skipped)" if bad.skipped else "")
        )
    index = {s: i for i, s in enumerate(trained)}
    dropped = [u for u in parts["test"] if u[2] not in index]  # speaker's training recordings all skipped
    sets = {name: [(u, f, index[s]) for u, f, s in utts if s in index] for name, utts in parts.items()}
    train = _utterance_set(sets["train"], trained)
    test = _utterance_set(sets["test"], trained) if sets["test"] else None
    write_folder_atomic(out, lambda root: write_hw4(root, train, test))
    return {
        "format": "hw4",
        "layout": layout,
        "out": str(out),
        "features": LOGMEL40.to_dict(),
        "speakers": len(trained),
        "recordings": len(recs) - len(bad.skipped),
        "audio_seconds": round(seconds, 2),
        "train_utterances": len(train),
        "train_frames": int(train.offsets[-1]),
        "test_utterances": len(test) if test else 0,
        "test_frames": int(test.offsets[-1]) if test else 0,
        "test_recordings": len(held - {Path(s["file"]) for s in bad.skipped}),
        "test_dropped_unknown_speaker": len(dropped),
        "skipped": bad.skipped,
        "seconds": round(time.perf_counter() - started, 2),
    }
