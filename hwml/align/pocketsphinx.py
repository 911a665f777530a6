"""PocketSphinx's own forced alignment: a second, independently trained acoustic model.

CMU PocketSphinx (PyPI `pocketsphinx`, pinned in requirements.txt) ships an English acoustic
model (en-us, continuous HMMs trained on thousands of hours of American English) and its
dictionary inside the wheel: nothing downloads. Its alignment of a known transcript is two
decodes (`set_align_text`, decode: the words' pronunciation variants and optional silences;
`set_alignment`, decode again: phone and state times), read back with `get_alignment`.

Its phones are ARPAbet; they fold to the 39 classes as cmudict's do (AO -> aa, ZH -> sh), and
its silence and noise fillers to `sil`. PocketSphinx labels a stop's closure as the stop
itself, where TIMIT's 39 classes call it `sil`: `hwml.align.joint` allows for that.
Frames: 10 ms hop from sample 0, as hwml's (a 25.6 ms window against hwml's 25 ms), so frame t
of one is frame t of the other. The module is imported only where PocketSphinx is used; a
missing package is a one-line HwmlError.
"""

from __future__ import annotations

import threading

import numpy as np

from hwml.align.lexicon import to_phone
from hwml.data.phones import PHONES_39
from hwml.errors import HwmlError

_SIL = PHONES_39.index("sil")
_local = threading.local()  # one decoder per thread: a Decoder is not thread-safe


def thread_decoder():
    """This thread's PocketSphinx decoder (en-us model, no language model), made on first use."""
    decoder = getattr(_local, "decoder", None)
    if decoder is None:
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise HwmlError(
                "the pocketsphinx aligner needs the pocketsphinx package: pip install pocketsphinx==5.1.1"
            ) from None
        decoder = _local.decoder = Decoder(loglevel="FATAL", lm=None)
    return decoder


def phone_39(name: str) -> int:
    """A PocketSphinx phone (ARPAbet upper case, SIL, +NOISE+ fillers) -> its 39-class index."""
    if name.upper() == "SIL" or name.startswith("+") or name.startswith("<"):
        return _SIL
    try:
        return PHONES_39.index(to_phone(name, "pocketsphinx"))
    except HwmlError:
        return _SIL


def _ensure_words(decoder, words: list[str], prons: list) -> None:
    """Add to PocketSphinx's dictionary each word it lacks, with hwml's first pronunciation
    (first alternative of each slot; the flap `dx` spelled T, as ARPAbet has no flap)."""
    for word, variants in zip(words, prons):
        if decoder.lookup_word(word.lower()) is not None:
            continue
        phones = [slot[0] for slot in variants[0] if slot and slot[0]]
        arpabet = " ".join("T" if p == "dx" else p.upper() for p in phones if p != "sil")
        if arpabet:
            decoder.add_word(word.lower(), arpabet, True)


def _two_decodes(decoder, raw: bytes, words: list[str], fallback: bool) -> tuple[list, list]:
    """(phone segments, word segments) of the words: a decode through their graph (word times),
    then one for phone times. Where the second fails (PocketSphinx 5.1.1 does on a few
    utterances: "Failed to stop utterance processing") it raises, or with `fallback` each
    word's frames are shared evenly among its dictionary phones."""
    decoder.set_align_text(" ".join(w.lower() for w in words))
    decoder.start_utt()
    decoder.process_raw(raw, full_utt=True)
    decoder.end_utt()
    found = decoder.seg()
    if found is None:
        raise RuntimeError("no path through the words")
    first = [(seg.word, int(seg.start_frame), int(seg.end_frame) + 1) for seg in found]
    try:
        decoder.set_alignment()
        decoder.start_utt()
        decoder.process_raw(raw, full_utt=True)
        decoder.end_utt()
        alignment = decoder.get_alignment()
    except RuntimeError:
        if not fallback:
            raise
        return _even_phones(decoder, first)
    phones, spans = [], []
    for word in alignment or ():
        if _is_word(word.name) and word.duration > 0:
            spans.append((int(word.start), int(word.start + word.duration), len(spans)))
        for phone in word:
            if phone.duration > 0:
                phones.append((int(phone.start), int(phone.start + phone.duration), phone_39(phone.name)))
    return phones, spans


def _is_word(name: str) -> bool:
    return not name.startswith(("<", "[", "+"))


def _even_phones(decoder, first: list) -> tuple[list, list]:
    """Phone segments from word times alone: a word's frames split evenly among its phones."""
    phones, spans = [], []
    for name, a, b in first:
        if b <= a:
            continue
        spelled = decoder.lookup_word(name) if _is_word(name) else None
        if not spelled:
            phones.append((a, b, _SIL))
            continue
        spans.append((a, b, len(spans)))
        names = spelled.split()
        cuts = np.linspace(a, b, len(names) + 1).round().astype(int)
        phones += [(int(x), int(y), phone_39(p)) for x, y, p in zip(cuts[:-1], cuts[1:], names) if y > x]
    return phones, spans


def segments(wave: np.ndarray, words: list[str], prons: list | None = None, source="utterance") -> tuple:
    """PocketSphinx's alignment of a 16 kHz wave (float in [-1, 1] or int16) to its dictionary
    words: (phone segments [(first frame, end frame, 39-class index)], word segments [(first
    frame, end frame, word index)]); HwmlError naming `source` when it finds none. `prons`
    (hwml's pronunciations) spell the words PocketSphinx's dictionary lacks."""
    decoder = thread_decoder()
    if prons is not None:
        _ensure_words(decoder, words, prons)
    x = np.asarray(wave)
    if x.dtype != np.int16:
        x = (np.clip(np.asarray(x, np.float64), -1.0, 1.0) * 32767).astype(np.int16)
    raw = x.tobytes()
    try:
        phones, spans = _two_decodes(decoder, raw, words, fallback=False)
    except RuntimeError:
        # a decoder sometimes keeps state from the utterance before and fails the next one:
        # a fresh one aligns it
        _local.decoder = None
        decoder = thread_decoder()
        if prons is not None:
            _ensure_words(decoder, words, prons)
        try:
            phones, spans = _two_decodes(decoder, raw, words, fallback=True)
        except (RuntimeError, ValueError, KeyError) as e:
            raise HwmlError(f"{source}: PocketSphinx could not align it ({e})") from None
        finally:
            _local.decoder = None
    if not phones:
        raise HwmlError(f"{source}: PocketSphinx found no alignment for its transcript")
    return phones, spans


def frame_labels(segs: list, n_frames: int) -> np.ndarray:
    """(n_frames,) 39-class index per frame of PocketSphinx's segments; frames past its last
    segment (its frame count differs by a frame or two) take the nearest segment's label."""
    labels = np.full(n_frames, -1, np.int64)
    for a, b, phone in segs:
        labels[max(0, a) : min(b, n_frames)] = phone
    known = np.flatnonzero(labels >= 0)
    if not len(known):
        return np.full(n_frames, _SIL, np.int64)
    nearest = known[np.clip(np.searchsorted(known, np.arange(n_frames)), 0, len(known) - 1)]
    return np.where(labels >= 0, labels, labels[nearest])


def align_wave(wave, words: list[str], n_frames: int, prons: list | None = None, source="utterance") -> np.ndarray:
    """PocketSphinx's alignment of one utterance as (n_frames,) 39-class frame labels."""
    return frame_labels(segments(wave, words, prons, source)[0], n_frames)
