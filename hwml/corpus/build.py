"""Generate the built-in corpus and write it in the three course formats, cached and reproducible.

Each utterance's sentence, style and noise come from generators seeded by (seed, speaker,
index), and a private copy of eSpeak speaks all utterances in one fixed order (its output
depends on what it spoke before), so the same seed gives byte-identical files. Audio: eSpeak
NG at 22050 Hz -> labelled phone segments -> silence before and after, a mild random channel,
gain and noise -> `hwml.audio` (16 kHz, MFCC39 for HW2, LOGMEL40 for HW4, frame labels at
frame centres).

Splits:
- `libriphone/` and `timit_11/` (HW2): one speaker in `phone_test_every` is held out, so the
  labelled test part measures generalisation to new voices. timit_11 rows are 11 stacked
  frames (11x the bytes), so it keeps only the first `timit_utterances` of each speaker.
- `speaker/` (HW4): every speaker in train; the last `speaker_test` utterances of each one
  form the labelled test part (`test_labels.csv`).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hwml import settings
from hwml.audio.decode import wave_to_16k
from hwml.audio.features import logmel40, mfcc39
from hwml.audio.frames import label_frames, stack_context
from hwml.corpus import espeak
from hwml.corpus.labels import SIL, segments
from hwml.corpus.sentences import sentence
from hwml.corpus.voices import Speaker, UtteranceStyle, speakers, utterance_style
from hwml.data import FrameSet, UtteranceSet, write_hw4, write_libriphone, write_timit11
from hwml.data.phones import PHONES_39
from hwml.data.timit11 import CONTEXT
from hwml.errors import HwmlError
from hwml.machine import single_thread
from hwml.safeio import atomic_write_text, write_json_atomic

VERSION = 1
MARKER = "corpus.json"  # written last: its presence means the build completed
TRANSCRIPTS = "transcripts.tsv"  # utt_id, speaker, sentence
WORKERS = 2  # featurising threads beside the synthesising one (ctypes and torch release the GIL)
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class CorpusSize:
    speakers: int
    utterances: int  # per speaker
    speaker_test: int  # per speaker: HW4 held-out utterances
    phone_test_every: int  # one speaker in n is held out of the HW2 training part
    timit_utterances: int  # per speaker in timit_11


SIZES = {
    "small": CorpusSize(speakers=24, utterances=6, speaker_test=2, phone_test_every=6, timit_utterances=3),
    "default": CorpusSize(speakers=72, utterances=16, speaker_test=3, phone_test_every=6, timit_utterances=3),
}


@dataclass
class RenderedUtterance:
    """One utterance of the built-in corpus as eSpeak rendered it: its features and frame labels."""

    utt_id: str
    speaker: int
    k: int  # index among the speaker's utterances
    text: str
    mfcc: torch.Tensor  # (T, 39)
    logmel: torch.Tensor  # (T, 40)
    labels: torch.Tensor  # (T,) int64 indices into PHONES_39
    seconds: float


def default_root(size: str = "default", seed: int = 0) -> Path:
    return settings.cache_dir() / "corpus" / f"{size}-{seed}-v{VERSION}"


@dataclass(frozen=True)
class Plan:
    """What utterance k of a speaker says and how: a pure function of (seed, speaker, k)."""

    speaker: Speaker
    index: int  # the speaker's class id
    k: int
    text: str
    style: UtteranceStyle
    noise_seed: int


def plan_utterance(speaker: Speaker, index: int, k: int, seed: int) -> Plan:
    rng = random.Random(f"hwml-corpus:{seed}:{speaker.name}:{k}")
    text, style = sentence(rng), utterance_style(speaker, rng)
    return Plan(speaker, index, k, text, style, rng.getrandbits(64))


def speak(plan: Plan, engine: espeak.Engine) -> espeak.Synthesis:
    style = plan.style
    return engine.synthesize(
        plan.text,
        plan.speaker.voice,
        rate=style.rate,
        pitch=style.pitch,
        pitch_range=style.pitch_range,
        word_gap=style.word_gap,
    )


def render(plan: Plan, syn: espeak.Synthesis) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Label and degrade (silence around, channel, gain, noise) one synthesis: (wave float32 at
    syn.sample_rate, starts, ends, labels) with exact sample boundaries covering the whole wave."""
    style, sr = plan.style, syn.sample_rate
    starts, ends, labels = segments(syn, plan.speaker.accent)
    lead, trail = round(style.lead_s * sr), round(style.trail_s * sr)
    wave = np.concatenate([np.zeros(lead, np.float32), syn.wave, np.zeros(trail, np.float32)])
    wave = np.convolve(wave, [1.0, *style.channel])[: len(wave)]
    speech_rms = float(np.sqrt(np.mean(syn.wave.astype(np.float64) ** 2))) or 1e-4
    noise = np.random.default_rng(plan.noise_seed).standard_normal(len(wave))
    wave = 10 ** (style.gain_db / 20) * (wave + noise * speech_rms * 10 ** (-style.snr_db / 20))
    starts = np.concatenate([[0], starts + lead, [lead + len(syn.wave)]])
    ends = np.concatenate([[lead], ends + lead, [len(wave)]])
    labels = np.concatenate([[SIL], labels, [SIL]])
    return wave.astype(np.float32), starts, ends, labels


