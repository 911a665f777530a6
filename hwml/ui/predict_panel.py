"""The Predict panel both task tabs share: pick a run, give it audio (upload or microphone) or
feature files / a course test folder zip, and get a summary, a figure, a table and the CSV.

The panel runs `hwml.api.predict_run`; each task's subclass only turns the result into
what it shows (`show_audio`, `show_files`) and may add components of its own (`add_extras`,
inputs that go with the audio: `add_audio_inputs`, and more downloads: `add_downloads`).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from hwml import timing
from hwml.ui.lang import L
from hwml.ui.who_is_speaking import localized_headers
from hwml.ui.widgets import (
    NO_RUNS_NOTE,
    AppContext,
    check_request_files,
    run_picker,
    session_of,
    task_run,
    ui_error,
    user_errors,
)

PREDICT_QUEUE = "predict"  # one Gradio concurrency group for every prediction event of the app


class PredictPanel:
    kind: str  # "phoneme" | "speaker"
    files_label: str  # the feature-file upload's label
    figure_label: str
    figure_id: str  # elem_id suffix of the figure: "{kind}-predict-{figure_id}"
    table_headers: list[str]
    table_header_keys: list[str]  # the headers' catalogue keys (hwml.i18n): the table is redrawn per language
    table_label: str

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        kind = self.kind
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                self.run = run_picker(ctx, kind, elem_id=f"{kind}-predict-run")
                self.audio = gr.Audio(
                    type="filepath",
                    sources=["upload", "microphone"],
                    label=L("predict.audio"),
                    elem_id=f"{kind}-predict-audio",
                )
                self.audio_inputs = self.add_audio_inputs()
                self.add_examples()
                self.files = gr.File(
                    label=self.files_label, file_count="multiple", file_types=[".npy", ".pt", ".zip"], type="filepath"
                )
                self.files_button = gr.Button(L("predict.files_button"), variant="primary")
                gr.Markdown(NO_RUNS_NOTE)
            with gr.Column(scale=2):
                self.summary = gr.Markdown(elem_id=f"{kind}-predict-summary")
                self.figure = self.make_figure(elem_id=f"{kind}-predict-{self.figure_id}")
                self.table = ctx.localized.table(
                    gr.Dataframe(
                        headers=self.table_headers,
                        label=self.table_label,
                        interactive=False,
                        max_height=320,
                        elem_id=f"{kind}-predict-table",
                    ),
                    self.table_header_keys,
                )
                self.csv = gr.File(label="CSV", interactive=False, elem_id=f"{kind}-predict-csv")
                self.extra_outputs = self.add_downloads()
        self.add_extras()
        self.outputs = outputs = [self.summary, self.figure, self.table, self.csv, *self.extra_outputs]
        # every prediction of the app shares one pool of workers, sized to the machine (see JobLimits)
        queue = {"concurrency_id": PREDICT_QUEUE, "concurrency_limit": ctx.jobs.limits.predict_workers}
        audio_event = self.audio.change(
            self.predict_audio,
            [self.run, self.audio, *self.audio_inputs],
            outputs,
            api_name=f"{kind}_predict_audio",
            trigger_mode="always_last",
            **queue,
        )
        self.after_predict(audio_event)
        self.after_predict(
            self.files_button.click(
                self.predict_files, [self.run, self.files], outputs, api_name=f"{kind}_predict_files", **queue
            )
        )
        self.wire_extras()

    def make_figure(self, elem_id: str):
        """The output component of the picture (a task may show a cheaper one than a figure)."""
        return gr.Plot(label=self.figure_label, elem_id=elem_id)

    def add_audio_inputs(self) -> list:
        """Components under the audio input that `predict_audio` takes after the run and the
        audio (the phoneme task's transcript); API inputs, so they come last, with defaults."""
        return []

    def example_rows(self) -> list[list[str]]:
        """Rows of gr.Examples for [audio, *audio inputs]: the shipped clips (none by default)."""
        return []

    example_header_keys = ["predict.example_clip"]  # catalogue keys of the examples' column headers

    def add_examples(self) -> None:
        """The real clips of assets/clips under the audio: a click fills the audio (and the
        transcript), whose change event predicts with the run picked now. Not cached: the result
        depends on the run chooser, which is not an input of the examples (Who is speaking? does
        the same)."""
        rows = self.example_rows()
        if not rows:
            return
        examples = gr.Examples(
            rows,
            [self.audio, *self.audio_inputs],
            label=L("predict.examples"),
            examples_per_page=15,
            elem_id=f"{self.kind}-predict-examples",
        )
        localized_headers(self.ctx, examples, self.example_header_keys, [row[0] for row in rows])

    def add_extras(self) -> None:
        """Components below the panel (the speaker task's enrolment)."""

    def add_downloads(self) -> list:
        """Components under the CSV (the phoneme task's TextGrid); returns the extra outputs that
        `show_audio` and `show_files` give after the four (gr.State only: the API's outputs stay
        the four), which `after_predict` turns into what the page shows."""
        return []

    def after_predict(self, event) -> None:
        """Chain onto a prediction event (`event.then(...)`): show the extra outputs."""

    def audio_options(self, out: Path) -> dict:
        """Keyword arguments of `hwml.api.predict_run` for a recording (the phoneme task's
        TextGrid folder); `out` is the request's CSV path."""
        return {}

    def blank(self) -> tuple:
        """What every output shows when there is nothing to predict."""
        return ("", None, None, None, *(None for _ in self.extra_outputs))

    def wire_extras(self) -> None:
        """Events of the extra components (`self.outputs`: the panel's four outputs)."""

    def _target(self, run_key, request: gr.Request):
        """The picked run (checked to be of this task) and a fresh CSV path in the session's folder."""
        entry = task_run(self.ctx, session_of(request), run_key, self.kind)
        return entry, self.ctx.workspace.new_output_dir(session_of(request)) / "predictions.csv"

    @user_errors
    def predict_audio(self, run_key, audio, request: gr.Request):
        """Predict one recording (upload or microphone)."""
        if not audio:
            return self.blank()
        from hwml.api import predict_run

        with timing.request(f"{self.kind}_predict_audio"):
            entry, out = self._target(run_key, request)
            summary = predict_run(entry.path, [audio], out, fsync=False, **self.audio_options(out))
            with timing.stage("figure"):
                return self.show_audio(entry, audio, summary)

    @user_errors
    def predict_files(self, run_key, files, request: gr.Request):
        """Predict feature files (one row per frame or file) or a course test folder zip (the
        submission CSV)."""
        from hwml.api import predict_run

        entry, out = self._target(run_key, request)
        if not files:
            raise ui_error(request, "predict.no_files")
        files = check_request_files(files)  # before any is read
        return self.show_files(entry, predict_run(entry.path, [Path(f) for f in files], out, fsync=False))

    def show_audio(self, entry, audio: str, summary: dict) -> tuple:
        """(summary markdown, figure, table, CSV path, *extra outputs) of a predicted recording."""
        raise NotImplementedError

    def show_files(self, entry, summary: dict) -> tuple:
        """(summary markdown, figure, table, CSV path, *extra outputs) of predicted files."""
        raise NotImplementedError
