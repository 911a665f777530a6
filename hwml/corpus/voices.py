"""The built-in corpus's speakers: eSpeak accents x voice variants x base pitch and rate.

A speaker is fixed (the same for every seed, so names are stable): an English accent, a voice
variant (formants, pitch contour, breathiness, the Klatt synthesiser, ...) and base settings.
Each utterance then varies around the base (`UtteranceStyle`): rate, pitch, pitch range, word
gaps, level, a mild random channel (a short FIR colouring) and background noise, so a speaker
is recognised from the voice, not from one fixed recording condition.

Accents are interleaved so that any prefix of `SPEAKERS` (the `small` corpus takes the first
24) spreads over all of them; American English gets most speakers, as in TIMIT, and is the
only source of the flap /dx/ (en-us, en-us-nyc).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# accent -> speakers in the default corpus (72 in all)
ACCENT_SPEAKERS = {
    "en-us": 18,
    "en-us-nyc": 9,
    "en": 9,
    "en-gb-x-rp": 9,
    "en-gb-scotland": 9,
    "en-029": 6,
    "en-gb-x-gbclan": 6,
    "en-gb-x-gbcwmd": 6,
}
# variants in espeakng-loader's data with a natural-sounding voice (whisper, robot, croak and
# the like are left out: a phone or speaker classifier should not learn from sound effects)
VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
    "klatt4",
    "Andy",
    "Annie",
    "aunty",
    "belinda",
    "david",
    "edward",
    "john",
    "linda",
    "michel",
    "paul",
    "robert",
    "steph",
    "travis",
    "victor",
    "iven",
    "ian",
    "quincy",
    "rob",
    "grandpa",
    "grandma",
    "Andrea",
)


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an eSpeak voice and its base settings."""

    accent: str
    variant: str
    pitch: int  # eSpeak pitch 0..100 (50 = the variant's own)
    pitch_range: int  # 0..100
    rate: int  # words per minute

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"

    @property
    def name(self) -> str:
        return f"{self.voice}-p{self.pitch}r{self.rate}"


@dataclass(frozen=True)
class UtteranceStyle:
    """One utterance's deviation from its speaker's base."""

    rate: int
    pitch: int
    pitch_range: int
    word_gap: int  # extra pause between words, 10 ms units
    gain_db: float
    snr_db: float
    channel: tuple[float, float]  # FIR taps after 1.0: y[t] = x[t] + a x[t-1] + b x[t-2]
    lead_s: float  # silence before and after the speech
    trail_s: float


def _interleave(counts: dict[str, int]) -> list[str]:
    """Accents in an order where each one appears at an even pace (largest remainder)."""
    total, order, done = sum(counts.values()), [], dict.fromkeys(counts, 0)
    for i in range(total):
        accent = max(counts, key=lambda a: (counts[a] * (i + 1) / total - done[a], counts[a]))
        done[accent] += 1
        order.append(accent)
    return order


def _make_speakers() -> tuple[Speaker, ...]:
    rng = random.Random("hwml-speakers-v1")
    speakers, used = [], set()
    for i, accent in enumerate(_interleave(ACCENT_SPEAKERS)):
        k = (i * 5) % len(VARIANTS)
        while (accent, VARIANTS[k]) in used:  # one voice variant per accent at most once
            k = (k + 1) % len(VARIANTS)
        used.add((accent, VARIANTS[k]))
        speakers.append(
            Speaker(
                accent,
                VARIANTS[k],
                pitch=rng.randrange(30, 71),
                pitch_range=rng.randrange(30, 81),
                rate=rng.randrange(145, 196, 5),
            )
        )
    return tuple(speakers)


SPEAKERS = _make_speakers()


def speakers(n: int) -> tuple[Speaker, ...]:
    """The first n speakers (n <= 72): any prefix spreads over all accents and many variants."""
    if not 0 < n <= len(SPEAKERS):
        raise ValueError(f"between 1 and {len(SPEAKERS)} speakers")
    return SPEAKERS[:n]


def utterance_style(speaker: Speaker, rng: random.Random) -> UtteranceStyle:
    """Per-utterance variation around the speaker's base, drawn with `rng`."""
    return UtteranceStyle(
        rate=int(speaker.rate * rng.uniform(0.88, 1.12)),
        pitch=min(100, max(0, speaker.pitch + rng.randint(-8, 8))),
        pitch_range=min(100, max(0, speaker.pitch_range + rng.randint(-15, 15))),
        word_gap=rng.choice((0, 0, 0, 1, 2)),
        gain_db=rng.uniform(-8.0, 2.0),
        snr_db=rng.uniform(22.0, 45.0),
        channel=(rng.uniform(-0.45, 0.45), rng.uniform(-0.2, 0.2)),
        lead_s=rng.uniform(0.08, 0.25),
        trail_s=rng.uniform(0.08, 0.25),
    )
