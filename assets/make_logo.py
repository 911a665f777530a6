"""Draw hwml's logo (logo.svg) and favicon (favicon.png): a row of bars shaped like a speech
waveform, the left half blue (HW2: phonemes), the right half orange (HW4: speakers).
Run `python assets/make_logo.py` to draw them again; the app only reads the files."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
BLUE, ORANGE, INK = "#2563eb", "#f97316", "#1f2937"
HEIGHTS = [0.25, 0.45, 0.8, 0.55, 1.0, 0.7, 0.35, 0.6, 0.9, 0.5, 0.3]


def bars(width: float, height: float, x0: float = 0.0):
    """(x, y, w, h, colour) of each bar, centred vertically."""
    n = len(HEIGHTS)
    step = width / n
    for i, h in enumerate(HEIGHTS):
        bh = h * height
        yield x0 + i * step + step * 0.15, (height - bh) / 2, step * 0.7, bh, BLUE if i < n // 2 else ORANGE


def svg() -> str:
    rects = "".join(
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{w / 2:.1f}" fill="{c}"/>'
        for x, y, w, h, c in bars(66, 44)
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 190 44" role="img" aria-label="hwml">'
        f'{rects}<text x="76" y="33" font-family="ui-sans-serif, system-ui, sans-serif" font-size="30" '
        f'font-weight="700" fill="{INK}">hwml</text></svg>\n'
    )


def favicon(size: int = 64) -> Image.Image:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 5, fill="#eef2ff")
    for x, y, w, h, c in bars(size * 0.84, size * 0.8, size * 0.08):
        draw.rounded_rectangle((x, y + size * 0.1, x + w, y + h + size * 0.1), radius=w / 2, fill=c)
    return img


if __name__ == "__main__":
    (HERE / "logo.svg").write_text(svg(), encoding="utf-8")
    favicon().save(HERE / "favicon.png")
    assert np.asarray(Image.open(HERE / "favicon.png")).shape == (64, 64, 4)
    print("wrote logo.svg, favicon.png")
