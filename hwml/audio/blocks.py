"""Audio decoded, mixed to mono and resampled a block at a time, so memory follows the block, not the file.

A 600 s, 8-channel, 384 kHz FLAC is a few MB on disk but 7.4 GB as float32 samples; read whole it
would take the server down. Here each block of frames is mixed down on arrival and the mono stream
is resampled with torchaudio's sinc kernel over overlapping windows, cut so that every output sample
sees exactly the input samples (and the zero padding at the file's ends) it would see in one
whole-file call: the result equals the whole-file resample to float rounding, and a file that fits
in one block is resampled by the very same call as before.

Compressed recordings from phones and browsers (m4a/AAC, webm/Opus, 3gp, mp4) are decoded by PyAV,
whose wheels bundle FFmpeg, frame by frame.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import numpy as np
import torch

from hwml.errors import HwmlError

READ_FRAMES = 2**16  # frames per soundfile read: 8 channels x 65536 x 4 B = 2 MB
RESAMPLE_BLOCK = 2**20  # mono input samples per resampling call (about 4 MB of float32)


@functools.lru_cache(maxsize=16)
def resampler(orig: int, new: int):
    """torchaudio's sinc resampler for one pair of rates, built once."""
    import torchaudio  # here, not at the top: importing decode (AUDIO_SUFFIXES) stays light

    return torchaudio.transforms.Resample(orig, new)


def kernel_rate(sr: int, target: int) -> int:
    """The rate the resampling kernel is built for: an odd rate (e.g. 44101 Hz) would need a huge
    polyphase kernel, so it is treated as the nearest multiple of 25 Hz (< 0.3 % off)."""
    return round(sr / 25) * 25 if target // math.gcd(sr, target) > 640 else sr


class BlockResampler:
    """Resamples a mono stream fed in pieces; `finish` returns what one whole-file call would."""

    def __init__(self, sr: int, target: int, block: int = RESAMPLE_BLOCK):
        self.sr, self.target = kernel_rate(sr, target), target
        self.same = self.sr == target
        g = math.gcd(self.sr, target)
        self.orig, self.new = self.sr // g, target // g
        if not self.same:
            width = getattr(resampler(self.sr, target), "width", None)
            width = width if width is not None else math.ceil(6 * self.orig / (0.99 * min(self.orig, self.new))) + 1
            self.context = math.ceil(width / self.orig) * self.orig  # a whole number of kernel strides
        self.step = max(1, block // self.orig) * self.orig
        self.pending: list[torch.Tensor] = []
        self.pending_len = 0
        self.seen = 0  # input samples fed
        self.out: list[torch.Tensor] = []
        self.started = False  # whether a block was resampled (else finish makes one whole call)

    def feed(self, mono: torch.Tensor) -> None:
        self.seen += mono.numel()
        self.pending.append(mono)
        self.pending_len += mono.numel()
        if self.same:
            return
        while self.pending_len >= (self.context if self.started else 0) + self.step + self.context:
            if not self.started:  # the zero padding a whole-file call puts before the first sample
                self.pending.insert(0, torch.zeros(self.context))
                self.pending_len += self.context
                self.started = True
            self._emit(self.step)

    def _emit(self, step: int) -> None:
        buf = torch.cat(self.pending) if len(self.pending) > 1 else self.pending[0]
        window = buf[: self.context + step + self.context]
        if window.numel() < self.context + step + self.context:  # the file's end: the zeros it is padded with
            window = torch.cat([window, torch.zeros(self.context + step + self.context - window.numel())])
        first = self.context // self.orig * self.new
        with torch.no_grad():
            self.out.append(resampler(self.sr, self.target)(window)[first : first + step // self.orig * self.new])
        rest = buf[step:]
        self.pending, self.pending_len = [rest], rest.numel()

    def finish(self) -> torch.Tensor:
        if self.same or not self.started:
            wave = torch.cat(self.pending) if self.pending else torch.zeros(0)
            if self.same:
                return wave.contiguous()
            with torch.no_grad():
                return resampler(self.sr, self.target)(wave).contiguous()
        left = self.pending_len - self.context  # real samples not yet resampled
        if left > 0:
            self._emit(math.ceil(left / self.orig) * self.orig)
        wave = torch.cat(self.out)
        return wave[: math.ceil(self.new * self.seen / self.orig)].contiguous()


def mono_block(data: np.ndarray) -> np.ndarray:
    """(frames, channels) float32 -> (frames,) by the channels' mean, as whole-file decoding did."""
    return data.mean(axis=1) if data.ndim == 2 else data


def soundfile_blocks(f, limit: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks of an open soundfile.SoundFile, at most `limit` + 1 frames in all."""
    left = limit + 1
    while left > 0:
        data = f.read(min(READ_FRAMES, left), dtype="float32", always_2d=True)
        if len(data) == 0:
            return
        left -= len(data)
        yield mono_block(data)


def is_av_error(e: BaseException) -> bool:
    import av

    return isinstance(e, av.FFmpegError)


def open_av(path) -> tuple[object, object, int, float | None]:
    """Open a compressed recording: (container, its first audio stream, sample rate, header seconds or None)."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise HwmlError(f"{path}: not a readable audio file ({' '.join(str(e).split())[:200]})") from None
    if not container.streams.audio:
        container.close()
        raise HwmlError(f"{path}: no audio stream in this file")
    stream = container.streams.audio[0]
    seconds = None
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / av.time_base
    return container, stream, int(stream.rate or 0), seconds


def av_blocks(path, container, stream, limit: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks, one per decoded frame, stopping past `limit` frames; closes the container."""
    import av

    convert = av.AudioResampler(format="fltp")  # sample format only: layout and rate stay
    total = 0
    try:
        for packet_frame in container.decode(stream):
            for frame in convert.resample(packet_frame):
                data = frame.to_ndarray()  # (channels, samples)
                total += data.shape[1]
                yield data.mean(axis=0) if data.shape[0] > 1 else data[0]
            if total > limit:
                return
    except av.FFmpegError as e:
        raise HwmlError(f"{path}: not a readable audio file ({' '.join(str(e).split())[:200]})") from None
    finally:
        container.close()
