"""A phoneme run on audio that arrives in chunks: each frame's phone as soon as it can be known.

Frame models (MLP, linear, Gaussian over `concat_nframes` stacked frames) see h = n // 2 frames of
the future: a frame is labelled once frame t + h is final, from exactly the window the offline
path stacks (`hwml.audio.frames.context_indices`, edges repeated), so the labels equal offline
prediction on the same feature rows. The bidirectional RNN (`boss`) reads the whole utterance
backwards as well as forwards; streamed, frame t is labelled once `lookahead` frames after it have
arrived, by running the model over a window of `past` frames before the first unlabelled frame up
to the newest frame (the window starts on a multiple of the model's time subsampling, so its
pooling grid is the offline one). How far this is from whole-utterance output, per look-ahead,
is measured in bench/bench_live.py (README: Live).

Features come from `hwml.audio.stream.FeatureStream` with the run's own parameters; state is
bounded by the window (`past` + `lookahead` + the newest chunk's frames).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from hwml.audio.params import MFCC_DIM, FeatureParams
from hwml.audio.stream import FeatureStream, FrameRows

LOOKAHEAD_FRAMES = 30  # the BiRNN's default look-ahead: 0.3 s (bench/bench_live.py measures others)
PAST_FRAMES = 300  # frames of history the BiRNN re-reads each update (3 s)
CMVN_FRAMES = 1000  # normalisation statistics: over the newest 10 s of frames (README: Live measured 3 s)
CMVN_MIN_FRAMES = 50  # a stream's first labels wait for 0.5 s of frames (or its end)


@dataclass
class PhoneRows:
    """Frames [start, start + len(ids)) labelled: class index and its probability, with levels."""

    start: int
    ids: torch.Tensor  # (k,) int64
    probs: torch.Tensor  # (k,) float32
    energy_db: torch.Tensor  # (k,) the frames' levels (hwml.audio.stream)


class PhoneStream:
    """Chunks of 16 kHz samples in (`push`), newly labelled frames out; `finish` labels the rest."""

    def __init__(self, model, config: dict, lookahead: int = LOOKAHEAD_FRAMES, past: int = PAST_FRAMES):
        self.model = model.eval()
        self.config = config
        self.names = list(config["class_names"])
        self.params = FeatureParams.from_dict(config["features"])
        self.cmvn = self.params.cmvn  # done here over a window (module docstring), not by the FeatureStream
        self.features = FeatureStream(replace(self.params, cmvn=False))
        self.sequence = config["model"]["name"] == "birnn"
        self.step = int(config["model"].get("kwargs", {}).get("subsample", 1)) if self.sequence else 1
        self.context = 0 if self.sequence else int(config["concat_nframes"]) // 2
        self.lookahead = int(lookahead) if self.sequence else self.context
        self.past = max(int(past), 0)
        self.rows = torch.zeros(0, config.get("frame_dim", MFCC_DIM))  # feature rows from `row_start` on
        self.level = torch.zeros(0)
        self.row_start = 0
        self.labelled = 0  # frames labelled so far

    @property
    def n_rows(self) -> int:
        return self.row_start + len(self.rows)

    def push(self, wave16: torch.Tensor) -> PhoneRows:
        return self._label(self.features.push(wave16), final=False)

    def finish(self) -> PhoneRows:
        return self._label(self.features.finish(), final=True)

    def _label(self, new: FrameRows, final: bool) -> PhoneRows:
        self.rows = torch.cat([self.rows, new.feats])
        self.level = torch.cat([self.level, new.energy_db])
        stop = self.n_rows if final else max(self.n_rows - self.lookahead, self.labelled)
        if self.cmvn and not final and self.n_rows < CMVN_MIN_FRAMES:
            stop = self.labelled
        s = self.labelled
        if stop <= s:
            return PhoneRows(s, torch.zeros(0, dtype=torch.long), torch.zeros(0), torch.zeros(0))
        with torch.no_grad():
            logits = self._sequence_logits(s, stop) if self.sequence else self._frame_logits(s, stop)
        probs, ids = torch.softmax(logits.float(), dim=1).max(1)
        level = self.level[s - self.row_start : stop - self.row_start]
        self.labelled = stop
        keep_from = max(stop - self.past, 0) // self.step * self.step if self.sequence else stop - self.context
        keep_from = min(keep_from, self.n_rows - CMVN_FRAMES) if self.cmvn else keep_from  # rows still read
        drop = max(min(keep_from, self.n_rows) - self.row_start, 0)
        if drop:
            self.rows, self.level, self.row_start = self.rows[drop:], self.level[drop:], self.row_start + drop
        return PhoneRows(s, ids, probs, level)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Per-utterance CMVN as offline, with the newest CMVN_FRAMES rows standing in for the utterance."""
        if not self.cmvn:
            return x
        recent = self.rows[-CMVN_FRAMES:]
        return (x - recent.mean(0)) / recent.std(0, correction=0).clamp_min(1e-5)

    def _frame_logits(self, s: int, stop: int) -> torch.Tensor:
        h = self.context
        idx = torch.arange(s, stop)[:, None] + torch.arange(-h, h + 1)[None, :]
        idx = idx.clamp(0, self.n_rows - 1) - self.row_start  # edge frames repeat, as offline
        return self.model(self._normalise(self.rows[idx.reshape(-1)]).reshape(stop - s, -1))

    def _sequence_logits(self, s: int, stop: int) -> torch.Tensor:
        begin = max(s - self.past, 0) // self.step * self.step
        begin = max(begin, self.row_start)
        x = self._normalise(self.rows[begin - self.row_start :])
        return self.model(x[None])[0, s - begin : stop - begin]
