"""The Speaker (HW4) tab: Train, Evaluate and Predict for utterance-level speaker classification.

Predict shows the top-5 speakers of a recording (upload or microphone) or of feature files
with their probabilities, writes the CSV (the course's `Id,Category` for a test folder), and
lets a user enrol new speakers from a few clips and recognise them by cosine similarity of
embeddings, without retraining (`hwml.speaker.enroll` / `identify`).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from hwml.errors import HwmlError
from hwml.ui.evaluate_panel import EvaluatePanel
from hwml.ui.train_panel import TrainPanel
from hwml.ui.widgets import AppContext, NO_RUNS_NOTE, run_dropdown_update, session_of, shipped_choices, user_errors

KIND = "speaker"
# The SPEC's preset names, so the page builds without importing the models (conformer pulls in
# torch's compiler: seconds of start-up); the Train panel reads hwml.speaker.PRESETS on page load.
PRESET_ORDER = ["simple", "medium", "strong", "boss"]


def top_k_table(row: pd.Series) -> pd.DataFrame:
    """The top1/p1 ... topK/pK columns of one predictions-CSV row as (rank, speaker, probability)."""
    out = []
    k = 1
    while f"top{k}" in row.index:
        out.append((k, str(row[f"top{k}"]), float(row[f"p{k}"])))
        k += 1
    return pd.DataFrame(out, columns=["rank", "speaker", "probability"])


def _target(ctx: AppContext, session: str, run_key: str | None):
    """The picked run, checked to be a speaker run this session may use."""
    entry = ctx.workspace.find_run(session, run_key)
    if entry.task not in (None, KIND):
        raise HwmlError(f"{entry.path.name} is a {entry.task} run, not a speaker run")
    return entry


class SpeakerPredictPanel:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                with gr.Row():
                    self.run = gr.Dropdown(shipped_choices(ctx, KIND), label="Run", allow_custom_value=True, scale=4,
                                           elem_id="speaker-predict-run")
                    self.refresh = gr.Button("↻", scale=1, min_width=40)
                self.audio = gr.Audio(type="filepath", sources=["upload", "microphone"],
                                      label="Speech (upload or record): predicted as soon as it arrives",
                                      elem_id="speaker-predict-audio")
                self.files = gr.File(label="Feature files (.pt/.npy, (T,40)) or a course test folder (.zip)",
                                     file_count="multiple", file_types=[".npy", ".pt", ".zip"], type="filepath")
                self.files_button = gr.Button("Predict files", variant="primary")
                gr.Markdown(NO_RUNS_NOTE)
            with gr.Column(scale=2):
                self.summary = gr.Markdown(elem_id="speaker-predict-summary")
                self.bars = gr.Plot(label="Top-5 speakers", elem_id="speaker-predict-bars")
                self.table = gr.Dataframe(headers=["rank", "speaker", "probability"], label="Predictions",
                                          interactive=False, max_height=320,
                                          elem_id="speaker-predict-table")
                self.csv = gr.File(label="CSV", interactive=False, elem_id="speaker-predict-csv")
        with gr.Accordion("Enrol a new speaker (no retraining)", open=False):
            gr.Markdown("Give a name and a few clips of the new voice: hwml averages their embeddings (the "
                        "pooled vector before the classifier). A new recording is then scored against every "
                        "enrolled speaker by cosine similarity.")
            self.enrolled = gr.State([])
            with gr.Row():
                self.name = gr.Textbox(label="Speaker name", scale=1)
                self.clips = gr.File(label="Clips (audio or .pt/.npy)", file_count="multiple", type="filepath", scale=2)
            with gr.Row():
                self.enrol_button = gr.Button("Enrol")
                self.identify_button = gr.Button("Identify the recording above", variant="primary")
                self.clear_button = gr.Button("Forget all")
            self.enrolled_table = gr.Dataframe(headers=["speaker", "clips", "model"], label="Enrolled speakers",
                                               interactive=False)
            self.scores = gr.Dataframe(headers=["speaker", "cosine similarity"],
                                       label="Cosine similarity to each enrolled speaker", interactive=False)
        outputs = [self.summary, self.bars, self.table, self.csv]
        self.refresh.click(self.refresh_runs, self.run, self.run, api_visibility="private", queue=False)
        self.audio.change(self.predict_audio, [self.run, self.audio], outputs, api_name="speaker_predict_audio",
                          trigger_mode="always_last")
        self.files_button.click(self.predict_files, [self.run, self.files], outputs, api_name="speaker_predict_files")
        self.enrol_button.click(self.enrol, [self.run, self.name, self.clips, self.enrolled],
                                [self.enrolled, self.enrolled_table], api_name="speaker_enrol")
        self.identify_button.click(self.identify, [self.run, self.audio, self.enrolled], self.scores,
                                   api_name="speaker_identify")
        self.clear_button.click(lambda: ([], None, None), None, [self.enrolled, self.enrolled_table, self.scores],
                                api_visibility="private", queue=False)

    def refresh_runs(self, current, request: gr.Request):
        return run_dropdown_update(self.ctx, session_of(request), KIND, current)

    @user_errors
    def predict_audio(self, run_key, audio, request: gr.Request):
        if not audio:
            return "", None, None, None
        from hwml.workflow import predict_run
        entry = _target(self.ctx, session_of(request), run_key)
        out = self.ctx.workspace.new_upload_dir(session_of(request)) / "predictions.csv"
        summary = predict_run(entry.path, [audio], out)
        row = pd.read_csv(summary["out"], dtype=str).iloc[0]
        top = top_k_table(row)
        text = (f"**{row['Category']}** ({top['probability'].iloc[0]:.1%}) · run `{entry.path.name}` · "
                "probabilities are over the speakers this run was trained on")
        return text, self._bars(top, Path(audio).name), top, summary["out"]

    @staticmethod
    def _bars(top: pd.DataFrame, source: str):
        from hwml.ui import figures

        return figures.top_k_bars(top["speaker"].tolist(), top["probability"].tolist(),
                                  title=f"top-{len(top)} speakers: {source}")

    @user_errors
    def predict_files(self, run_key, files, request: gr.Request):
        from hwml.workflow import predict_run
        entry = _target(self.ctx, session_of(request), run_key)
        out = self.ctx.workspace.new_upload_dir(session_of(request)) / "predictions.csv"
        if not files:
            raise HwmlError("upload feature files (.pt/.npy) or a course test folder (.zip) first")
        summary = predict_run(entry.path, [Path(f) for f in files], out)
        table = pd.read_csv(summary["out"], dtype=str)
        if summary.get("format") == "submission":
            text = f"**Course submission**: {summary['rows']:,} test utterances (`Id,Category`) · run `{entry.path.name}`"
            return text, None, table.head(200), summary["out"]
        table["Id"] = table["Id"].map(lambda p: Path(p).name)
        top = top_k_table(table.iloc[0])
        text = (f"**{len(table)} file(s)** · first: **{table['Category'].iloc[0]}** · run `{entry.path.name}`")
        return text, self._bars(top, table["Id"].iloc[0]), table, summary["out"]

    @user_errors
    def enrol(self, run_key, name, clips, enrolled, request: gr.Request):
        from hwml.speaker import enroll

        entry = _target(self.ctx, session_of(request), run_key)
        name = (name or "").strip()
        if not name:
            raise HwmlError("give the new speaker a name")
        if not clips:
            raise HwmlError("upload one or more clips of the new speaker")
        new = enroll(entry.path, name, [Path(c) for c in clips])
        enrolled = [e for e in (enrolled or []) if e.name != name] + [new]
        table = pd.DataFrame([(e.name, e.n_clips, e.model_id) for e in enrolled], columns=["speaker", "clips", "model"])
        return enrolled, table

    @user_errors
    def identify(self, run_key, audio, enrolled, request: gr.Request):
        from hwml.speaker import identify

        if not audio:
            raise HwmlError("record or upload a clip above first")
        entry = _target(self.ctx, session_of(request), run_key)
        ranked = identify(entry.path, enrolled or [], Path(audio))
        return pd.DataFrame([(n, round(s, 4)) for n, s in ranked], columns=["speaker", "cosine similarity"])


def build(ctx: AppContext) -> dict:
    with gr.Tab("Train"):
        train = TrainPanel(ctx, KIND, PRESET_ORDER, default_preset="medium")
    with gr.Tab("Evaluate") as eval_tab:
        evaluate = EvaluatePanel(ctx, KIND)
    with gr.Tab("Predict") as predict_tab:
        predict = SpeakerPredictPanel(ctx)
    return {"train": train, "evaluate": evaluate, "predict": predict, "eval_tab": eval_tab, "predict_tab": predict_tab}
