"""The Live view's state: one microphone stream -> phones as they are spoken and who is speaking.

A `LiveSession` belongs to one browser stream (kept in its gr.State). Each chunk Gradio sends
((rate, samples)) is checked (`hwml.audio.stream.chunk_wave`: garbage is dropped with its reason
and the stream goes on), resampled exactly to 16 kHz, and fed to a `hwml.phoneme.stream.PhoneStream`
(the picked phoneme run), a log-mel `FeatureStream` (the spectrogram, and the speaker model's
input when its features are the same) and a `hwml.speaker.stream.SpeakerStream` (the picked
speaker run against the session's enrolled people, or, while nobody is enrolled, the speakers
the run was trained on). What the view
shows is the newest `VIEW_SECONDS`: every buffer is bounded, whatever the stream's length, and a
stream that ends (`close`) labels its last frames and lets go of everything.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import torch

from hwml.audio.params import LOGMEL40, FeatureParams
from hwml.audio.stream import FeatureStream, StreamResampler, chunk_wave
from hwml.errors import HwmlError
from hwml.i18n import t
from hwml.machine import single_thread
from hwml.phoneme.stream import LOOKAHEAD_FRAMES, PhoneStream
from hwml.speaker.stream import SpeakerStream, WhoNow, targets_of

VIEW_SECONDS = 8.0  # the scrolling picture's width in time
MAX_STREAM_SECONDS = 600.0  # audio one stream may send (the stream event's time_limit is shorter)


@dataclass
class LiveUpdate:
    """What one chunk changed: the view's newest seconds and the answer about the speaker."""

    times: torch.Tensor  # (T,) frame centres (s) of the view's spectrogram rows
    logmel: torch.Tensor  # (T, 40)
    segments: list  # [(start s, end s, phone)] of the labelled frames in view
    who: WhoNow
    new_frames: int = 0  # frames labelled by this chunk
    dropped: str = ""  # why this chunk was dropped ("" when it was used)
    seconds: float = 0.0  # audio received so far
    timings: dict = field(default_factory=dict)


