"""The Learn tab: a classroom walkthrough, one section per step, each with a live example.

Every example is computed by `hwml.lessons` (or the same hwml functions the app trains with)
when its button is pressed; this module only lays the sections out.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from hwml.i18n import t
from hwml.serve.predict_examples import speaker_examples
from hwml.ui.lang import L, lang_of
from hwml.ui.train_panel import TRAINING_QUEUE
from hwml.ui.who_is_speaking import localized_headers
from hwml.ui.widgets import AppContext, run_picker, session_of, task_run, ui_error, user_errors

PRESET_COLUMNS = ["preset", "why", "settings (vs simple)"]
PRESET_KEYS = ["col.preset", "col.why", "col.settings"]
COMPARE_KEYS = ["col.preset", "col.kind", "col.valid_acc", "col.steps", "col.seconds"]
FORMAT_KEYS = ["col.folder", "col.file", "col.holds", "col.peek"]
ALIGN_COLUMNS = {
    "start": "col.start",
    "end": "col.end",
    "word": "col.word",
    "aligned": "col.aligned",
    "eSpeak": "col.espeak",
    "agree": "col.agree",
}


class LearnTab:
    def __init__(self, ctx: AppContext):
        from hwml.lessons.alignment import ALIGN_EXAMPLES
        from hwml.lessons.features import EXAMPLE_SENTENCE
        from hwml.lessons.pitfalls import PITFALLS

        self.ctx = ctx
        table = ctx.localized.table
        gr.Markdown(L("learn.formats"))
        self.formats_button = gr.Button(L("learn.formats_button"), elem_id="learn-formats")
        self.formats = table(
            gr.Dataframe(
                headers=["folder", "file", "holds", "peek"],
                interactive=False,
                max_height=360,
                label=L("learn.formats_table"),
            ),
            FORMAT_KEYS,
        )
        self.formats_button.click(self.show_formats, None, self.formats, api_name="learn_formats")

        gr.Markdown(L("learn.features"))
        with gr.Row():
            self.sentence = gr.Textbox(EXAMPLE_SENTENCE, label=L("learn.sentence"), scale=4)
            self.features_button = gr.Button(
                L("learn.features_button"), variant="primary", scale=1, elem_id="learn-features"
            )
        self.utterance = gr.Audio(label=L("learn.utterance"), interactive=False)
        self.wave_plot = gr.Plot(label=L("learn.waveform"))
        self.features_plot = gr.Plot(label=L("learn.features_plot"), elem_id="learn-features-plot")
        self.features_button.click(
            self.show_features,
            self.sentence,
            [self.utterance, self.wave_plot, self.features_plot],
            api_name="learn_features",
        )

        with gr.Row():
            self.clip = gr.Audio(type="filepath", sources=["upload"], label=L("learn.clip"), elem_id="learn-clip")
        clips = speaker_examples()
        if clips:
            clip_examples = gr.Examples(
                clips, [self.clip], label=L("learn.clip_examples"), elem_id="learn-clip-examples"
            )
            localized_headers(ctx, clip_examples, ["predict.example_clip"], [row[0] for row in clips])
        self.clip.change(
            self.show_clip_features, self.clip, [self.wave_plot, self.features_plot], api_name="learn_clip_features"
        )

        gr.Markdown(L("learn.align"))
        with gr.Row(equal_height=True):
            with gr.Column(scale=3):
                self.align_run = run_picker(ctx, "phoneme", elem_id="learn-align-run")
            self.align_example = gr.Slider(1, ALIGN_EXAMPLES, value=1, step=1, label=L("learn.align_example"), scale=2)
            self.align_button = gr.Button(L("learn.align_button"), variant="primary", scale=2, elem_id="learn-align")
        self.align_summary = gr.Markdown(elem_id="learn-align-summary")
        self.align_audio = gr.Audio(label=L("learn.align_audio"), interactive=False)
        self.viterbi_plot = gr.Plot(label=L("learn.viterbi_plot"), elem_id="learn-viterbi-plot")
        self.align_strips = gr.Plot(label=L("learn.align_strips"), elem_id="learn-align-strips")
        self.align_table = gr.Dataframe(
            label=L("learn.align_table"), interactive=False, max_height=320, elem_id="learn-align-table"
        )
        align_outputs = [self.align_summary, self.align_audio, self.viterbi_plot, self.align_strips, self.align_table]
        self.align_button.click(
            self.show_alignment, [self.align_run, self.align_example], align_outputs, api_name="learn_alignment"
        )
        gr.Markdown(L("learn.align_own"))
        with gr.Row():
            self.own_audio = gr.Audio(
                type="filepath",
                sources=["upload", "microphone"],
                label=L("learn.own_audio"),
                elem_id="learn-align-own-audio",
            )
            with gr.Column():
                self.own_text = gr.Textbox(
                    label=L("predict.transcript"),
                    elem_id="learn-align-own-text",
                    placeholder=L("learn.own_text_placeholder"),
                )
                self.own_button = gr.Button(L("learn.own_button"), elem_id="learn-align-own")
        self.own_button.click(
            self.align_own, [self.align_run, self.own_audio, self.own_text], align_outputs, api_name="learn_align_own"
        )

        gr.Markdown(L("learn.presets"))
        self.presets_button = gr.Button(L("learn.presets_button"), elem_id="learn-presets")
        with gr.Row():
            self.phoneme_presets = table(
                gr.Dataframe(headers=PRESET_COLUMNS, label=L("learn.phoneme_presets"), interactive=False, wrap=True),
                PRESET_KEYS,
            )
            self.speaker_presets = table(
                gr.Dataframe(headers=PRESET_COLUMNS, label=L("learn.speaker_presets"), interactive=False, wrap=True),
                PRESET_KEYS,
            )
        self.presets_button.click(
            self.show_presets, None, [self.phoneme_presets, self.speaker_presets], api_name="learn_presets"
        )

        gr.Markdown(L("learn.compare"))
        self.compare_button = gr.Button(L("learn.compare_button"), elem_id="learn-compare")
        self.compare = table(
            gr.Dataframe(
                headers=["preset", "kind", "valid accuracy", "steps", "seconds"],
                interactive=False,
                label=L("learn.compare_table"),
            ),
            COMPARE_KEYS,
        )
        self.compare_button.click(
            self.run_comparison,
            None,
            self.compare,
            api_name="learn_compare",
            concurrency_limit=ctx.jobs.limits.max_training,
            concurrency_id=TRAINING_QUEUE,
        )

        gr.Markdown(L("learn.pitfalls"))
        for pitfall in PITFALLS:
            n = pitfall.number
            with gr.Accordion(L(f"pitfall.{n}.heading"), open=False):
                gr.Markdown(L(f"pitfall.{n}.body"))
                button = gr.Button(L("learn.show_it"), size="sm", elem_id=f"learn-pitfall-{n}")
                headline = gr.Markdown()
                result = gr.Dataframe(interactive=False, wrap=True, visible=False)
                button.click(self._pitfall_handler(n), None, [headline, result], api_name=f"learn_pitfall_{n}")

        gr.Markdown(L("learn.lookahead"))
        with gr.Row(equal_height=True):
            with gr.Column(scale=3):
                self.lookahead_run = run_picker(ctx, "phoneme", elem_id="learn-lookahead-run")
            self.lookahead_button = gr.Button(L("learn.lookahead_button"), scale=2, elem_id="learn-lookahead")
        self.lookahead = gr.Dataframe(interactive=False, elem_id="learn-lookahead-table")
        self.lookahead_button.click(self.show_lookahead, self.lookahead_run, self.lookahead, api_name="learn_lookahead")

    def show_presets(self, request: gr.Request):
        """Each task's presets: what each adds to `simple`, and why (in the session's language)."""
        from hwml.lessons.presets import preset_table

        lang = lang_of(request)
        return tuple(pd.DataFrame(preset_table(k, lang)) for k in ("phoneme", "speaker"))

    @user_errors
    @user_errors
    def show_lookahead(self, run_key, request: gr.Request):
        from hwml.lessons.lookahead import lookahead_table

        entry = task_run(self.ctx, session_of(request), run_key, "phoneme")
        return pd.DataFrame(lookahead_table(entry.path, lang=lang_of(request)))

    def show_formats(self, request: gr.Request):
        from hwml.lessons.formats import describe_course_folder

        lang = lang_of(request)
        root = self.ctx.workspace.corpus.path()
        frames = []
        for folder in ("timit_11", "libriphone", "speaker"):
            rows = describe_course_folder(root / folder, max_files=6, lang=lang)
            frames.append(pd.DataFrame([{"folder": folder, **r} for r in rows]))
        table = pd.concat(frames, ignore_index=True)
        table.columns = [t(k, lang) for k in FORMAT_KEYS]
        return table

    @user_errors
    def show_features(self, sentence, request: gr.Request):
        from hwml.lessons.features import example_utterance, feature_views
        from hwml.ui import figures

        lang = lang_of(request)
        sentence = (sentence or "").strip()
        if not sentence or len(sentence) > 300:
            raise ui_error(request, "learn.sentence_error")
        utt = example_utterance(sentence)
        views = feature_views(utt.wave)
        return (
            (utt.sample_rate, utt.wave.numpy()),
            figures.waveform(utt.wave.numpy(), utt.sample_rate, lang),
            figures.feature_views(views, utt.phones, lang),
        )

    @user_errors
    def show_clip_features(self, clip, request: gr.Request):
        """The features lesson on a real clip (an example of assets/clips or an upload)."""
        from hwml.audio.params import SAMPLE_RATE
        from hwml.lessons.features import clip_feature_views
        from hwml.ui import figures

        if not clip:
            return gr.skip(), gr.skip()
        lang = lang_of(request)
        wave, views = clip_feature_views(clip)
        return figures.waveform(wave.numpy(), SAMPLE_RATE, lang), figures.feature_views(views, None, lang)

    @user_errors
    def show_alignment(self, run_key, example, request: gr.Request):
        """A built-in sentence force-aligned by the picked phoneme run, beside eSpeak's exact phones."""
        from hwml.align.clip import pron_text
        from hwml.lessons.alignment import alignment_example
        from hwml.ui import figures

        lang = lang_of(request)
        entry = task_run(self.ctx, session_of(request), run_key, "phoneme")
        lesson = alignment_example(entry.path, int(example or 1))
        r = lesson.result
        strips = figures.phone_strips(
            r.logmel_times,
            r.logmel,
            [("aligned", r.phones), ("free", r.free_segments), ("eSpeak", lesson.truth_segments)],
            words=r.word_segments,
            title=f"“{lesson.text}”",
            width=14,
            lang=lang,
        )
        chain = " · ".join(f"*{w.lower()}*: {pron_text(p)}" for w, p in zip(r.words, r.prons))
        text = t(
            "learn.align_result",
            lang,
            text=lesson.text,
            voice=lesson.voice,
            run=entry.path.name,
            chain=chain,
            aligned=f"{lesson.aligned_vs_truth:.0%}",
            free=f"{lesson.free_vs_truth:.0%}",
            bounds=f"{lesson.boundaries_within_20ms:.0%}",
        )
        rows = pd.DataFrame(lesson.rows).rename(columns={k: t(v, lang) for k, v in ALIGN_COLUMNS.items()})
        return (text, (lesson.sample_rate, lesson.wave), self._viterbi_figure(r, lang), strips, rows)

    @user_errors
    def align_own(self, run_key, audio, transcript, request: gr.Request):
        """The visitor's clip and words: the Predict panel's alignment view plus the Viterbi picture."""
        from hwml.align.clip import SEGMENT_COLUMNS, align_audio
        from hwml.ui import figures

        if not audio:
            raise ui_error(request, "learn.own_error")
        lang = lang_of(request)
        entry = task_run(self.ctx, session_of(request), run_key, "phoneme")
        r = align_audio(entry.path, audio, transcript)
        fig = figures.phone_strips(
            r.logmel_times,
            r.logmel,
            [("aligned", r.phones), ("free", r.free_segments)],
            words=r.word_segments,
            width=14,
            lang=lang,
            title=t("learn.own_title", lang, file=r.file, seconds=f"{r.seconds:.2f}"),
        )
        table = pd.DataFrame(r.segment_rows(), columns=SEGMENT_COLUMNS)
        if lang != "en":
            table.columns = [t(f"col.segment.{c}", lang) for c in SEGMENT_COLUMNS]
        n_phones = sum(p != "sil" for _, _, p in r.phones)
        text = t(
            "learn.own_summary",
            lang,
            words=len(r.words),
            phones=n_phones,
            frames=len(r.aligned),
            agree=f"{r.agreement:.0%}",
            run=entry.path.name,
        )
        return text, audio, self._viterbi_figure(r, lang), fig, table

    @staticmethod
    def _viterbi_figure(r, lang: str = "en"):
        from hwml.ui import figures

        v = r.viterbi
        return figures.viterbi_path(
            r.times,
            v.logp,
            v.phones,
            v.words,
            r.words,
            v.path,
            title=t("learn.viterbi_title", lang, words=" ".join(r.words).lower(), n=v.min_frames),
            lang=lang,
        )

    @user_errors
    def run_comparison(self, request: gr.Request):
        from hwml.lessons.lecture2 import compare_models

        data = self.ctx.workspace.corpus.path() / "libriphone"
        scratch = self.ctx.workspace.scratch_dir()  # counted in the disk budget, emptied at start
        scratch.mkdir(parents=True, exist_ok=True)
        return pd.DataFrame(
            compare_models(data, max_steps=1000, max_seconds=10, out_root=scratch, lang=lang_of(request))
        )

    def _pitfall_handler(self, number: int):
        @user_errors
        def show(request: gr.Request):
            from hwml.lessons.pitfalls import run_pitfall_demo

            dataset = None
            if number == 5:
                from hwml.data import load_dataset

                dataset = load_dataset(self.ctx.workspace.corpus.path() / "libriphone")
            result = run_pitfall_demo(number, dataset, lang_of(request))
            return result.headline, gr.update(value=pd.DataFrame(result.rows), visible=True)

        show.__name__ = f"pitfall_{number}"
        return show
