"""Your own audio -> course-format folders: TIMIT layout -> HW2 libriphone, speaker audio -> HW4 Dataset.

Features come from `hwml.audio` (MFCC39 for phonemes, LOGMEL40 for speakers), the same functions
inference uses. Nothing is skipped silently: an unreadable file fails the import, naming the
file, unless `skip_bad`, in which case it is printed and listed in the returned summary. The
output folder is written under a temporary name and renamed into place only when complete.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from tqdm import tqdm

from hwml import settings
from hwml.audio.decode import AUDIO_SUFFIXES, MAX_SECONDS, is_audio, load_audio, read_audio, wave_to_16k
from hwml.audio.features import logmel40, mfcc39
from hwml.audio.frames import label_frames
from hwml.audio.params import LOGMEL40, MFCC39, SAMPLE_RATE
from hwml.data.phones import PHONES_39, fold
from hwml.data.types import FrameSet, UtteranceSet
from hwml.errors import HwmlError
from hwml.machine import single_thread
from hwml.safeio import write_folder_atomic

FSDD_NAME = re.compile(r"^([^_]+)_(.+)_(\d+)$")  # {label}_{speaker}_{n}, e.g. 7_jackson_32
PHONE_INDEX = {p: i for i, p in enumerate(PHONES_39)}
PHN_SLACK_SECONDS = 0.5  # .phn segments may end this far past the audio (rounding, padding)


# ---------------------------------------------------------------------------------------------
# shared plumbing


class _BadFiles:
    """Fail on the first bad file, or (skip_bad) print it, remember it and go on."""

    def __init__(self, skip_bad: bool):
        self.skip_bad, self.skipped = skip_bad, []

    def __call__(self, file: Path, err: HwmlError) -> None:
        msg = str(err) if str(file.parent) in str(err) else f"{file}: {err}"
        if not self.skip_bad:
            raise HwmlError(f"{msg} (use --skip-bad to skip unreadable files)")
        self.skipped.append({"file": str(file), "error": msg})
        tqdm.write(f"skipped {msg}", file=sys.stderr)


def _featurise_all(items: list, featurise, desc: str, progress: bool):
    """Yield (item, featurise(item) or the HwmlError it raised), in order, several files at once.

    Decoding (libsndfile) and torch ops release the GIL, so threads keep every core busy, each
    running torch on one intra-op thread (`audio.single_thread`). Only 2 x threads files are in
    flight, so a bad file stops the import without featurising the rest first (`pool.map`
    would queue them all). HWML_IMPORT_THREADS overrides the thread count.
    """

    def attempt(item):
        try:
            return featurise(item)
        except HwmlError as e:
            return e

    workers = settings.import_threads()
    with (
        single_thread(),
        ThreadPoolExecutor(workers) as pool,
        tqdm(total=len(items), desc=desc, unit="file", disable=not progress) as bar,
    ):
        todo, running = iter(items), []
        for item in itertools.islice(todo, 2 * workers):
            running.append((item, pool.submit(attempt, item)))
        while running:
            item, future = running.pop(0)
            result = future.result()
            nxt = next(todo, None)
            if nxt is not None:
                running.append((nxt, pool.submit(attempt, nxt)))
            bar.update()
            yield item, result


def _walk(root: Path):
    """(folder, sorted file names) for every folder below root; hidden files and __MACOSX left out."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        yield Path(folder), sorted(f for f in files if not f.startswith("."))


