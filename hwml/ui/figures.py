"""Matplotlib figures the app shows: phone strips under spectrograms, the Viterbi path of a
forced alignment, the Learn tab's audio-to-features views, the scores and voice map of "Who is
speaking?" (the confusion heatmap is hwml.runs.confusion's). Drawing only; every number
comes from hwml. Words on a figure are in the session's language (`lang`, hwml.i18n): Chinese
glyphs come from the font in assets/fonts/ (see assets/README.md), registered here, with
DejaVu Sans first so Latin text and digits look as before."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from hwml.i18n import t  # noqa: E402
from hwml.settings import ASSETS  # noqa: E402

FONT_DIR = ASSETS / "fonts"
# Debian's fonts-wqy-microhei (.ci/run and the Space's packages.txt install it): every CJK glyph,
# for text the catalogues do not hold (a Chinese name typed into "Who is speaking?").
SYSTEM_CJK = [
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
]


def use_cjk_font() -> list[str]:
    """Register the project's CJK font (assets/fonts: the catalogues' characters) and a system
    one if present as fallbacks after DejaVu Sans: matplotlib takes each glyph from the first
    family that has it. Returns the family list."""
    families = ["DejaVu Sans"]
    for path in [*sorted(FONT_DIR.glob("*.[ot]tf")), *(Path(p) for p in SYSTEM_CJK)]:
        if not path.is_file():
            continue
        try:
            font_manager.fontManager.addfont(str(path))
            name = font_manager.FontProperties(fname=str(path)).get_name()
        except (OSError, RuntimeError, ValueError):
            continue
        if name not in families:
            families.append(name)
    matplotlib.rcParams["font.family"] = families
    return families


FONT_FAMILIES = use_cjk_font()


def phone_strips(times, logmel, strips, title: str = "", words=None, width: float = 10, lang: str = "en"):
    """The log-mel spectrogram with one phone strip per labelling under it, on one time axis
    (forced alignment, free prediction, truth: the same phone has the same colour in each).

    strips: [(name, [(start s, end s, phone)])]; words: optional [(start s, end s, word)],
    drawn as a strip of their own just under the spectrogram. Each strip is one image (a colour
    per phone), not a patch per segment: it draws in a fraction of the time, which keeps
    upload-to-prediction under a second.
    """
    logmel = np.asarray(logmel)
    times = np.asarray(times)
    ends = [float(segs[-1][1]) for _, segs in strips if segs]
    end = max(ends) if ends else (float(times[-1]) if len(times) else 1.0)
    rows = ([(t("fig.words", lang), words, True)] if words is not None else []) + [
        (t(f"fig.strip.{n}", lang) if n in ("aligned", "free") else n, segs, False) for n, segs in strips
    ]
    named = any(name for name, _, _ in rows)
    heights = [3] + [0.8 if is_words else 1 for _, _, is_words in rows]
    height = 2.4 + 0.8 * len(rows)
    fig, axes = plt.subplots(
        len(heights),
        1,
        figsize=(width, height),
        dpi=80,
        sharex=True,
        gridspec_kw={"height_ratios": heights, "hspace": 0.05},
    )
    ax_spec = axes[0]
    if len(times):
        ax_spec.imshow(
            logmel.T,
            origin="lower",
            aspect="auto",
            cmap="magma",
            interpolation="nearest",
            extent=(0.0, end, 0, logmel.shape[1]),
        )
    ax_spec.set_ylabel(t("fig.mel_bin", lang))
    # on the right: Gradio's plot label covers the top left corner
    ax_spec.set_title(title or t("fig.strip_title", lang), fontsize=10, loc="right")
    phones = sorted({s[2] for _, segs in strips for s in segs})
    palette = plt.get_cmap("tab20")(np.arange(max(len(phones), 1)) % 20)
    colour = {p: palette[i] for i, p in enumerate(phones)}
    step = 0.005  # 5 ms resolution: segment bounds lie on half-hop (5 ms) multiples
    for ax, (name, segs, is_words) in zip(axes[1:], rows):
        rgb = np.ones((max(1, int(round(end / step))), 4))
        for k, (start, stop, label) in enumerate(segs):
            shade = (0.86, 0.9, 0.97, 1.0) if k % 2 else (0.97, 0.92, 0.84, 1.0)
            rgb[int(round(start / step)) : int(round(stop / step))] = shade if is_words else colour[label]
        ax.imshow(rgb[None, :, :3], aspect="auto", interpolation="nearest", extent=(0.0, end, 0, 1))
        for start, stop, label in segs:
            if stop - start >= (0.02 * len(label) if is_words else 0.04):
                ax.text(
                    (start + stop) / 2,
                    0.5,
                    label.lower() if is_words else label,
                    ha="center",
                    va="center",
                    fontsize=8,
                    style="italic" if is_words else "normal",
                )
        ax.set_yticks([])
        if name:
            ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    axes[-1].set_xlim(0, end)
    axes[-1].set_xlabel(t("fig.time", lang))
    fig.subplots_adjust(left=(1.0 if named else 0.7) / width, right=0.99, top=1 - 0.3 / height, bottom=0.5 / height)
    return _done(fig)


def viterbi_path(
    times,
    logp,
    phones,
    word_of_unit,
    words,
    path,
    title: str = "",
    floor: float = -12.0,
    width: float = 14,
    lang: str = "en",
):
    """The Viterbi picture: one row per unit of the alignment graph (top to bottom, in order),
    time left to right, colour = the model's log-posterior of the row's phone at that frame, the
    best path drawn over it. Rows the path skips (optional silences, unused variants) are
    named in grey; each word's rows are bracketed by its name on the right.

    times: (T,) frame centres; logp: (U, T); phones, word_of_unit: (U,); words: the
    transcript's words; path: (T,) unit index per frame.
    """
    logp = np.asarray(logp)
    path = np.asarray(path)
    times = np.asarray(times)
    U, T = logp.shape
    hop = float(times[1] - times[0]) if T > 1 else 0.01
    t0, t1 = float(times[0]) - hop / 2 if T else 0.0, float(times[-1]) + hop / 2 if T else 1.0
    height = max(3.5, 0.17 * U + 1.4)
    fig, ax = plt.subplots(figsize=(width, height), dpi=80)
    im = ax.imshow(
        np.clip(logp, floor, 0),
        aspect="auto",
        origin="upper",
        cmap="viridis",
        interpolation="nearest",
        extent=(t0, t1, U - 0.5, -0.5),
        vmin=floor,
        vmax=0,
    )
    ax.step(times, path, where="mid", color="#ff2d2d", lw=1.8, label=t("fig.best_path", lang))
    visited = set(path.tolist())
    ax.set_yticks(np.arange(U), phones, fontsize=8)
    for k, label in enumerate(ax.get_yticklabels()):
        label.set_color("black" if k in visited else "#9ca3af")
    word_of_unit = list(word_of_unit)
    for w, word in enumerate(words):
        rows = [k for k, x in enumerate(word_of_unit) if x == w]
        if not rows:
            continue
        ax.axhline(rows[0] - 0.5, color="white", lw=0.5, alpha=0.6)
        ax.axhline(rows[-1] + 0.5, color="white", lw=0.5, alpha=0.6)
        ax.annotate(
            word.lower(),
            xy=(1.0, (rows[0] + rows[-1]) / 2),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            style="italic",
        )
    ax.set_xlabel(t("fig.time", lang))
    ax.set_ylabel(t("fig.viterbi_rows", lang))
    ax.set_title(title or t("fig.viterbi_title", lang), fontsize=10, loc="right")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.8)
    bar = fig.colorbar(im, ax=ax, pad=0.07, fraction=0.02)
    bar.set_label(t("fig.log_posterior", lang, floor=f"{floor:g}"), fontsize=9)
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.9 / width, top=1 - 0.35 / height, bottom=0.55 / height)
    return _done(fig)


def feature_views(views, phones=None, lang: str = "en"):
    """Wave -> power spectrogram -> log-mel (HW4) -> MFCC-39 (HW2), one panel each; phones as
    (name, start s, end s) are marked on the spectrogram."""
    times = views.times
    end = float(times[-1] + 0.0125) if len(times) else 1.0
    fig, axes = plt.subplots(3, 1, figsize=(11, 7), sharex=True)
    axes[0].imshow(
        views.power_db, origin="lower", aspect="auto", cmap="magma", extent=(0, end, 0, views.freqs_hz[-1] / 1000)
    )
    axes[0].set_ylabel("kHz")
    axes[0].set_title(t("fig.power_title", lang), fontsize=10)
    axes[1].imshow(views.logmel.T, origin="lower", aspect="auto", cmap="magma", extent=(0, end, 0, 40))
    axes[1].set_ylabel(t("fig.mel_bin", lang))
    axes[1].set_title(t("fig.logmel_title", lang), fontsize=10)
    axes[2].imshow(views.mfcc.T, origin="lower", aspect="auto", cmap="coolwarm", extent=(0, end, 0, 39))
    axes[2].set_ylabel(t("fig.dim", lang))
    axes[2].set_title(t("fig.mfcc_title", lang), fontsize=10)
    if phones:
        for _name, start, _stop in phones:
            axes[0].axvline(start, color="white", lw=0.4, alpha=0.5)
        for name, start, stop in phones:
            axes[0].text(
                (start + stop) / 2, views.freqs_hz[-1] / 1000 * 0.92, name, color="white", ha="center", fontsize=7
            )
    axes[2].set_xlabel(t("fig.time", lang))
    axes[2].set_xlim(0, end)
    fig.tight_layout()
    return _done(fig)


def cosine_bars(names: list[str], scores: list[float], threshold: float, title: str = "", lang: str = "en"):
    """Enrolled people ranked by cosine similarity (best on top), the same-speaker threshold as
    a dashed line: bars past it are coloured, the rest grey."""
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(names) + 1.3))
    y = np.arange(len(names))[::-1]
    colors = ["#16a34a" if s >= threshold else "#9ca3af" for s in scores]
    ax.barh(y, scores, color=colors)
    ax.set_yticks(y, names, fontsize=9)
    ax.axvline(threshold, color="#dc2626", ls="--", lw=1)
    ax.text(
        threshold,
        y.max() + 0.6 if len(y) else 0.6,
        " " + t("fig.threshold", lang, value=f"{threshold:.2f}"),
        color="#dc2626",
        fontsize=8,
        va="bottom",
    )
    low = min(0.0, min(scores, default=0.0) - 0.05)
    ax.set_xlim(low, 1.08)
    ax.set_ylim(-0.6, (y.max() if len(y) else 0) + 1.1)
    for yi, s in zip(y, scores):
        ax.text(max(s, 0.0), yi, f" {s:.2f}", va="center", fontsize=9)
    ax.set_xlabel(t("fig.cosine_axis", lang))
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _done(fig)


def score_scale(score: float, threshold: float, same: bool, lang: str = "en"):
    """One score on the cosine scale (-1 .. 1) against the threshold: left of it "different",
    right of it "same"."""
    fig, ax = plt.subplots(figsize=(8, 1.5))
    ax.axvspan(-1, threshold, color="#f3f4f6")
    ax.axvspan(threshold, 1, color="#dcfce7")
    ax.axvline(threshold, color="#dc2626", ls="--", lw=1)
    ax.plot([score], [0.5], marker="v", ms=14, color="#16a34a" if same else "#4b5563")
    ax.text(score, 0.78, f"{score:.2f}", ha="center", fontsize=10, weight="bold")
    ax.text((threshold - 1) / 2, 0.15, t("fig.different_speakers", lang), ha="center", fontsize=9, color="#4b5563")
    ax.text((threshold + 1) / 2, 0.15, t("fig.same_speaker", lang), ha="center", fontsize=9, color="#166534")
    ax.set_xlim(-1, 1)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_xlabel(t("fig.cosine_threshold", lang, value=f"{threshold:.2f}"), fontsize=9)
    fig.tight_layout()
    return _done(fig)


def voice_map(points: list[dict], explained: list[float], title: str = "", lang: str = "en"):
    """hwml.speaker.voice_map.embedding_map's points: known speakers small and grey (labelled when
    few), enrolled people as large coloured dots with their names, a clip as a star."""
    fig, ax = plt.subplots(figsize=(8, 6))
    known = [p for p in points if p["kind"] == "known"]
    if known:
        ax.scatter(
            [p["x"] for p in known],
            [p["y"] for p in known],
            s=18,
            color="#9ca3af",
            label=t("fig.trained_speakers", lang),
        )
        if len(known) <= 30:
            for p in known:
                ax.annotate(
                    p["name"], (p["x"], p["y"]), fontsize=6, color="#6b7280", xytext=(2, 2), textcoords="offset points"
                )
    palette = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777"]
    enrolled = [p for p in points if p["kind"] == "enrolled"]
    for i, p in enumerate(enrolled):
        color = palette[i % len(palette)]
        ax.scatter(
            [p["x"]],
            [p["y"]],
            s=110,
            color=color,
            edgecolors="black",
            linewidths=0.8,
            zorder=3,
            label=p["name"] if i < 12 else None,
        )
        ax.annotate(
            p["name"],
            (p["x"], p["y"]),
            fontsize=10,
            weight="bold",
            color=color,
            xytext=(6, 4),
            textcoords="offset points",
            zorder=4,
        )
    for p in (p for p in points if p["kind"] == "clip"):
        ax.scatter(
            [p["x"]],
            [p["y"]],
            s=260,
            marker="*",
            color="#facc15",
            edgecolors="black",
            linewidths=0.8,
            zorder=5,
            label=p["name"],
        )
    if points:
        ax.legend(loc="best", fontsize=8, framealpha=0.85)
    ax.set_xlabel(t("fig.direction", lang, n=1, share=f"{explained[0]:.0%}"))
    ax.set_ylabel(t("fig.direction", lang, n=2, share=f"{explained[1]:.0%}"))
    ax.margins(0.12)
    ax.set_title(title or t("fig.voice_map_title", lang), fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _done(fig)


def waveform(wave, sample_rate: int, lang: str = "en"):
    wave = np.asarray(wave)
    fig, ax = plt.subplots(figsize=(11, 1.8))
    ax.plot(np.arange(len(wave)) / sample_rate, wave, lw=0.5)
    ax.set_xlim(0, len(wave) / sample_rate)
    ax.set_xlabel(t("fig.time", lang))
    ax.set_title(t("fig.waveform", lang, rate=sample_rate), fontsize=10)
    fig.tight_layout()
    return _done(fig)


def localise_confusion(fig, lang: str = "en"):
    """hwml.runs.confusion's heatmap (English, as saved to confusion.png) with its words in `lang`."""
    if lang == "en":
        return fig
    ax = fig.axes[0]
    ax.set_xlabel(t("fig.predicted", lang))
    ax.set_ylabel(t("fig.true", lang))
    m = re.search(r" \((\d+) most confused of (\d+) classes\)$", ax.get_title())
    if m:
        ax.set_title(
            ax.get_title()[: m.start()] + t("fig.most_confused", lang, shown=m.group(1), total=m.group(2)), fontsize=10
        )
    if len(fig.axes) > 1:
        fig.axes[1].set_ylabel(t("fig.fraction_true", lang))
    return fig


def _done(fig):
    """Gradio renders the figure; close it here so pyplot keeps no reference (no leak per call)."""
    plt.close(fig)
    return fig
