"""eSpeak NG through its C API (ctypes), with phoneme events for exact phone timings.

espeakng-loader ships libespeak-ng and its data, so nothing is downloaded. The library is one
global state per loaded copy: an `Engine` initialises it lazily (again after a fork) and a lock
serialises every call; the corpus build loads a private copy (see `Engine`). Synthesis runs in
AUDIO_OUTPUT_SYNCHRONOUS mode: `espeak_Synth` returns only when the callback has received all
audio, and each phoneme event carries its exact sample index (`espeak_EVENT.sample`).
"""

from __future__ import annotations

import _ctypes
import ctypes
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwml.errors import HwmlError

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _PITCH, _RANGE, _WORDGAP = 1, 3, 4, 7
_EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT (speak_lib.h); `sample` is the event's sample index in the output."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


# int SynthCallback(short *wav, int numsamples, espeak_EVENT *events); return 0 = continue
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Synthesis:
    """One synthesised utterance.

    wave: float32 samples in [-1, 1] at `sample_rate` (22050 Hz for eSpeak NG).
    phones: (mnemonic, first sample) per phoneme event in order, stress marks stripped;
        each phone lasts until the next one starts, the last one until the end of `wave`.
    """

    wave: np.ndarray
    sample_rate: int
    phones: list[tuple[str, int]]


def data_path() -> Path:
    """The espeak-ng-data folder bundled with espeakng-loader."""
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


class Engine:
    """One loaded libespeak-ng, initialised on first use (again after a fork), calls serialised.

    eSpeak keeps synthesis state (the pitch flutter phase, formant and noise generators) in
    static variables that neither espeak_Initialize nor espeak_Terminate reset, so an
    utterance's samples depend on everything the library spoke before. `private=True` loads a
    fresh copy of the library (from a temp copy of the .so: the dynamic loader shares a file
    it already has) whose state starts clean: the same calls in the same order then give the
    same samples, whatever else the process synthesises (the noise generator, which
    espeak_Initialize seeds from the clock, is reseeded with 0). Close a private engine.
    """

    def __init__(self, private: bool = False) -> None:
        self.private = private
        self.lock = threading.Lock()
        self.pid: int | None = None
        self.lib = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _load(self) -> ctypes.CDLL:
        import espeakng_loader

        path = espeakng_loader.get_library_path()
        if not self.private:
            return ctypes.CDLL(path)
        with tempfile.TemporaryDirectory(prefix="hwml-espeak-") as tmp:  # mapped: safe to delete
            return ctypes.CDLL(shutil.copy(path, Path(tmp) / "libespeak-ng-private.so"))

    def _init(self) -> None:
        lib = self._load()
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        # 1000 ms buffers: fewer Python callbacks (the event list grows with the buffer)
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 1000, str(data_path()).encode(), _INITIALIZE_PHONEME_EVENTS
        )
        if rate <= 0:
            raise HwmlError(f"eSpeak NG failed to initialise with data at {data_path()}")
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed(0)  # Initialize seeds its noise generator from the clock
        self.lib, self.sample_rate = lib, rate
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[str, int]] = []
        self.callback = _SynthCallback(self._on_audio)  # kept referenced: C holds the pointer
        lib.espeak_SetSynthCallback(self.callback)
        self.voice: str | None = None
        self.pid = os.getpid()

    def close(self) -> None:
        """Terminate the library (joins its thread); a private copy is unloaded too."""
        with self.lock:
            if self.lib is not None and self.pid == os.getpid():
                self.lib.espeak_Terminate()
                if self.private:
                    _ctypes.dlclose(self.lib._handle)
            self.lib, self.pid = None, None

    def _on_audio(self, wav, n, events) -> int:
        if wav and n > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != 0:  # the list ends with espeakEVENT_LIST_TERMINATED
            event = events[i]
            if event.type == _EVENT_PHONEME:
                name = bytes(event.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                self.events.append((name, event.sample))
            i += 1
        return 0  # 0 = continue synthesis

    def _ready(self, voice: str) -> None:
        if self.pid != os.getpid():
            self._init()
        if voice != self.voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise HwmlError(f"eSpeak NG has no voice {voice!r}")
            self.voice = voice

    def synthesize(
        self,
        text: str,
        voice: str = "en-us",
        *,
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        word_gap: int = 0,
    ) -> Synthesis:
        """Speak `text` with an eSpeak voice name ("en-us", "en-gb-scotland+m3", ...).

        rate: words per minute (80..450); pitch and pitch_range: 0..100 (50 = the voice's
        own); word_gap: extra pause between words in 10 ms units.
        """
        with self.lock:
            self._ready(voice)
            for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_WORDGAP, word_gap)):
                self.lib.espeak_SetParameter(param, int(value), 0)
            self.chunks, self.events = [], []
            data = text.encode() + b"\0"
            err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if err != _EE_OK:
                raise HwmlError(f"eSpeak NG could not synthesise {text!r} (error {err})")
            samples = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
            events, self.chunks, self.events = self.events, [], []
        phones = [(name.lstrip("',%="), sample) for name, sample in events]
        return Synthesis(samples.astype(np.float32) / 32768.0, self.sample_rate, phones)

    def text_to_phonemes(self, text: str, voice: str = "en-us", separator: str = "") -> str:
        """eSpeak's own phoneme transcription of `text` (mnemonics, stress marks included),
        words separated by spaces and, given a `separator` character, phonemes by it."""
        mode = ord(separator) << 8 if separator else 0  # bits 8-23: a separator between phonemes
        with self.lock:
            self._ready(voice)
            data = text.encode()
            pointer = ctypes.c_char_p(data)  # advanced clause by clause, NULL at the end
            parts = []
            while pointer.value:
                parts.append(self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, mode))
            return " ".join(part.decode() for part in parts if part)


_SHARED = Engine()


def synthesize(text: str, voice: str = "en-us", **settings) -> Synthesis:
    """`Engine.synthesize` on the process's shared engine."""
    return _SHARED.synthesize(text, voice, **settings)


def text_to_phonemes(text: str, voice: str = "en-us", separator: str = "") -> str:
    """`Engine.text_to_phonemes` on the process's shared engine."""
    return _SHARED.text_to_phonemes(text, voice, separator)


def voice_variants() -> list[str]:
    """Names of the voice variants in the bundled data (m1, f3, klatt2, ...)."""
    return sorted(p.name for p in (data_path() / "voices" / "!v").iterdir() if p.is_file())


def english_languages() -> list[str]:
    """English language voices in the bundled data, lower-cased (en, en-us, en-029, ...)."""
    return sorted(p.name.lower() for p in (data_path() / "lang" / "gmw").iterdir() if p.name.lower().startswith("en"))