def finish_utterance(plan: Plan, syn: espeak.Synthesis) -> RenderedUtterance:
    """Label, degrade and featurise one synthesis."""
    wave, starts, ends, labels = render(plan, syn)
    sr = syn.sample_rate
    wave16 = wave_to_16k(wave, sr, name=f"utterance {plan.speaker.name}/{plan.k}")
    mfcc, logmel = mfcc39(wave16), logmel40(wave16)
    frame_labels = label_frames(len(mfcc), starts, ends, labels, sr)
    if len(logmel) != len(mfcc) or bool((frame_labels < 0).any()):
        raise RuntimeError(f"utterance {plan.speaker.name}/{plan.k}: frames and labels disagree")
    return RenderedUtterance(
        f"{plan.speaker.name}-{plan.k:03d}", plan.index, plan.k, plan.text, mfcc, logmel, frame_labels, len(wave) / sr
    )


def _frames(utts: list[RenderedUtterance], context: int = 1) -> FrameSet:
    feats = [stack_context(u.mfcc, context) if context > 1 else u.mfcc for u in utts]
    lengths = torch.tensor([len(u.mfcc) for u in utts])
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    return FrameSet(
        torch.cat(feats),
        torch.cat([u.labels for u in utts]),
        offsets,
        [u.utt_id for u in utts],
        list(PHONES_39),
        stacked=context,
    )


def _utterance_set(utts: list[RenderedUtterance], names: list[str]) -> UtteranceSet:
    lengths = torch.tensor([len(u.logmel) for u in utts])
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    return UtteranceSet(
        torch.cat([u.logmel for u in utts]),
        offsets,
        [u.utt_id for u in utts],
        torch.tensor([u.speaker for u in utts]),
        names,
    )


def class_counts(labels: torch.Tensor) -> dict[str, int]:
    counts = torch.bincount(labels, minlength=len(PHONES_39)).tolist()
    return dict(zip(PHONES_39, counts))


def build_corpus(out: Path, size: CorpusSize, seed: int, progress: Progress | None = None) -> dict:
    """Render every utterance and write timit_11/, libriphone/, speaker/ and the marker into `out`."""
    with single_thread():  # tiny tensor ops: intra-op threads only add waiting
        return _build(out, size, seed, progress)


