"""The Phoneme (HW2) tab's own parts: its preset order and how Predict shows frame-wise phones.

Predict takes feature files (.npy/.pt), a course test folder (zip) or audio (upload or
microphone); audio gets its predicted phones as a strip aligned under its spectrogram plus
the segments table, and every prediction a CSV (the course's `Id,Class` for a test folder).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hwml.ui.predict_panel import PredictPanel

KIND = "phoneme"
# The SPEC's preset names, so the page builds without importing the models; the Train panel
# reads the real list from hwml.phoneme.PRESETS when the page loads.
PRESET_ORDER = ["simple", "medium", "strong", "boss", "gaussian", "logreg"]


class PhonemePredictPanel(PredictPanel):
    kind = KIND
    files_label = "Feature files (.npy/.pt, (T,39) or (T,429)) or a course test folder (.zip)"
    figure_label, figure_id = "Phones under the spectrogram", "strip"
    table_headers, table_label = ["start", "end", "phone"], "Segments (first file) / rows"

    def show_audio(self, entry, audio, summary):
        """Phones of one recording: strip under its spectrogram, segments, per-frame CSV."""
        from hwml.audio import LOGMEL40, FeatureParams, frame_times, load_audio, logmel40
        from hwml.ui import figures

        segs = summary["files"][0]["segments"]
        wave = load_audio(audio)
        spec = logmel40(wave, LOGMEL40)
        times = frame_times(len(spec), FeatureParams(kind="logmel40")).numpy()
        fig = figures.phone_strip(times, spec.numpy(), segs,
                                  title=f"{Path(audio).name}: {len(wave) / 16000:.2f} s, {len(segs)} segments")
        table = pd.DataFrame(segs, columns=["start", "end", "phone"])
        text = (f"**{summary['files'][0]['frames']} frames** → {len(segs)} phone segments · run `{entry.path.name}` · "
                f"the CSV has one row per frame (`file,frame,time,phone,prob`)")
        return text, fig, table, summary["out"]

    def show_files(self, entry, summary):
        """Feature files (segments of the first) or a course test folder (the submission CSV)."""
        if summary.get("kind") == "submission":
            preview = pd.read_csv(summary["out"], nrows=200, dtype=str)
            text = (f"**Course submission**: {summary['rows']:,} test frames (`Id,Class`, {summary.get('format', '')} "
                    f"order) · run `{entry.path.name}`")
            return text, None, preview, summary["out"]
        first = summary["files"][0]
        table = pd.DataFrame(first["segments"], columns=["start", "end", "phone"])
        text = (f"**{len(summary['files'])} file(s), {summary['rows']:,} frames** · segments of "
                f"`{Path(first['file']).name}` below · run `{entry.path.name}`")
        return text, None, table, summary["out"]
