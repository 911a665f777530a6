"""The Speaker (HW4) tab's Predict panel: the top-5 of the speakers a run was trained on for a
recording (upload or microphone) or feature files, with their probabilities, what those speakers
are (`hwml.serve.who_is_speaking.run_note`), and the CSV (the course's `Id,Category` for a test
folder). Anybody else is the "Who is speaking?" sub-tab's (hwml/ui/who_is_speaking.py).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from hwml.errors import HwmlError
from hwml.i18n import t
from hwml.serve import who_is_speaking as who
from hwml.serve.predict_examples import speaker_examples
from hwml.ui.lang import L, current_lang, lang_of
from hwml.ui.predict_panel import PredictPanel
from hwml.ui.widgets import session_of, task_run

KIND = "speaker"


def top_k_table(row: pd.Series) -> pd.DataFrame:
    """The top1/p1 ... topK/pK columns of one predictions-CSV row as (rank, speaker, probability)."""
    out = []
    k = 1
    while f"top{k}" in row.index:
        out.append((k, str(row[f"top{k}"]), float(row[f"p{k}"])))
        k += 1
    return pd.DataFrame(out, columns=["rank", "speaker", "probability"])


def top_k_bars(top: pd.DataFrame) -> gr.BarPlot:
    """The bar plot's data, axis titles in the session's language: the browser draws it, the
    server sends five numbers."""
    lang = current_lang()
    return gr.BarPlot(
        top[["speaker", "probability"]], x_title=t("col.speaker", lang), y_title=t("col.probability", lang)
    )


class SpeakerPredictPanel(PredictPanel):
    kind = KIND
    files_label = L("predict.speaker.files")
    figure_label, figure_id = L("predict.speaker.figure"), "bars"
    table_headers, table_label = ["rank", "speaker", "probability"], L("predict.speaker.table")
    table_header_keys = ["col.rank", "col.speaker", "col.probability"]

    def make_figure(self, elem_id: str):
        """Drawn in the browser: a class pressing Predict together costs the server no figures."""
        return gr.BarPlot(
            x="speaker",
            y="probability",
            sort="-y",
            y_lim=[0, 1],
            label=self.figure_label,
            elem_id=elem_id,
            height=240,
            x_label_angle=0,
        )

    def example_rows(self):
        return speaker_examples()

    def add_audio_inputs(self) -> list:
        """Under the audio: what this run's classes are (no inputs of its own)."""
        self.about = gr.Markdown(elem_id="speaker-predict-about")  # filled on page load, in the session's language
        self.ctx.localized.add(self.about, lambda lang: self.first_note(lang))
        return []

    def first_note(self, lang: str = "en") -> str:
        """The note for the run the picker starts on (called on every page load)."""
        first = self.ctx.workspace.shipped_runs(KIND)
        return who.run_note(first[0].path, lang) if first else ""

    def wire_extras(self) -> None:
        self.run.change(self.note, self.run, self.about, api_visibility="private", queue=False)

    def note(self, run_key, request: gr.Request):
        try:
            return who.run_note(task_run(self.ctx, session_of(request), run_key, KIND).path, lang_of(request))
        except HwmlError:
            return ""

    def show_audio(self, entry, audio, summary):
        row = pd.read_csv(summary["out"], dtype=str).iloc[0]
        top = top_k_table(row)
        text = t(
            "predict.speaker.audio_summary",
            current_lang(),
            speaker=row["Category"],
            p=f"{top['probability'].iloc[0]:.1%}",
            run=entry.path.name,
        )
        return text, top_k_bars(top), top, summary["out"]

    def show_files(self, entry, summary):
        table = pd.read_csv(summary["out"], dtype=str)
        if summary.get("format") == "submission":
            text = t("predict.speaker.submission", current_lang(), rows=f"{summary['rows']:,}", run=entry.path.name)
            return text, None, table.head(200), summary["out"]
        table["Id"] = table["Id"].map(lambda p: Path(p).name)
        top = top_k_table(table.iloc[0])
        text = t(
            "predict.speaker.files_summary",
            current_lang(),
            n=len(table),
            first=table["Category"].iloc[0],
            run=entry.path.name,
        )
        return text, top_k_bars(top), table, summary["out"]
