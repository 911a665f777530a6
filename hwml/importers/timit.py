"""TIMIT-layout corpora (`*.wav`/`*.WAV` with `.phn` beside them, 61 phones folded to the standard
39) -> an HW2 libriphone folder; without any `.phn`, transcribed audio goes to `transcribed`.

Every frame of the audio keeps its place and gets a label (`hwml.importers.phone_labels`: a
`q` segment's time goes to the phones either side, frames under no segment are `sil`). A Praat
TextGrid beside a clip instead of a `.phn` (the Montreal Forced Aligner's output, a `phones`
tier) gives its phones the same way.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from hwml.audio.decode import AUDIO_SUFFIXES, read_audio, wave_to_16k
from hwml.audio.features import mfcc39
from hwml.audio.params import MFCC39
from hwml.errors import HwmlError
from hwml.importers.common import BadFiles, check_paths, featurise_all, frameset, safe_id, split_of, walk
from hwml.importers.phone_labels import PHN_SLACK_SECONDS, every_frame_labelled, read_labels, read_phn
from hwml.safeio import write_folder_atomic

__all__ = ["import_phoneme", "read_phn"]


def _labelled_pairs(src: Path, phones_from: Path | None = None) -> tuple[list[tuple[Path, Path]], int]:
    """(audio, labels) pairs at any depth: a `.phn` beside a `.wav`, or a `.TextGrid` beside any
    audio file (a `.phn` wins where both are); and how many `.wav` files had neither. With
    `phones_from` (MFA's output folder), labels come only from there: the TextGrid at the clip's
    path below SRC, `<phones_from>/<sub-folders>/<stem>.TextGrid` (names in any case)."""
    pairs, unlabelled = [], 0
    for folder, files in walk(src):
        by_lower = {f.lower(): f for f in files}
        if phones_from is not None:
            there = phones_from / folder.relative_to(src)
            by_lower = {f.name.lower(): f.name for f in there.iterdir() if f.is_file()} if there.is_dir() else {}
            folder_of_labels = there
        else:
            folder_of_labels = folder
        seen = set()
        for f in files:
            low = f.lower()
            suffix = Path(low).suffix
            if suffix not in AUDIO_SUFFIXES:
                continue
            stem = low[: -len(suffix)]
            if suffix == ".wav":
                stem = stem.removesuffix(".wav")  # SA1.WAV (SPHERE) and SA1.WAV.wav (converted) are one
            if stem in seen:
                continue
            phn = by_lower.get(stem + ".phn") if suffix == ".wav" and phones_from is None else None
            labels = phn or by_lower.get(stem + ".textgrid")
            if labels is None:
                unlabelled += suffix == ".wav"
                continue
            seen.add(stem)
            pairs.append((folder / f, folder_of_labels / labels))
    return pairs, unlabelled


def _phoneme_utterance(wav: Path, phn: Path) -> tuple[torch.Tensor, torch.Tensor, float]:
    """MFCC39 frames of one utterance (every one), their labels, and its seconds."""
    wave, sr = read_audio(wav)
    starts, ends, labels = read_labels(phn, sr)
    if max(ends) > len(wave) + PHN_SLACK_SECONDS * sr:
        raise HwmlError(f"{phn}: segments run to {max(ends) / sr:.2f} s but {wav.name} lasts {len(wave) / sr:.2f} s")
    feats = mfcc39(wave_to_16k(wave, sr, name=str(wav)))
    return feats, every_frame_labelled(feats, starts, ends, labels, sr, phn), len(wave) / sr


def import_phoneme(
    src, out, *, skip_bad: bool = False, progress: bool = True, phones_from=None, **align_options
) -> dict:
    """TIMIT-layout corpus -> HW2 libriphone folder (MFCC39, 39 folded phone classes).

    Every `*.wav`/`*.WAV` (RIFF or NIST SPHERE) with a `.phn` beside it, and any audio file with
    a same-named `.TextGrid` beside it (a `phones` tier, e.g. MFA's output), at any depth. The
    speaker is the folder holding the file; utterance ids are `<region>_<speaker>_<stem>`.
    Folders named TRAIN/TEST (any case) choose the split (a labelled test part); without
    them everything is train. Every frame is kept: a `q` segment's time goes to its neighbours,
    frames in no segment are `sil` (module docstring). `phones_from`: a folder of TextGrids in
    SRC's layout (MFA's output folder) to take the labels from instead (`_labelled_pairs`).
    Returns a summary dict.

    Without any `.phn` or `.TextGrid`, audio with transcripts (`.lab`/`.txt` beside it, or a Kaldi `text` file)
    is force-aligned instead: `hwml.importers.transcribed.import_transcribed`, which takes `align_options`
    (lexicon_file, align_model, rounds, round_seconds, textgrid, ...).
    """
    from hwml.data.libriphone import write_libriphone

    src, out = Path(src), Path(out)
    check_paths(src, out)
    started = time.perf_counter()
    if phones_from is not None:
        phones_from = Path(phones_from)
        if not phones_from.is_dir():
            raise HwmlError(f"{phones_from}: not a folder (--phones-from: the folder of TextGrids, e.g. MFA's output)")
    pairs, unlabelled = _labelled_pairs(src, phones_from)
    if not pairs and phones_from is not None:
        raise HwmlError(
            f"{phones_from}: no TextGrid for any audio file of {src} "
            "(expected <folder>/<the clip's sub-folders>/<clip stem>.TextGrid, as MFA writes them)"
        )
    if not pairs:
        from hwml.importers.transcribed import find_transcribed, import_transcribed

        utts, counts = find_transcribed(src)
        if utts:
            return import_transcribed(src, out, utts, counts, skip_bad=skip_bad, progress=progress, **align_options)
        raise HwmlError(
            f"{src}: no .wav file with a .phn file beside it (TIMIT layout), no audio with a Praat "
            ".TextGrid beside it, and no audio with a transcript (a same-named .lab/.txt beside it, "
            "or a Kaldi 'text' file at the top)"
        )
    used = sorted(k for k, v in align_options.items() if k != "seed" and v not in (None, False, 0))
    if used:
        raise HwmlError(
            f"{src}: has phone labels (.phn or .TextGrid), so nothing is aligned; "
            f"{', '.join(used)} apply only to audio with transcripts"
        )
    bad = BadFiles(skip_bad)
    parts = {"train": [], "test": []}
    ids, speakers, seconds = set(), set(), 0.0
    for (wav, _phn), result in featurise_all(pairs, lambda pair: _phoneme_utterance(*pair), "import phoneme", progress):
        if isinstance(result, HwmlError):
            bad(wav, result)
            continue
        feats, labels, secs = result
        rel_dirs = wav.parent.relative_to(src).parts
        speaker = rel_dirs[-1] if rel_dirs else src.name
        region = rel_dirs[-2] if len(rel_dirs) >= 2 else ""
        utt = base = safe_id(region, speaker, wav.name.split(".")[0])
        k = 1
        while utt in ids:
            k += 1
            utt = f"{base}-{k}"
        ids.add(utt)
        speakers.add(wav.parent)
        seconds += secs
        parts[split_of(rel_dirs) or "train"].append((utt, feats, labels))
    if not parts["train"]:
        raise HwmlError(f"{src}: no usable training utterance" + (" (all skipped)" if bad.skipped else ""))
    train = frameset(parts["train"])
    test = frameset(parts["test"]) if parts["test"] else None
    write_folder_atomic(out, lambda root: write_libriphone(root, train, test))
    return {
        "format": "libriphone",
        "out": str(out),
        "features": MFCC39.to_dict(),
        "speakers": len(speakers),
        "audio_seconds": round(seconds, 2),
        "train_utterances": train.n_utts,
        "train_frames": len(train),
        "test_utterances": test.n_utts if test else 0,
        "test_frames": len(test) if test else 0,
        "wav_without_phn": unlabelled,
        "skipped": bad.skipped,
        "seconds": round(time.perf_counter() - started, 2),
    }
