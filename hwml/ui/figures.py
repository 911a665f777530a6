"""Matplotlib figures the app shows: phone strips under spectrograms and the Learn tab's
audio-to-features views (the confusion heatmap is hwml.evaluate's). Drawing only; every number
comes from hwml."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def phone_strip(times, logmel, segments, title: str = ""):
    """The log-mel spectrogram with the predicted phones in a strip under it, on one time axis.

    times: (T,) frame centres (s); logmel: (T, n_mels); segments: [(start s, end s, phone)].
    The strip is one image (a colour per phone), not a patch per segment: it draws in a
    fraction of the time, which keeps upload-to-prediction under a second.
    """
    logmel = np.asarray(logmel)
    times = np.asarray(times)
    end = float(segments[-1][1]) if segments else (float(times[-1]) if len(times) else 1.0)
    fig, (ax_spec, ax_strip) = plt.subplots(2, 1, figsize=(10, 3.2), dpi=80, sharex=True,
                                            gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    if len(times):
        ax_spec.imshow(logmel.T, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                       extent=(0.0, end, 0, logmel.shape[1]))
    ax_spec.set_ylabel("mel bin")
    ax_spec.set_title(title or "log-mel spectrogram and predicted phones", fontsize=10)
    phones = sorted({s[2] for s in segments})
    index = {p: i for i, p in enumerate(phones)}
    step = 0.005  # 5 ms resolution: segment bounds lie on half-hop (5 ms) multiples
    cells = np.full(max(1, int(round(end / step))), -1, dtype=int)
    for start, stop, phone in segments:
        cells[int(round(start / step)):int(round(stop / step))] = index[phone]
    palette = plt.get_cmap("tab20")(np.arange(max(len(phones), 1)) % 20)
    rgb = np.where(cells[:, None] >= 0, palette[np.clip(cells, 0, None)], 1.0)
    ax_strip.imshow(rgb[None, :, :3], aspect="auto", interpolation="nearest", extent=(0.0, end, 0, 1))
    for start, stop, phone in segments:
        if stop - start >= 0.04:
            ax_strip.text((start + stop) / 2, 0.5, phone, ha="center", va="center", fontsize=8)
    ax_strip.set_yticks([])
    ax_strip.set_xlim(0, end)
    ax_strip.set_xlabel("time (s)")
    fig.subplots_adjust(left=0.07, right=0.99, top=0.91, bottom=0.16)
    return _done(fig)


def feature_views(views, phones=None):
    """Wave -> power spectrogram -> log-mel (HW4) -> MFCC-39 (HW2), one panel each; phones as
    (name, start s, end s) are marked on the spectrogram."""
    t = views.times
    end = float(t[-1] + 0.0125) if len(t) else 1.0
    fig, axes = plt.subplots(3, 1, figsize=(11, 7), sharex=True)
    axes[0].imshow(views.power_db, origin="lower", aspect="auto", cmap="magma",
                   extent=(0, end, 0, views.freqs_hz[-1] / 1000))
    axes[0].set_ylabel("kHz")
    axes[0].set_title("power spectrogram (25 ms Hann windows every 10 ms)", fontsize=10)
    axes[1].imshow(views.logmel.T, origin="lower", aspect="auto", cmap="magma", extent=(0, end, 0, 40))
    axes[1].set_ylabel("mel bin")
    axes[1].set_title("40 log-mel filterbank energies: HW4's features", fontsize=10)
    axes[2].imshow(views.mfcc.T, origin="lower", aspect="auto", cmap="coolwarm", extent=(0, end, 0, 39))
    axes[2].set_ylabel("dim")
    axes[2].set_title("13 MFCC + 13 deltas + 13 delta-deltas, normalised per utterance: HW2's 39", fontsize=10)
    if phones:
        for _name, start, _stop in phones:
            axes[0].axvline(start, color="white", lw=0.4, alpha=0.5)
        for name, start, stop in phones:
            axes[0].text((start + stop) / 2, views.freqs_hz[-1] / 1000 * 0.92, name, color="white",
                         ha="center", fontsize=7)
    axes[2].set_xlabel("time (s)")
    axes[2].set_xlim(0, end)
    fig.tight_layout()
    return _done(fig)


def top_k_bars(names: list[str], probs: list[float], title: str = ""):
    """The most likely speakers, best on top, with their probabilities written on the bars."""
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    y = np.arange(len(names))[::-1]
    ax.barh(y, probs, color="#f97316")
    ax.set_yticks(y, names, fontsize=9)
    ax.set_xlim(0, max(1e-9, max(probs, default=0)) * 1.25)
    for yi, p in zip(y, probs):
        ax.text(p, yi, f" {p:.1%}", va="center", fontsize=9)
    ax.set_xlabel("probability")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _done(fig)


def waveform(wave, sample_rate: int):
    wave = np.asarray(wave)
    fig, ax = plt.subplots(figsize=(11, 1.8))
    ax.plot(np.arange(len(wave)) / sample_rate, wave, lw=0.5)
    ax.set_xlim(0, len(wave) / sample_rate)
    ax.set_xlabel("time (s)")
    ax.set_title(f"waveform, {sample_rate} Hz", fontsize=10)
    fig.tight_layout()
    return _done(fig)


def _done(fig):
    """Gradio renders the figure; close it here so pyplot keeps no reference (no leak per call)."""
    plt.close(fig)
    return fig