class LiveSession:
    """One stream's state (module docstring). `phoneme` is (model, config) or None; `speaker` a
    hwml.speaker.identify.SpeakerModel or None; `enrollments` the session's people for that model."""

    def __init__(self, phoneme=None, speaker=None, enrollments=(), lookahead: int = LOOKAHEAD_FRAMES):
        if phoneme is None and speaker is None:
            raise HwmlError("live: pick a phoneme run or a speaker run")
        self.phones = PhoneStream(*phoneme, lookahead=lookahead) if phoneme is not None else None
        self.spectrum = FeatureStream(LOGMEL40)
        self.speaker = None
        if speaker is not None:
            self.speaker = SpeakerStream(speaker, targets_of(speaker, list(enrollments), known=not enrollments))
            features = speaker.config.get("features")
            params = FeatureParams.from_dict(features) if features else LOGMEL40
            self.share_spectrum = params.to_dict() == LOGMEL40.to_dict()
        self.params = LOGMEL40
        fps = LOGMEL40.sample_rate / LOGMEL40.hop_length
        self.view = int(VIEW_SECONDS * fps)
        self.logmel = deque(maxlen=self.view)  # rows of the newest frames
        self.labels = deque(maxlen=self.view)  # (frame index, phone) of the newest labelled frames
        self.n_logmel = 0
        self.resampler, self.rate = None, None
        self.seconds = 0.0
        self.who = WhoNow("listening") if speaker is not None else WhoNow("off")
        self.closed = False
        self.last_chunk = time.monotonic()

    def feed(self, chunk) -> LiveUpdate:
        """One chunk from the microphone; garbage is dropped (`dropped` says why), never fatal."""
        if self.closed:
            raise HwmlError("live: this stream has ended; start recording again")
        self.last_chunk = time.monotonic()
        try:
            rate, wave = chunk_wave(chunk)
            if self.rate is not None and rate != self.rate:
                raise HwmlError(f"chunk: the sample rate changed from {self.rate} to {rate} Hz mid-stream")
            if self.seconds + len(wave) / rate > MAX_STREAM_SECONDS:
                raise HwmlError(f"live: a stream may send at most {MAX_STREAM_SECONDS:g} s")
        except HwmlError as e:
            return self._update(0, dropped=str(e))
        if self.resampler is None:
            self.resampler, self.rate = StreamResampler(rate), rate
        self.seconds += len(wave) / rate
        with single_thread():
            return self._advance(self.resampler.push(wave), final=False)

    def close(self) -> LiveUpdate:
        """The stream ended: label the last frames; later chunks are refused."""
        if self.closed:
            return self._update(0)
        with single_thread():
            tail = self.resampler.finish() if self.resampler is not None else torch.zeros(0)
            update = self._advance(tail, final=True)
        self.closed = True
        return update

    def _advance(self, wave16: torch.Tensor, final: bool) -> LiveUpdate:
        timings, t0 = {}, time.perf_counter()
        spec = self.spectrum.finish() if final else self.spectrum.push(wave16)
        for row in spec.feats:
            self.logmel.append(row)
        self.n_logmel += len(spec.feats)
        new = 0
        if self.phones is not None:
            t1 = time.perf_counter()
            labelled = self.phones.finish() if final else self.phones.push(wave16)
            names = self.phones.names
            for i, k in enumerate(labelled.ids.tolist()):
                self.labels.append((labelled.start + i, names[k]))
            new = len(labelled.ids)
            timings["phones"] = time.perf_counter() - t1
        if self.speaker is not None and not final:
            t1 = time.perf_counter()
            self.who = self.speaker.push(wave16, spec if self.share_spectrum else None)
            timings["speaker"] = time.perf_counter() - t1
        timings["total"] = time.perf_counter() - t0
        return self._update(new, timings=timings)

    def _update(self, new: int, dropped: str = "", timings: dict | None = None) -> LiveUpdate:
        p = self.params
        first = self.n_logmel - len(self.logmel)
        hop = p.hop_length / p.sample_rate
        times = (torch.arange(first, self.n_logmel, dtype=torch.float64) * p.hop_length + p.n_fft / 2) / p.sample_rate
        logmel = torch.stack(list(self.logmel)) if self.logmel else torch.zeros(0, p.n_mels)
        segments = []
        for frame, phone in self.labels:
            if frame < first:
                continue
            centre = (frame * p.hop_length + p.n_fft / 2) / p.sample_rate
            if segments and segments[-1][2] == phone and abs(segments[-1][1] - (centre - hop / 2)) < 1e-9:
                segments[-1][1] = centre + hop / 2
            else:
                segments.append([centre - hop / 2, centre + hop / 2, phone])
        segments = [(round(a, 4), round(b, 4), ph) for a, b, ph in segments]
        return LiveUpdate(times, logmel, segments, self.who, new, dropped, self.seconds, timings or {})


def who_words(who: WhoNow, lang: str = "en") -> str:
    """The answer in a sentence for the view."""
    if who.state == "speaking":
        key = "live.who.enrolled" if who.kind == "enrolled" else "live.who.known"
        return t(key, lang, name=who.name, score=f"{who.score:.2f}")
    return t(f"live.who.{who.state}", lang)


def open_live(phoneme_run=None, speaker_run=None, roster=None, lookahead: int = LOOKAHEAD_FRAMES) -> LiveSession:
    """A LiveSession for run folders (the one model cache loads them) and a session's roster
    (hwml.serve.who_is_speaking.Roster; its people are embedded with the speaker run)."""
    from hwml.runs.cache import loaded_run
    from hwml.speaker.identify import open_model

    phoneme = loaded_run(phoneme_run) if phoneme_run else None
    speaker = open_model(speaker_run) if speaker_run else None
    enrollments = roster.enrollments(speaker) if speaker is not None and roster is not None and len(roster) else []
    return LiveSession(phoneme, speaker, enrollments, lookahead)
