"""TIMIT-layout corpora (`*.wav`/`*.WAV` with `.phn` beside them, 61 phones folded to the standard
39) -> an HW2 libriphone folder; without any `.phn`, transcribed audio goes to `transcribed`.

Every frame of the audio keeps its place and gets a label, so an utterance's frame labels line
up one-to-one with its audio's frames (context windows and sequence models see the real
neighbours). TIMIT's glottal stop `q` is no class of the 39 (Lee & Hon 1989 delete it from the
transcription; Kaldi's TIMIT recipe does the same and lets re-alignment give its time to the
phones around it), so `read_phn` does what that re-alignment does: a `q` segment's time goes to
its neighbours, the first half to the phone before it and the second half to the phone after
it (all of it to the one neighbour at an utterance's edge). Folding it to `sil` instead would
call voiced speech silence: TIMIT's `q` is mostly a glottalised vowel onset or a /t/ said as
creak, not a pause. Frames whose centre lies in no segment at all (gaps, or a `.phn` ending a
little before the audio) are `sil`, what TIMIT-39 calls unlabelled non-speech (`h#`, `pau`).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from hwml.audio.decode import read_audio, wave_to_16k
from hwml.audio.features import mfcc39
from hwml.audio.frames import label_frames
from hwml.audio.params import MFCC39
from hwml.data.phones import PHONES_39, fold
from hwml.errors import HwmlError
from hwml.importers.common import BadFiles, check_paths, featurise_all, frameset, safe_id, split_of, walk
from hwml.safeio import write_folder_atomic

PHONE_INDEX = {p: i for i, p in enumerate(PHONES_39)}


PHN_SLACK_SECONDS = 0.5  # .phn segments may end this far past the audio, or leave this much of it unlabelled
SILENCE = PHONE_INDEX["sil"]


def _timit_pairs(src: Path) -> tuple[list[tuple[Path, Path]], int]:
    """(wav, phn) pairs at any depth, and how many .wav files had no .phn beside them."""
    pairs, unlabelled = [], 0
    for folder, files in walk(src):
        by_lower = {f.lower(): f for f in files}
        seen = set()
        for f in files:
            low = f.lower()
            if not low.endswith(".wav"):
                continue
            stem = low[:-4].removesuffix(".wav")  # SA1.WAV (SPHERE) and SA1.WAV.wav (converted) are one
            if stem in seen:
                continue
            phn = by_lower.get(stem + ".phn")
            if phn is None:
                unlabelled += 1
                continue
            seen.add(stem)
            pairs.append((folder / f, folder / phn))
    return pairs, unlabelled


def read_phn(phn: Path) -> tuple[list[int], list[int], list[int]]:
    """A TIMIT .phn file: (starts, ends, 39-class indices) in the file's order; each `q`
    segment's time is given to its neighbours (`give_q_to_neighbours`), so no label is -1."""
    try:
        text = phn.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as e:
        raise HwmlError(f"{phn}: cannot read phone labels ({type(e).__name__})") from None
    starts, ends, labels = [], [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            start, end, phone = int(parts[0]), int(parts[1]), parts[2]
            if len(parts) != 3:
                raise ValueError
        except (ValueError, IndexError):
            raise HwmlError(f"{phn}: line {n}: expected 'start end phone', got {line.strip()[:40]!r}") from None
        if not 0 <= start <= end:
            raise HwmlError(f"{phn}: line {n}: bad segment {start}..{end}")
        try:
            folded = fold(phone)
        except KeyError:
            raise HwmlError(f"{phn}: line {n}: unknown TIMIT phone {phone[:20]!r}") from None
        starts.append(start)
        ends.append(end)
        labels.append(-1 if folded is None else PHONE_INDEX[folded])
    if not starts:
        raise HwmlError(f"{phn}: no phone segments")
    if all(label < 0 for label in labels):
        raise HwmlError(f"{phn}: no phone segment other than the glottal stop q")
    return give_q_to_neighbours(starts, ends, labels)


def give_q_to_neighbours(starts: list[int], ends: list[int], labels: list[int]):
    """Segments without the -1 (`q`) ones: a run of them, [a, b), goes to the segments either
    side, split at (a + b) // 2; at an edge the one neighbour takes it all (module docstring)."""
    starts, ends, labels = list(starts), list(ends), list(labels)
    i = 0
    while i < len(labels):
        if labels[i] >= 0:
            i += 1
            continue
        j = i
        while j < len(labels) and labels[j] < 0:
            j += 1
        a, b = starts[i], max(ends[i:j])
        before, after = i - 1 if i > 0 else None, j if j < len(labels) else None
        mid = (a + b) // 2 if before is not None and after is not None else (b if after is None else a)
        if before is not None:
            ends[before] = max(ends[before], mid)
        if after is not None:
            starts[after] = min(starts[after], mid)
        del starts[i:j], ends[i:j], labels[i:j]
    return starts, ends, labels


def _phoneme_utterance(wav: Path, phn: Path) -> tuple[torch.Tensor, torch.Tensor, float]:
    """MFCC39 frames of one utterance (every one), their labels, and its seconds."""
    wave, sr = read_audio(wav)
    starts, ends, labels = read_phn(phn)
    if max(ends) > len(wave) + PHN_SLACK_SECONDS * sr:
        raise HwmlError(f"{phn}: segments run to {max(ends) / sr:.2f} s but {wav.name} lasts {len(wave) / sr:.2f} s")
    feats = mfcc39(wave_to_16k(wave, sr, name=str(wav)))
    return feats, every_frame_labelled(feats, starts, ends, labels, sr, phn), len(wave) / sr


def every_frame_labelled(feats: torch.Tensor, starts, ends, labels, sr: int, source: Path) -> torch.Tensor:
    """(T,) labels of all T frames: the segment under each centre, `sil` where none is; more
    than PHN_SLACK_SECONDS of unlabelled frames is an error (labels of another recording?)."""
    if len(feats) == 0:
        raise HwmlError(f"{source}: its audio is shorter than one frame")
    frame_labels = label_frames(len(feats), starts, ends, labels, sr, MFCC39)
    unlabelled = frame_labels < 0
    hop = MFCC39.hop_length / MFCC39.sample_rate
    if int(unlabelled.sum()) * hop > PHN_SLACK_SECONDS:
        raise HwmlError(
            f"{source}: labels leave {int(unlabelled.sum()) * hop:.2f} s of the audio's {len(feats) * hop:.2f} s "
            f"unlabelled (at most {PHN_SLACK_SECONDS} s may be)"
        )
    return torch.where(unlabelled, torch.full_like(frame_labels, SILENCE), frame_labels)


def import_phoneme(src, out, *, skip_bad: bool = False, progress: bool = True, **align_options) -> dict:
    """TIMIT-layout corpus -> HW2 libriphone folder (MFCC39, 39 folded phone classes).

    Every `*.wav`/`*.WAV` (RIFF or NIST SPHERE) with a `.phn` beside it, at any depth. The
    speaker is the folder holding the file; utterance ids are `<region>_<speaker>_<stem>`.
    Folders named TRAIN/TEST (any case) choose the split (a labelled test part); without
    them everything is train. Every frame is kept: a `q` segment's time goes to its neighbours,
    frames in no segment are `sil` (module docstring). Returns a summary dict.

    Without any `.phn`, audio with transcripts (`.lab`/`.txt` beside it, or a Kaldi `text` file)
    is force-aligned instead: `hwml.importers.transcribed.import_transcribed`, which takes `align_options`
    (lexicon_file, align_model, rounds, round_seconds, textgrid, ...).
    """
    from hwml.data.libriphone import write_libriphone

    src, out = Path(src), Path(out)
    check_paths(src, out)
    started = time.perf_counter()
    pairs, unlabelled = _timit_pairs(src)
    if not pairs:
        from hwml.importers.transcribed import find_transcribed, import_transcribed

        utts, counts = find_transcribed(src)
        if utts:
            return import_transcribed(src, out, utts, counts, skip_bad=skip_bad, progress=progress, **align_options)
        raise HwmlError(
            f"{src}: no .wav file with a .phn file beside it (TIMIT layout), and no audio with a "
            "transcript (a same-named .lab/.txt beside it, or a Kaldi 'text' file at the top)"
        )
    used = sorted(k for k, v in align_options.items() if k != "seed" and v not in (None, False, 0))
    if used:
        raise HwmlError(
            f"{src}: has .phn phone labels, so nothing is aligned; "
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
