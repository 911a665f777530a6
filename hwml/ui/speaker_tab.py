"""The Speaker (HW4) tab's own parts: its preset order, how Predict shows speakers, and enrolment.

Predict shows the top-5 speakers of a recording (upload or microphone) or of feature files
with their probabilities, writes the CSV (the course's `Id,Category` for a test folder), and
lets a user enrol new speakers from a few clips and recognise them by cosine similarity of
embeddings, without retraining (`hwml.speaker_id.enroll` / `identify`).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from hwml.errors import HwmlError
from hwml.ui.predict_panel import PredictPanel
from hwml.ui.widgets import session_of, task_run, user_errors

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


def top_k_bars(top: pd.DataFrame, source: str):
    from hwml.ui import figures

    return figures.top_k_bars(top["speaker"].tolist(), top["probability"].tolist(),
                              title=f"top-{len(top)} speakers: {source}")


class SpeakerPredictPanel(PredictPanel):
    kind = KIND
    files_label = "Feature files (.pt/.npy, (T,40)) or a course test folder (.zip)"
    figure_label, figure_id = "Top-5 speakers", "bars"
    table_headers, table_label = ["rank", "speaker", "probability"], "Predictions"

    def show_audio(self, entry, audio, summary):
        row = pd.read_csv(summary["out"], dtype=str).iloc[0]
        top = top_k_table(row)
        text = (f"**{row['Category']}** ({top['probability'].iloc[0]:.1%}) · run `{entry.path.name}` · "
                "probabilities are over the speakers this run was trained on")
        return text, top_k_bars(top, Path(audio).name), top, summary["out"]

    def show_files(self, entry, summary):
        table = pd.read_csv(summary["out"], dtype=str)
        if summary.get("format") == "submission":
            text = f"**Course submission**: {summary['rows']:,} test utterances (`Id,Category`) · run `{entry.path.name}`"
            return text, None, table.head(200), summary["out"]
        table["Id"] = table["Id"].map(lambda p: Path(p).name)
        top = top_k_table(table.iloc[0])
        text = (f"**{len(table)} file(s)** · first: **{table['Category'].iloc[0]}** · run `{entry.path.name}`")
        return text, top_k_bars(top, table["Id"].iloc[0]), table, summary["out"]

    # --- enrol a new speaker ------------------------------------------------------------------
    def add_extras(self) -> None:
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

    def wire_extras(self) -> None:
        self.enrol_button.click(self.enrol, [self.run, self.name, self.clips, self.enrolled],
                                [self.enrolled, self.enrolled_table], api_name="speaker_enrol")
        self.identify_button.click(self.identify, [self.run, self.audio, self.enrolled], self.scores,
                                   api_name="speaker_identify")
        self.clear_button.click(lambda: ([], None, None), None, [self.enrolled, self.enrolled_table, self.scores],
                                api_visibility="private", queue=False)

    @user_errors
    def enrol(self, run_key, name, clips, enrolled, request: gr.Request):
        from hwml.speaker_id import enroll

        entry = task_run(self.ctx, session_of(request), run_key, KIND)
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
        from hwml.speaker_id import identify

        if not audio:
            raise HwmlError("record or upload a clip above first")
        entry = task_run(self.ctx, session_of(request), run_key, KIND)
        ranked = identify(entry.path, enrolled or [], Path(audio))
        return pd.DataFrame([(n, round(s, 4)) for n, s in ranked], columns=["speaker", "cosine similarity"])