def _check_paths(src: Path, out: Path) -> None:
    if not src.is_dir():
        raise HwmlError(f"{src}: not a folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HwmlError(f"{out}: already exists and is not an empty folder")


def _offsets(lengths: list[int]) -> torch.Tensor:
    return torch.cat([torch.zeros(1, dtype=torch.int64), torch.tensor(lengths, dtype=torch.int64).cumsum(0)])


def _safe_id(*parts: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", "_".join(p for p in parts if p).lower()).strip("-") or "utt"


# ---------------------------------------------------------------------------------------------
# phonemes: TIMIT layout -> libriphone


def _timit_pairs(src: Path) -> tuple[list[tuple[Path, Path]], int]:
    """(wav, phn) pairs at any depth, and how many .wav files had no .phn beside them."""
    pairs, unlabelled = [], 0
    for folder, files in _walk(src):
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
    """A TIMIT .phn file: (starts, ends, 39-class indices); `q` gets -1 (dropped)."""
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
    return starts, ends, labels


def _phoneme_utterance(wav: Path, phn: Path) -> tuple[torch.Tensor, torch.Tensor, float]:
    """MFCC39 frames of one utterance that fall in a labelled phone, their labels, and its seconds."""
    wave, sr = read_audio(wav)
    starts, ends, labels = read_phn(phn)
    if max(ends) > len(wave) + PHN_SLACK_SECONDS * sr:
        raise HwmlError(f"{phn}: segments run to {max(ends) / sr:.2f} s but {wav.name} lasts {len(wave) / sr:.2f} s")
    feats = mfcc39(wave_to_16k(wave, sr, name=str(wav)))
    frame_labels = label_frames(len(feats), starts, ends, labels, sr, MFCC39)
    keep = frame_labels >= 0
    if not keep.any():
        raise HwmlError(f"{phn}: no frame centre falls in a labelled phone segment")
    return feats[keep].contiguous(), frame_labels[keep], len(wave) / sr


def _split_of(rel_dirs: tuple[str, ...]) -> str | None:
    return next((d.lower() for d in rel_dirs if d.lower() in ("train", "test")), None)


def _frameset(utts: list[tuple[str, torch.Tensor, torch.Tensor]]) -> FrameSet:
    return FrameSet(
        feats=torch.cat([f for _, f, _ in utts]),
        labels=torch.cat([y for _, _, y in utts]),
        offsets=_offsets([len(f) for _, f, _ in utts]),
        utt_ids=[u for u, _, _ in utts],
        class_names=list(PHONES_39),
        stacked=1,
    )


def import_phoneme(src, out, *, skip_bad: bool = False, progress: bool = True, **align_options) -> dict:
    """TIMIT-layout corpus -> HW2 libriphone folder (MFCC39, 39 folded phone classes).

    Every `*.wav`/`*.WAV` (RIFF or NIST SPHERE) with a `.phn` beside it, at any depth. The
    speaker is the folder holding the file; utterance ids are `<region>_<speaker>_<stem>`.
    Folders named TRAIN/TEST (any case) choose the split (a labelled test part); without
    them everything is train. Frames whose centre is in a `q` segment or in no segment are
    dropped. Returns a summary dict.

    Without any `.phn`, audio with transcripts (`.lab`/`.txt` beside it, or a Kaldi `text` file)
    is force-aligned instead: `hwml.transcripts.import_transcribed`, which takes `align_options`
    (lexicon_file, align_model, rounds, round_seconds, textgrid, ...).
    """
    from hwml.data.libriphone import write_libriphone

    src, out = Path(src), Path(out)
    _check_paths(src, out)
    started = time.perf_counter()
    pairs, unlabelled = _timit_pairs(src)
    if not pairs:
        from hwml.transcripts import find_transcribed, import_transcribed

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
    bad = _BadFiles(skip_bad)
    parts = {"train": [], "test": []}
    ids, speakers, seconds = set(), set(), 0.0
    for (wav, _phn), result in _featurise_all(
        pairs, lambda pair: _phoneme_utterance(*pair), "import phoneme", progress
    ):
        if isinstance(result, HwmlError):
            bad(wav, result)
            continue
        feats, labels, secs = result
        rel_dirs = wav.parent.relative_to(src).parts
        speaker = rel_dirs[-1] if rel_dirs else src.name
        region = rel_dirs[-2] if len(rel_dirs) >= 2 else ""
        utt = base = _safe_id(region, speaker, wav.name.split(".")[0])
        k = 1
        while utt in ids:
            k += 1
            utt = f"{base}-{k}"
        ids.add(utt)
        speakers.add(wav.parent)
        seconds += secs
        parts[_split_of(rel_dirs) or "train"].append((utt, feats, labels))
    if not parts["train"]:
        raise HwmlError(f"{src}: no usable training utterance" + (" (all skipped)" if bad.skipped else ""))
    train = _frameset(parts["train"])
    test = _frameset(parts["test"]) if parts["test"] else None
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


# ---------------------------------------------------------------------------------------------
# speakers: speaker folders / LibriSpeech / FSDD names -> HW4 Dataset


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
        nested = [folder / f for folder, files in _walk(src) if folder != src for f in files if is_audio(f)]
        if nested:
            raise HwmlError(f"{src}: has both audio files and speaker folders ({nested[0]}); use one layout")
        return "fsdd-names", [(FSDD_NAME.match(p.stem)[2], p) for p in top]
    recs = [
        (folder.relative_to(src).parts[0], folder / f)
        for folder, files in _walk(src)
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
        offsets=_offsets([len(f) for _, f, _ in utts]),
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
    _check_paths(src, out)
    if segment_seconds is not None and not (0.1 <= segment_seconds <= MAX_SECONDS):
        raise HwmlError(f"segment_seconds must be between 0.1 and {MAX_SECONDS:g}, got {segment_seconds}")
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
    bad = _BadFiles(skip_bad)
    parts = {"train": [], "test": []}
    seconds = 0.0

    def featurise(rec):
        wave = load_audio(rec[1])
        return len(wave) / SAMPLE_RATE, [logmel40(p) for p in _segments(wave, segment_seconds)]

    for (speaker, path), result in _featurise_all(recs, featurise, "import speaker", progress):
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
