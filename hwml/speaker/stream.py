"""Who is speaking now: a speaker run on audio that arrives in chunks.

Every `every` seconds of new audio, the voiced frames among the last `window` seconds are embedded
(`hwml.speaker.inference.embed`, the same embedding as a whole clip) and compared (cosine) with
the targets: the session's enrolled people and, for an AM-softmax run, the speakers it was trained
on (their class weight vectors live in the embedding space: `hwml.speaker.voice_map`). The scores
are averaged over the updates of the last `smooth` seconds, so the name does not flicker; when the
newest `quiet` seconds are mostly below the voice level (`VOICE_DB`), the answer is silence.

State: the log-mel rows of the last `window` seconds, the levels, and a few score vectors.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from hwml.audio.params import LOGMEL40, FeatureParams
from hwml.audio.stream import FeatureStream, FrameRows
from hwml.speaker.identify import Enrollment, SpeakerModel
from hwml.speaker.inference import embed

# Frames louder than this are voice. Measured (README: Live): against the shipped phoneme model's
# silence frames on 15 real clips and 60 FSDD recordings, -30 dB full scale agreed best (0.87).
VOICE_DB = -30.0
MIN_VOICED_FRAMES = 40  # 0.4 s of voice before a first answer


@dataclass
class Target:
    """Someone a stream can name: an enrolled person or a speaker the model was trained on."""

    name: str
    embedding: torch.Tensor  # (D,) unit length
    kind: str  # "enrolled" | "known"


def targets_of(sm: SpeakerModel, enrollments: list[Enrollment] = (), known: bool = True) -> list[Target]:
    """The enrolled people (made with this model) and, when the model has an AM-softmax head, its
    training speakers by name."""
    out = [Target(e.name, F.normalize(e.embedding.float(), dim=0), "enrolled") for e in enrollments]
    head = getattr(sm.model, "head", None)
    weight = getattr(head, "weight", None)
    amsoftmax = sm.config.get("model", {}).get("kwargs", {}).get("head") == "amsoftmax"
    if known and weight is not None and (amsoftmax or type(head).__name__ == "AMSoftmaxHead"):
        names = sm.config.get("class_names") or [f"class {i}" for i in range(len(weight))]
        rows = F.normalize(weight.detach().float(), dim=-1)
        out += [Target(str(n), r, "known") for n, r in zip(names, rows)]
    return out


@dataclass
class WhoNow:
    """The current answer: silence, listening (not enough voice yet) or a name with its score."""

    state: str  # "silence" | "listening" | "speaking"
    name: str = ""
    score: float = 0.0
    kind: str = ""  # the named target's kind
    ranked: tuple = ()  # ((name, smoothed cosine), ...) best first, at most 3


class SpeakerStream:
    """16 kHz chunks in (`push`), "who is speaking now" out (module docstring)."""

    def __init__(
        self,
        sm: SpeakerModel,
        targets: list[Target],
        window: float = 1.5,
        smooth: float = 1.5,
        every: float = 0.25,
        quiet: float = 0.5,
    ):
        features = sm.config.get("features")
        self.params = FeatureParams.from_dict(features) if features else LOGMEL40
        self.sm = sm
        self.targets = list(targets)
        self.matrix = torch.stack([t.embedding for t in targets]) if targets else None
        fps = self.params.sample_rate / self.params.hop_length
        self.window, self.every, self.quiet = int(window * fps), max(int(every * fps), 1), max(int(quiet * fps), 1)
        self.features = FeatureStream(replace(self.params, cmvn=False))  # normalised per window below
        self.rows = deque(maxlen=self.window)  # (feature row, level) of the newest frames
        self.scores = deque(maxlen=max(int(smooth / every), 1))
        self.since = 0  # frames since the last update
        self.answer = WhoNow("listening")

    def push(self, wave16: torch.Tensor, rows: FrameRows | None = None) -> WhoNow:
        """Take new samples (or the log-mel rows another FeatureStream with these parameters made)."""
        new = rows if rows is not None else self.features.push(wave16)
        for x, level in zip(new.feats, new.energy_db.tolist()):
            self.rows.append((x, level))
        self.since += len(new.feats)
        if self.since >= self.every:
            self.since = 0
            self.answer = self._update()
        return self.answer

    def _update(self) -> WhoNow:
        levels = [lv for _, lv in self.rows]
        recent = levels[-self.quiet :]
        if not recent or sum(lv > VOICE_DB for lv in recent) < 0.3 * len(recent):
            self.scores.clear()
            return WhoNow("silence")
        voiced = [x for x, lv in self.rows if lv > VOICE_DB]
        if len(voiced) < MIN_VOICED_FRAMES or self.matrix is None:
            return WhoNow("listening")
        feats = torch.stack(voiced)
        if self.params.cmvn:  # a run trained on normalised log-mels: normalise the window as a clip
            feats = (feats - feats.mean(0)) / feats.std(0, correction=0).clamp_min(1e-5)
        with torch.no_grad():
            e = embed(self.sm.model, [feats], self.sm.config)[0]
        self.scores.append(self.matrix @ e)
        mean = torch.stack(list(self.scores)).mean(0)
        top = torch.topk(mean, min(3, len(mean)))
        ranked = tuple((self.targets[i].name, round(float(s), 4)) for s, i in zip(top.values, top.indices.tolist()))
        best = self.targets[int(top.indices[0])]
        return WhoNow("speaking", best.name, float(top.values[0]), best.kind, ranked)
