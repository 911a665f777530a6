"""The Phoneme (HW2) tab: Train, Evaluate and Predict for frame-wise phone classification.

Predict takes feature files (.npy/.pt), a course test folder (zip) or audio (upload or
microphone); audio gets its predicted phones as a strip aligned under its spectrogram plus
the segments table, and every prediction a CSV (the course's `Id,Class` for a test folder).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from hwml.errors import HwmlError
from hwml.ui.evaluate_panel import EvaluatePanel
from hwml.ui.train_panel import TrainPanel
from hwml.ui.widgets import AppContext, NO_RUNS_NOTE, run_dropdown_update, session_of, shipped_choices, user_errors

KIND = "phoneme"
# The SPEC's preset names, so the page builds without importing the models; the Train panel
# reads the real list from hwml.phoneme.PRESETS when the page loads.
PRESET_ORDER = ["simple", "medium", "strong", "boss", "gaussian", "logreg"]


def _prediction_target(ctx: AppContext, session: str, run_key: str | None):
    """The picked run, checked to be a phoneme run this session may use."""
    entry = ctx.workspace.find_run(session, run_key)
    if entry.task not in (None, KIND):
        raise HwmlError(f"{entry.path.name} is a {entry.task} run, not a phoneme run")
    return entry


class PhonemePredictPanel:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                with gr.Row():
                    self.run = gr.Dropdown(shipped_choices(ctx, KIND), label="Run", allow_custom_value=True, scale=4,
                                           elem_id="phoneme-predict-run")
                    self.refresh = gr.Button("↻", scale=1, min_width=40)
                self.audio = gr.Audio(type="filepath", sources=["upload", "microphone"],
                                      label="Speech (upload or record): predicted as soon as it arrives",
                                      elem_id="phoneme-predict-audio")
                self.files = gr.File(label="Feature files (.npy/.pt, (T,39) or (T,429)) or a course test folder (.zip)",
                                     file_count="multiple", file_types=[".npy", ".pt", ".zip"], type="filepath")
                self.files_button = gr.Button("Predict files", variant="primary")
                gr.Markdown(NO_RUNS_NOTE)
            with gr.Column(scale=2):
                self.summary = gr.Markdown(elem_id="phoneme-predict-summary")
                self.strip = gr.Plot(label="Phones under the spectrogram", elem_id="phoneme-predict-strip")
                self.table = gr.Dataframe(headers=["start", "end", "phone"], label="Segments (first file) / rows",
                                          interactive=False, max_height=320,
                                          elem_id="phoneme-predict-table")
                self.csv = gr.File(label="CSV", interactive=False, elem_id="phoneme-predict-csv")
        outputs = [self.summary, self.strip, self.table, self.csv]
        self.refresh.click(self.refresh_runs, self.run, self.run, api_visibility="private", queue=False)
        self.audio.change(self.predict_audio, [self.run, self.audio], outputs, api_name="phoneme_predict_audio",
                          trigger_mode="always_last")
        self.files_button.click(self.predict_files, [self.run, self.files], outputs, api_name="phoneme_predict_files")

    def refresh_runs(self, current, request: gr.Request):
        return run_dropdown_update(self.ctx, session_of(request), KIND, current)

    @user_errors
    def predict_audio(self, run_key, audio, request: gr.Request):
        """Phones of one recording: strip under its spectrogram, segments, per-frame CSV."""
        if not audio:
            return "", None, None, None
        from hwml.audio import LOGMEL40, FeatureParams, frame_times, load_audio, logmel40
        from hwml.ui import figures
        from hwml.workflow import predict_run
        entry = _prediction_target(self.ctx, session_of(request), run_key)
        out = self.ctx.workspace.new_upload_dir(session_of(request)) / "predictions.csv"
        summary = predict_run(entry.path, [audio], out)
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

    @user_errors
    def predict_files(self, run_key, files, request: gr.Request):
        """Feature files (one row per frame) or a course test folder zip (the submission CSV)."""
        from hwml.workflow import predict_run
        entry = _prediction_target(self.ctx, session_of(request), run_key)
        out = self.ctx.workspace.new_upload_dir(session_of(request)) / "predictions.csv"
        if not files:
            raise HwmlError("upload feature files (.npy/.pt) or a course test folder (.zip) first")
        summary = predict_run(entry.path, [Path(f) for f in files], out)
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


def build(ctx: AppContext) -> dict:
    """The tab's panels, inside the current gr.Tab."""
    with gr.Tab("Train"):
        train = TrainPanel(ctx, KIND, PRESET_ORDER, default_preset="medium")
    with gr.Tab("Evaluate") as eval_tab:
        evaluate = EvaluatePanel(ctx, KIND)
    with gr.Tab("Predict") as predict_tab:
        predict = PhonemePredictPanel(ctx)
    return {"train": train, "evaluate": evaluate, "predict": predict, "eval_tab": eval_tab, "predict_tab": predict_tab}
