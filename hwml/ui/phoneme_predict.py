"""The Phoneme (HW2) tab's Predict panel: frame-wise phones, and a forced alignment with a transcript.

Predict takes feature files (.npy/.pt), a course test folder (zip) or audio (upload or
microphone); audio gets its predicted phones as a strip aligned under its spectrogram plus
the segments table, and every prediction a CSV (the course's `Id,Class` for a test folder).
Audio with a typed transcript is also force-aligned (`hwml.align.clip.align_audio`): two strips,
the alignment and the free prediction, the aligned phones in the table (columns
`hwml.align.clip.SEGMENT_COLUMNS`) and the frame labels in the CSV (`hwml.align.clip.FRAME_COLUMNS`).
Every recording also gets a Praat TextGrid to download (`hwml.data.textgrid`): the predicted
phones (`phones`), or with a transcript the words, the aligned phones and the free prediction
(`words`, `phones`, `predicted`). It travels in a gr.State and a chained event shows it, so the
API's outputs stay the panel's four.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from hwml import timing
from hwml.i18n import t
from hwml.serve.predict_examples import phoneme_examples
from hwml.ui.lang import L, current_lang, lang_of
from hwml.ui.predict_panel import PredictPanel
from hwml.ui.widgets import user_errors

KIND = "phoneme"


class PhonemePredictPanel(PredictPanel):
    kind = KIND
    files_label = L("predict.phoneme.files")
    figure_label, figure_id = L("predict.phoneme.figure"), "strip"
    table_headers, table_label = ["start", "end", "phone"], L("predict.phoneme.table")
    table_header_keys = ["col.start", "col.end", "col.phone"]

    def make_figure(self, elem_id: str):
        """A plain image (hwml.ui.strip_image): a class pressing Predict together cannot wait for
        a matplotlib figure per student."""
        return gr.Image(label=self.figure_label, elem_id=elem_id, type="filepath", interactive=False, show_label=True)

    def add_audio_inputs(self):
        with gr.Row():
            self.transcript = gr.Textbox(
                "",
                label=L("predict.transcript"),
                scale=4,
                elem_id="phoneme-predict-transcript",
                placeholder=L("predict.transcript_placeholder"),
            )
            self.audio_button = gr.Button(
                L("predict.audio_button"), scale=1, min_width=110, elem_id="phoneme-predict-audio-button"
            )
        return [self.transcript]

    example_header_keys = ["predict.example_clip", "predict.transcript"]

    def example_rows(self):
        return phoneme_examples()

    def add_downloads(self):
        self.textgrid = gr.File(
            label=L("predict.phoneme.textgrid"), interactive=False, elem_id="phoneme-predict-textgrid"
        )
        self.textgrid_path = gr.State(None)
        return [self.textgrid_path]

    def after_predict(self, event):
        event.then(lambda path: path, [self.textgrid_path], [self.textgrid], queue=False, api_visibility="private")

    def audio_options(self, out: Path) -> dict:
        return {"textgrid_dir": out.parent}

    def wire_extras(self):
        inputs = [self.run, self.audio, self.transcript]
        self.after_predict(
            self.audio_button.click(self.predict_audio_again, inputs, self.outputs, api_visibility="private")
        )
        self.after_predict(
            self.transcript.submit(self.predict_audio_again, inputs, self.outputs, api_visibility="private")
        )

    @user_errors
    def predict_audio(self, run_key, audio, transcript, request: gr.Request):
        """Predict one recording; with a transcript, force-align it too."""
        if not audio or not (transcript or "").strip():
            return PredictPanel.predict_audio(self, run_key, audio, request)
        from hwml.align.clip import FRAME_COLUMNS, align_audio, write_frames_csv
        from hwml.data.textgrid import write_textgrid

        with timing.request("phoneme_predict_audio"):
            entry, out = self._target(run_key, request)
            result = align_audio(entry.path, audio, transcript)
            with timing.stage("csv"):
                write_frames_csv(result, out)
            with timing.stage("textgrid"):
                tiers = {"words": result.word_segments, "phones": result.phones, "predicted": result.free_segments}
                grid = write_textgrid(out.with_name(Path(audio).stem + ".TextGrid"), tiers, result.seconds, fsync=False)
            with timing.stage("figure"):
                fig, table, text = alignment_view(result, out.with_suffix(".jpg"))
        text += t(
            "predict.phoneme.align_tail",
            current_lang(),
            run=entry.path.name,
            free=",".join(FRAME_COLUMNS[:5]),
            labels=",".join(FRAME_COLUMNS[5:]),
        )
        return text, fig, table, str(out), str(grid)

    def predict_audio_again(self, run_key, audio, transcript, request: gr.Request):
        """The button / Enter: as an upload does, but says so when there is no audio yet."""
        if not audio:
            raise gr.Error(t("predict.no_audio", lang_of(request)), print_exception=False)
        return self.predict_audio(run_key, audio, transcript, request)

    def show_audio(self, entry, audio, summary):
        """Phones of one recording: strip under its spectrogram, segments, per-frame CSV."""
        from hwml.audio.decode import load_audio
        from hwml.audio.features import logmel40
        from hwml.audio.frames import frame_times
        from hwml.audio.params import LOGMEL40, FeatureParams
        from hwml.machine import single_thread
        from hwml.ui.strip_image import phone_strips_image, save_jpeg

        segs = summary["files"][0]["segments"]
        wave = load_audio(audio)
        with single_thread():
            spec = logmel40(wave, LOGMEL40)
        times = frame_times(len(spec), FeatureParams(kind="logmel40")).numpy()
        fig = save_jpeg(phone_strips_image(times, spec.numpy(), [("", segs)]), Path(summary["out"]).with_suffix(".jpg"))
        table = pd.DataFrame(segs, columns=["start", "end", "phone"])
        text = t(
            "predict.phoneme.audio_summary",
            current_lang(),
            frames=summary["files"][0]["frames"],
            n=len(segs),
            run=entry.path.name,
        )
        return text, fig, table, summary["out"], summary["files"][0].get("textgrid")

    def show_files(self, entry, summary):
        """Feature files (segments of the first) or a course test folder (the submission CSV)."""
        if summary.get("kind") == "submission":
            preview = pd.read_csv(summary["out"], nrows=200, dtype=str)
            text = t(
                "predict.phoneme.submission",
                current_lang(),
                rows=f"{summary['rows']:,}",
                format=summary.get("format", ""),
                run=entry.path.name,
            )
            return text, None, preview, summary["out"], None
        first = summary["files"][0]
        table = pd.DataFrame(first["segments"], columns=["start", "end", "phone"])
        text = t(
            "predict.phoneme.files_summary",
            current_lang(),
            n=len(summary["files"]),
            rows=f"{summary['rows']:,}",
            file=Path(first["file"]).name,
            run=entry.path.name,
        )
        return text, None, table, summary["out"], None


def alignment_view(result, image: Path):
    """(picture path, table, summary markdown) of a `hwml.align.clip.ClipAlignment`: the spectrogram
    with the words, the forced alignment and the free prediction under it (hwml.ui.strip_image,
    written to `image`), one table row per aligned phone."""
    from hwml.align.clip import SEGMENT_COLUMNS
    from hwml.ui.strip_image import phone_strips_image, save_jpeg

    lang = current_lang()
    strips = [(t("fig.strip.aligned", lang), result.phones), (t("fig.strip.free", lang), result.free_segments)]
    fig = save_jpeg(
        phone_strips_image(
            result.logmel_times, result.logmel, strips, words=result.word_segments, words_label=t("fig.words", lang)
        ),
        image,
    )
    table = pd.DataFrame(result.segment_rows(), columns=SEGMENT_COLUMNS)
    n_phones = sum(p != "sil" for _, _, p in result.phones)
    text = t(
        "predict.phoneme.alignment",
        current_lang(),
        words=len(result.words),
        phones=n_phones,
        frames=len(result.aligned),
        agree=f"{result.agreement:.0%}",
    )
    return fig, table, text
