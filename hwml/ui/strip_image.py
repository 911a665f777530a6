"""Phone strips under a spectrogram as a plain RGB image, for Predict: drawn with numpy and
Pillow, many times faster than the matplotlib figure (`figures.phone_strips`, which the Learn
tab keeps) draws and encodes (README: "A whole class at once"). A class pressing Predict
together pays that once per student, so the served picture must be cheap.

The layout follows `figures.phone_strips`: the log-mel spectrogram (magma), an optional words
row, one strip per labelling (the same phone has the same colour in every strip), a time axis.
The title is the component's label; the strips' names come translated from the caller and are
drawn with the bundled CJK font (assets/fonts), phones and words with DejaVu Sans.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from hwml.settings import ASSETS

WIDTH = 1000  # pixels of the time axis
SPEC_HEIGHT = 160  # pixels of the spectrogram
STRIP_HEIGHT = 30
WORDS_HEIGHT = 24
NAME_WIDTH = 70  # left margin for the strips' names
AXIS_HEIGHT = 22
WORD_SHADES = ((247, 235, 214), (219, 230, 247))


@functools.lru_cache(maxsize=1)
def _magma() -> np.ndarray:
    """(256, 3) uint8 colour table of matplotlib's magma map (read once; matplotlib stays in
    the figure module's import, not drawn with)."""
    from matplotlib import colormaps

    return (colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _palette() -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps["tab20"](np.arange(20))[:, :3] * 255).astype(np.uint8)


CJK_FONT = ASSETS / "fonts" / "hwml-cjk.ttf"


@functools.lru_cache(maxsize=6)
def _font(size: int, italic: bool = False, cjk: bool = False):
    """DejaVu Sans from matplotlib's own data folder (installed with the project), or the
    bundled CJK subset for names in Chinese; nothing from the system."""
    import matplotlib
    from PIL import ImageFont

    if cjk and CJK_FONT.is_file():
        return ImageFont.truetype(str(CJK_FONT), size)
    name = "DejaVuSans-Oblique.ttf" if italic else "DejaVuSans.ttf"
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)


def _spectrogram(logmel: np.ndarray, width: int) -> np.ndarray:
    """(SPEC_HEIGHT, width, 3): low mel bins at the bottom, each frame stretched to its columns."""
    x = np.asarray(logmel, dtype=np.float32)
    lo, hi = np.percentile(x, 1), np.percentile(x, 99.5)
    level = np.clip((x - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)  # (T, n_mels)
    cols = np.minimum((np.arange(width) * len(x)) // width, len(x) - 1)
    rows = np.minimum(((SPEC_HEIGHT - 1 - np.arange(SPEC_HEIGHT)) * x.shape[1]) // SPEC_HEIGHT, x.shape[1] - 1)
    return _magma()[level[cols][:, rows].T]


def phone_strips_image(times, logmel, strips, words=None, words_label: str = "words") -> np.ndarray:
    """(H, W, 3) uint8: the spectrogram, the words (optional), one strip per labelling, a time axis.

    times: (T,) frame centres (s); logmel: (T, n_mels); strips: [(name, [(start s, end s, phone)])];
    words: optional [(start s, end s, word)], in a row named `words_label`.
    """
    from PIL import Image, ImageDraw

    logmel = np.asarray(logmel)
    times = np.asarray(times)
    ends = [float(segs[-1][1]) for _, segs in strips if segs]
    end = max(ends) if ends else (float(times[-1]) + 0.005 if len(times) else 1.0)
    end = max(end, 1e-3)
    named = any(name for name, _ in strips)
    left = NAME_WIDTH if named else 8
    rows = ([(words_label, words, True)] if words is not None else []) + [(n, s, False) for n, s in strips]
    height = SPEC_HEIGHT + sum(WORDS_HEIGHT if w else STRIP_HEIGHT for _, _, w in rows) + AXIS_HEIGHT
    canvas = np.full((height, left + WIDTH + 8, 3), 255, dtype=np.uint8)
    if len(logmel):
        canvas[:SPEC_HEIGHT, left : left + WIDTH] = _spectrogram(logmel, WIDTH)
    phones = sorted({s[2] for _, segs in strips for s in segs})
    colour = {p: _palette()[i % 20] for i, p in enumerate(phones)}
    px = lambda t: left + int(round(min(max(t, 0.0), end) / end * WIDTH))  # noqa: E731
    labels, y = [], SPEC_HEIGHT
    for name, segs, is_words in rows:
        h = WORDS_HEIGHT if is_words else STRIP_HEIGHT
        for k, (start, stop, label) in enumerate(segs or []):
            a, b = px(start), px(stop)
            canvas[y + 1 : y + h, a : max(b, a + 1)] = WORD_SHADES[k % 2] if is_words else colour[label]
            if b - a >= (6 * len(label) + 2):
                labels.append(((a + b) / 2, y + h / 2, label.lower() if is_words else label, is_words))
        if name:
            labels.append((left - 6, y + h / 2, name, None))
        y += h
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for x, yc, text, is_words in labels:
        anchor = "rm" if is_words is None else "mm"
        font = _font(12, cjk=not text.isascii()) if is_words is None else _font(11, bool(is_words))
        draw.text((x, yc), text, fill=(0, 0, 0), font=font, anchor=anchor)
    draw.line([(left, y), (left + WIDTH, y)], fill=(0, 0, 0))
    step = _tick_step(end)
    for i in range(int(end / step) + 1):
        x = px(i * step)
        draw.line([(x, y), (x, y + 4)], fill=(0, 0, 0))
        draw.text(
            (x, y + 5), f"{i * step:g} s" if i == 0 else f"{i * step:g}", fill=(0, 0, 0), font=_font(11), anchor="mt"
        )
    return np.asarray(image)


def _tick_step(end: float) -> float:
    """A round tick spacing giving about 5 to 12 ticks over `end` seconds."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60):
        if end / step <= 12:
            return step
    return 120.0


def save_jpeg(image: np.ndarray, path) -> str:
    """Write the picture as JPEG (several times faster to encode than PNG) in the request's own
    worker thread, and return its path: Gradio then only moves a file, where encoding an array
    itself would run on the server's event loop, which every other request also waits on."""
    from PIL import Image

    from hwml.safeio import atomic_path

    with atomic_path(path, fsync=False) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=90)
    return str(path)
