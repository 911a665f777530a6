"""Audio -> features: a sentence spoken by the built-in synthesiser and every view of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


EXAMPLE_SENTENCE = "She sells bright yellow shells by the quiet seashore."


@dataclass
class ExampleUtterance:
    """A synthesised utterance at 16 kHz with eSpeak's phone timings (seconds)."""

    text: str
    wave: torch.Tensor  # (samples,) float32 at 16 kHz
    sample_rate: int
    phones: list[tuple[str, float, float]]  # (eSpeak phone, start s, end s)

    @property
    def seconds(self) -> float:
        return len(self.wave) / self.sample_rate


def example_utterance(text: str = EXAMPLE_SENTENCE, voice: str = "en-us") -> ExampleUtterance:
    """Speak `text` with the built-in synthesiser (eSpeak NG, no download) and resample to 16 kHz."""
    import torch

    from hwml.audio.decode import wave_to_16k
    from hwml.audio.params import SAMPLE_RATE
    from hwml.corpus.espeak import synthesize

    syn = synthesize(text, voice)
    wave = wave_to_16k(torch.from_numpy(np.asarray(syn.wave, dtype=np.float32)), syn.sample_rate)
    n = len(syn.wave)
    bounds = [s for _, s in syn.phones] + [n]
    phones = [
        (name, start / syn.sample_rate, bounds[i + 1] / syn.sample_rate)
        for i, (name, start) in enumerate(syn.phones)
        if bounds[i + 1] > start
    ]
    return ExampleUtterance(text, wave, SAMPLE_RATE, phones)


@dataclass
class FeatureViews:
    """Every stage between a wave and the course's features, ready to plot."""

    times: np.ndarray  # (T,) frame centres in seconds
    power_db: np.ndarray  # (n_fft/2+1, T) linear-frequency power spectrogram in dB
    logmel: np.ndarray  # (T, 40) HW4 features
    mfcc: np.ndarray  # (T, 39) HW2 features (13 MFCC + deltas + delta-deltas, normalised)
    freqs_hz: np.ndarray  # (n_fft/2+1,) frequency of each spectrogram row


def feature_views(wave: torch.Tensor) -> FeatureViews:
    """The spectrogram with the very framing hwml.audio uses, then log-mel and MFCC-39 from hwml.audio."""
    import torch

    from hwml.audio.features import logmel40, mfcc39
    from hwml.audio.frames import frame_times
    from hwml.audio.params import LOGMEL40, MFCC39

    p = MFCC39
    wave = torch.as_tensor(wave, dtype=torch.float32)
    spec = torch.stft(
        wave,
        n_fft=p.n_fft,
        hop_length=p.hop_length,
        win_length=p.win_length,
        window=torch.hann_window(p.win_length),
        center=False,
        return_complex=True,
    )
    power_db = 10 * torch.log10(spec.abs().pow(2) + 1e-10)
    logmel, mfcc = logmel40(wave, LOGMEL40), mfcc39(wave, p)
    T = min(power_db.shape[1], len(logmel), len(mfcc))
    return FeatureViews(
        times=frame_times(T, p).numpy(),
        power_db=power_db[:, :T].numpy(),
        logmel=logmel[:T].numpy(),
        mfcc=mfcc[:T].numpy(),
        freqs_hz=np.linspace(0, p.sample_rate / 2, power_db.shape[0]),
    )


def clip_feature_views(path) -> tuple[torch.Tensor, FeatureViews]:
    """(16 kHz wave, its feature views) of a real recording (the shipped clips of assets/clips,
    or an upload): the same steps as for the synthesised sentence, on a real voice."""
    from hwml.audio.decode import load_audio

    wave = load_audio(path)
    return wave, feature_views(wave)
