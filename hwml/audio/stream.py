"""Audio that arrives in chunks (a microphone streaming into the Live view) -> the same features
the offline path computes, frame by frame, with bounded state.

- `chunk_wave`: one chunk as Gradio sends it ((rate, int16/float samples, mono or channels)) ->
  a float32 mono array, or a one-line HwmlError for garbage (wrong type or shape, NaN, too long).
- `StreamResampler`: any rate -> 16 kHz, exactly what `torchaudio.transforms.Resample` gives on the
  whole recording (the same kernel, applied block by block with `width` samples of overlap).
- `FeatureStream`: 16 kHz samples -> the final rows of `mfcc39` / `logmel40` as soon as they are
  final. Framing is local (no centre padding), deltas need `delta_win // 2` frames of the future
  twice (4 frames, 40 ms, for MFCC-39) and the edges repeat frames exactly as offline. What cannot
  stream exactly is per-utterance CMVN (it needs the whole utterance): a stream normalises each
  frame by the running mean and deviation of the frames so far (online CMVN); with `cmvn` off the
  streamed rows equal the offline rows.
- Each frame's level in dB (`energy_db`), for a voice activity rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hwml.audio.decode import MIN_RATE, pcm_to_float
from hwml.audio.features import deltas, log_mel_frames, mfcc_frames
from hwml.audio.frames import num_frames
from hwml.audio.params import SAMPLE_RATE, FeatureParams
from hwml.errors import HwmlError

MAX_CHUNK_SECONDS = 10.0  # one chunk longer than this is refused (a stream sends ~0.1-1 s)
MAX_STREAM_RATE = 192000  # a microphone's rate; more is garbage for a live stream
LEVEL_FLOOR = 1e-10  # added to the mean square before the log: digital silence is -100 dB


def chunk_wave(chunk, name: str = "chunk") -> tuple[int, np.ndarray]:
    """(rate, float32 mono samples in [-1, 1]) of one streamed chunk.

    Accepts (rate, samples) with int or float samples, (samples,) or (samples, channels) (or
    (channels, samples) with at most 8 channels), the conventions of `hwml.audio.decode.wave_to_16k`.
    Raises HwmlError naming the problem for anything else; an empty chunk gives 0 samples.
    """
    if not (isinstance(chunk, (tuple, list)) and len(chunk) == 2):
        raise HwmlError(f"{name}: expected (sample rate, samples), got {type(chunk).__name__}")
    rate, samples = chunk
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)):
        raise HwmlError(f"{name}: the sample rate must be an integer, got {rate!r}"[:120])
    rate = int(rate)
    if not MIN_RATE <= rate <= MAX_STREAM_RATE:
        raise HwmlError(f"{name}: sample rate {rate} Hz is outside {MIN_RATE}-{MAX_STREAM_RATE} Hz")
    try:
        x = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
    except (TypeError, ValueError):
        raise HwmlError(f"{name}: the samples are not an array") from None
    if x.dtype.kind not in "iuf" or x.ndim not in (1, 2):
        raise HwmlError(f"{name}: expected a 1-D or 2-D numeric array of samples, got {x.dtype} {x.shape}")
    if x.ndim == 2 and x.shape[0] < x.shape[1] and x.shape[0] <= 8:
        x = x.T
    if len(x) > MAX_CHUNK_SECONDS * rate:
        raise HwmlError(f"{name}: {len(x) / rate:.1f} s in one chunk is more than {MAX_CHUNK_SECONDS:g} s")
    x = pcm_to_float(x)
    with np.errstate(over="ignore", invalid="ignore"):
        wave = (x.mean(axis=1) if x.ndim == 2 else x).astype(np.float32)
    if not np.isfinite(wave).all():
        raise HwmlError(f"{name}: contains NaN or infinite samples")
    if wave.size and float(np.abs(wave).max()) > 64.0:
        raise HwmlError(f"{name}: float samples far outside [-1, 1] (peak {float(np.abs(wave).max()):.3g})")
    return rate, wave


class StreamResampler:
    """Chunks at `rate` -> 16 kHz, sample for sample what resampling the whole recording gives.

    torchaudio's sinc resampler computes output block k (new // gcd samples) from input samples
    [k a - width, k a + a + width) (a = orig // gcd): block k is final once those have arrived.
    The state is the input not yet fully used: at most one block and 2 width samples, plus a chunk.
    """

    def __init__(self, rate: int):
        import torchaudio

        if rate != SAMPLE_RATE and SAMPLE_RATE // math.gcd(rate, SAMPLE_RATE) > 640:
            rate = round(rate / 25) * 25  # as hwml.audio.decode does for odd rates (< 0.3 % off)
        self.rate = rate
        self.identity = rate == SAMPLE_RATE
        if not self.identity:
            r = torchaudio.transforms.Resample(rate, SAMPLE_RATE)
            g = math.gcd(rate, SAMPLE_RATE)
            self.a, self.b, self.width, self.kernel = rate // g, SAMPLE_RATE // g, r.width, r.kernel
        self.pending = torch.zeros(0)  # input from absolute sample `start` on
        self.start = 0
        self.n_in = 0  # input samples received
        self.block = 0  # next output block

    def _blocks(self, stop: int, padded: torch.Tensor) -> torch.Tensor:
        out = torch.nn.functional.conv1d(padded[None, None], self.kernel, stride=self.a)
        return out.transpose(1, 2).reshape(-1)[: (stop - self.block) * self.b]

    def push(self, wave: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The 16 kHz samples that became final with this chunk."""
        x = torch.as_tensor(np.asarray(wave, dtype=np.float32))
        self.n_in += len(x)
        if self.identity:
            return x
        self.pending = torch.cat([self.pending, x])
        stop = max((self.n_in - self.width) // self.a, 0)  # block k needs input up to (k + 1) a + width
        if stop <= self.block:
            return torch.zeros(0)
        return self._emit(stop, self.pending)

    def _emit(self, stop: int, source: torch.Tensor) -> torch.Tensor:
        lo = self.block * self.a - self.width  # absolute input index of the segment's first sample
        hi = stop * self.a + self.width  # exclusive
        left = max(-lo, 0)  # before the first sample: the zeros the whole-recording resampler pads with
        seg = source[max(lo, 0) - self.start : hi - self.start]
        seg = torch.nn.functional.pad(seg, (left, hi - lo - left - len(seg)))  # and after the last (finish)
        out = self._blocks(stop, seg)
        self.block = stop
        keep_from = self.block * self.a - self.width
        if keep_from > self.start:
            self.pending = self.pending[keep_from - self.start :]
            self.start = keep_from
        return out

    def finish(self) -> torch.Tensor:
        """The rest, with the zeros past the end the whole-recording resampler pads with."""
        if self.identity:
            return torch.zeros(0)
        target = math.ceil(self.b * self.n_in / self.a)
        stop = math.ceil(target / self.b)
        if stop <= self.block:
            return torch.zeros(0)
        done = self.block * self.b
        return self._emit(stop, self.pending)[: target - done]


@dataclass
class FrameRows:
    """Rows that became final: frames [start, start + len(feats)) with their levels."""

    start: int
    feats: torch.Tensor  # (k, params.dim)
    energy_db: torch.Tensor  # (k,) mean square level of each frame's samples, dB re full scale


class FeatureStream:
    """16 kHz samples in, final feature rows out (module docstring). State: at most one frame of
    samples, `2 * (delta_win // 2)` rows of cepstra and the running sums of online CMVN."""

    def __init__(self, params: FeatureParams):
        self.params = params
        self.half = params.delta_win // 2 if params.kind == "mfcc39" else 0
        self.tail = torch.zeros(0)  # samples from frame `n_raw`'s first sample on
        self.raw = torch.zeros(0, params.n_mfcc if params.kind == "mfcc39" else params.n_mels)
        self.level = torch.zeros(0)
        self.raw_start = 0  # absolute frame index of raw[0]
        self.n_raw = 0  # frames framed so far
        self.emitted = 0  # rows returned so far
        self.count, self.total, self.squares = 0, torch.zeros(params.dim, dtype=torch.float64), None
        self.finished = False

    def push(self, wave16: torch.Tensor) -> FrameRows:
        if self.finished:
            raise HwmlError("stream: already finished")
        p = self.params
        self.tail = torch.cat([self.tail, torch.as_tensor(wave16, dtype=torch.float32)])
        k = num_frames(len(self.tail), p)
        if k:
            seg = self.tail[: (k - 1) * p.hop_length + p.n_fft]
            rows = mfcc_frames(seg, p) if p.kind == "mfcc39" else log_mel_frames(seg, p)
            frames = seg.unfold(0, p.n_fft, p.hop_length)
            level = 10 * torch.log10(frames.double().pow(2).mean(1) + LEVEL_FLOOR).float()
            self.raw = torch.cat([self.raw, rows])
            self.level = torch.cat([self.level, level])
            self.n_raw += k
            self.tail = self.tail[k * p.hop_length :]
        return self._rows(self.n_raw - 2 * self.half)

    def finish(self) -> FrameRows:
        """The last rows (their deltas repeat the final frame, as offline)."""
        rows = self._rows(self.n_raw, final=True)
        self.finished = True
        return rows

    def _rows(self, stop: int, final: bool = False) -> FrameRows:
        s, stop = self.emitted, max(stop, self.emitted)
        if stop == s:
            return FrameRows(s, torch.zeros(0, self.params.dim), torch.zeros(0))
        at = lambda idx: idx.clamp(0, self.n_raw - 1) - self.raw_start  # noqa: E731  (edge frames repeat)
        if self.params.kind == "mfcc39":
            n = self.half
            d1_range = torch.arange(s - n, stop + n)
            lo1, hi1 = int(d1_range.clamp(0, self.n_raw - 1).min()), int(d1_range.clamp(0, self.n_raw - 1).max())
            c_seg = self.raw[at(torch.arange(lo1 - n, hi1 + n + 1))]
            d1 = deltas(c_seg, self.params)[n : n + hi1 - lo1 + 1]  # rows lo1..hi1
            d1_seg = d1[d1_range.clamp(0, self.n_raw - 1) - lo1]
            d2 = deltas(d1_seg, self.params)[n : n + stop - s]
            c = self.raw[at(torch.arange(s, stop))]
            x = torch.cat([c, d1_seg[n : n + stop - s], d2], 1)
        else:
            x = self.raw[at(torch.arange(s, stop))]
        level = self.level[at(torch.arange(s, stop))]
        if self.params.cmvn:
            x = self._online_cmvn(x)
        self.emitted = stop
        keep = max(min(stop - 2 * self.half, self.n_raw) - self.raw_start, 0)  # rows still needed as context
        if keep:
            self.raw, self.level, self.raw_start = self.raw[keep:], self.level[keep:], self.raw_start + keep
        return FrameRows(s, x.float(), level)

    def _online_cmvn(self, x: torch.Tensor) -> torch.Tensor:
        """Each row normalised by the mean and deviation of every row up to and including it."""
        xd = x.double()
        if self.squares is None:
            self.squares = torch.zeros_like(self.total)
        n = self.count + torch.arange(1, len(x) + 1, dtype=torch.float64)[:, None]
        total = self.total + xd.cumsum(0)
        squares = self.squares + xd.pow(2).cumsum(0)
        mean = total / n
        std = (squares / n - mean.pow(2)).clamp_min(0).sqrt()
        self.count, self.total, self.squares = self.count + len(x), total[-1], squares[-1]
        return (xd - mean) / std.clamp_min(1e-5)