def _build(out: Path, size: CorpusSize, seed: int, progress: Progress | None) -> dict:
    report = progress or (lambda fraction, message: None)
    voices = speakers(size.speakers)
    plans = [plan_utterance(s, i, k, seed) for i, s in enumerate(voices) for k in range(size.utterances)]
    pending = []
    # eSpeak's output depends on everything its copy of the library spoke before: one private
    # copy speaks every utterance in order, while threads featurise (torch releases the GIL)
    with espeak.Engine(private=True) as engine, ThreadPoolExecutor(WORKERS) as pool:
        for n, plan in enumerate(plans):
            if plan.k == 0:
                report(0.9 * n / len(plans), f"synthesising speaker {plan.index + 1}/{len(voices)}")
            pending.append(pool.submit(finish_utterance, plan, speak(plan, engine)))
        utts = [job.result() for job in pending]
    report(0.9, "writing libriphone")
    n = size.phone_test_every  # one in n, on a diagonal of the accent interleave: many accents
    held_out = {i for i in range(len(voices)) if i % n == (n - 1 - i // n) % n}
    phone_train = [u for u in utts if u.speaker not in held_out]
    phone_test = [u for u in utts if u.speaker in held_out]
    write_libriphone(out / "libriphone", _frames(phone_train), _frames(phone_test))
    report(0.94, "writing timit_11")
    timit_train = _frames([u for u in phone_train if u.k < size.timit_utterances], CONTEXT)
    timit_test = _frames([u for u in phone_test if u.k < size.timit_utterances], CONTEXT)
    write_timit11(out / "timit_11", _no_bounds(timit_train), _no_bounds(timit_test))
    report(0.96, "writing speaker (HW4)")
    names = [s.name for s in voices]
    n_train = size.utterances - size.speaker_test
    spk_train = [u for u in utts if u.k < n_train]
    spk_test = [u for u in utts if u.k >= n_train]
    write_hw4(out / "speaker", _utterance_set(spk_train, names), _utterance_set(spk_test, names))
    train_counts = class_counts(torch.cat([u.labels for u in phone_train]))
    info = {
        "version": VERSION,
        "seed": seed,
        "size": asdict(size),
        "seconds_audio": round(sum(u.seconds for u in utts), 2),
        "utterances": len(utts),
        "frames": int(sum(len(u.labels) for u in utts)),
        "speakers": [
            {**asdict(s), "name": s.name, "phoneme_split": "test" if i in held_out else "train"}
            for i, s in enumerate(voices)
        ],
        "phoneme_train_class_frames": train_counts,
        "timit_11_rows": {"train": len(timit_train), "test": len(timit_test)},
    }
    atomic_write_text(out / TRANSCRIPTS, "".join(f"{u.utt_id}\t{names[u.speaker]}\t{u.text}\n" for u in utts))
    write_json_atomic(out / MARKER, info)
    report(1.0, "built-in corpus ready")
    return info


def _no_bounds(frames: FrameSet) -> FrameSet:
    """timit_11 has no utterance boundaries."""
    return FrameSet(frames.feats, frames.labels, None, None, frames.class_names, frames.stacked)


def _complete(root: Path, size: CorpusSize, seed: int) -> bool:
    try:
        info = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return info.get("version") == VERSION and info.get("seed") == seed and info.get("size") == asdict(size)


def _remove_stale_builds(root: Path, max_age_s: float = 3600.0) -> None:
    """Temp folders of builds killed outright (an exception or Ctrl-C removes its own)."""
    for stale in root.parent.glob(f".{root.name}.tmp-*") if root.parent.is_dir() else ():
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > max_age_s:
                shutil.rmtree(stale, ignore_errors=True)


def ensure_corpus(root=None, size: str = "default", seed: int = 0, progress: Progress | None = None) -> Path:
    """The built-in corpus folder (timit_11/, libriphone/, speaker/), built on first use.

    root: where it lives (default: $HWML_CACHE or ~/.cache/hwml, then corpus/<size>-<seed>-v<N>).
    A finished build is reused; it is generated in a temp folder beside `root` and renamed
    into place, so an interrupted build leaves nothing that looks finished. An existing
    folder is replaced only if it is empty or an earlier built-in corpus.
    """
    if size not in SIZES:
        raise HwmlError(f"corpus size must be one of {', '.join(SIZES)}, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise HwmlError(f"corpus seed must be a non-negative integer, got {seed!r}")
    spec = SIZES[size]
    root = Path(root).expanduser() if root is not None else default_root(size, seed)
    if _complete(root, spec, seed):
        if progress:
            progress(1.0, "built-in corpus ready (cached)")
        return root
    if root.exists() and not root.is_dir():
        raise HwmlError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not (root / MARKER).exists():
        raise HwmlError(f"{root}: exists, is not empty and holds no built-in corpus; choose another folder")
    _remove_stale_builds(root)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{random.getrandbits(32):08x}"
        tmp.mkdir()
    except OSError as e:
        raise HwmlError(f"{root}: cannot create the corpus folder ({e.strerror or e})") from None
    try:
        build_corpus(tmp, spec, seed, progress)
        if _complete(root, spec, seed):  # another process finished first
            return root
        old = None
        if root.exists():
            old = root.parent / f".{root.name}.old-{os.getpid()}-{random.getrandbits(32):08x}"
            root.rename(old)
        tmp.rename(root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
