"""Phone labels beside audio -> one label for every frame of it: TIMIT `.phn` files and Praat
TextGrids (the Montreal Forced Aligner's output: a `phones` tier of ARPAbet with stress digits).

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

TextGrid labels (`read_textgrid_phones`): ARPAbet with or without stress digits, or TIMIT
names, any case, folded to the 39 (`hwml.align.lexicon.to_phone`); MFA's `sil`, `sp` (short
pause), `spn` (spoken noise: a word it could not pronounce) and empty intervals are `sil`, the
39-class set's one non-phone class (folding `spn` to a phone is impossible, and leaving its
frames out would shift every later frame against the audio); `q` as in `.phn`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hwml.audio.frames import label_frames
from hwml.audio.params import MFCC39
from hwml.data.phones import PHONES_39, fold
from hwml.errors import HwmlError

PHONE_INDEX = {p: i for i, p in enumerate(PHONES_39)}
PHN_SLACK_SECONDS = 0.5  # labels may end this far past the audio, or leave this much of it unlabelled
SILENCE = PHONE_INDEX["sil"]
SILENCE_LABELS = frozenset({"", "sil", "sp", "spn", "<eps>"})  # MFA's (and Kaldi's) non-phone labels


def read_labels(path: Path, sample_rate: int) -> tuple[list[int], list[int], list[int]]:
    """(starts, ends, 39-class indices) of a `.phn` or `.TextGrid` file, in samples at sample_rate
    (a .phn's own numbers: TIMIT counts at the audio's rate)."""
    if path.suffix.lower() == ".textgrid":
        return read_textgrid_phones(path, sample_rate)
    return read_phn(path)


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


def read_textgrid_phones(path: Path, sample_rate: int) -> tuple[list[int], list[int], list[int]]:
    """A TextGrid's phone tier (`hwml.data.textgrid.read_phone_tier`) as (starts, ends, 39-class
    indices) in samples at sample_rate; labels folded as the module docstring says."""
    from hwml.align.lexicon import to_phone
    from hwml.data.textgrid import read_phone_tier

    intervals, _ = read_phone_tier(path)
    starts, ends, labels = [], [], []
    for n, (a, b, label) in enumerate(intervals, 1):
        name = label.strip().lower()
        if name in SILENCE_LABELS:
            index = SILENCE
        elif name == "q":
            index = -1
        else:
            try:
                index = PHONE_INDEX[to_phone(name, path)]
            except HwmlError:
                raise HwmlError(
                    f"{path}: interval {n} ({a:.3f}-{b:.3f} s): unknown phone {label.strip()[:20]!r} "
                    "(use ARPAbet or TIMIT phone names)"
                ) from None
        if not 0 <= a <= b:
            raise HwmlError(f"{path}: interval {n}: bad times {a}..{b}")
        starts.append(round(a * sample_rate))
        ends.append(round(b * sample_rate))
        labels.append(index)
    if all(label < 0 for label in labels):
        raise HwmlError(f"{path}: no phone interval other than the glottal stop q")
    return give_q_to_neighbours(starts, ends, labels)


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
