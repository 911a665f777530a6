"""The Learn tab: a classroom walkthrough, one section per step, each with a live example.

Every example is computed by `hwml.lessons` (or the same hwml functions the app trains with)
when its button is pressed; this module only lays the sections out.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from hwml.ui.train_panel import TRAINING_QUEUE
from hwml.ui.widgets import AppContext, run_picker, session_of, task_run, user_errors

PRESET_COLUMNS = ["preset", "why", "settings (vs simple)"]

FORMATS_TEXT = """
### 1. The course's data formats
Both homeworks ship **features, not audio**, in folders hwml reads and writes exactly:

* **HW2 2021, `timit_11/`**: `train_11.npy` float32 (N, 429) = 11 frames x 39 MFCC features centred on the
  labelled frame; `train_label_11.npy` label *strings* `'0'..'38'`; `test_11.npy`. No utterance boundaries.
* **HW2 2022/23, `libriphone/`**: one `feat/train/<utt>.pt` tensor (T, 39) per utterance,
  `train_labels.txt` (`<utt> <label> <label> ...`, 41 classes), `train_split.txt`, `test_split.txt`. The
  model input is each frame with its neighbours (`concat_nframes`), edges repeated.
* **HW4, `Dataset/`**: `mapping.json` (speaker <-> id), `metadata.json` (per speaker: `feature_path`,
  `mel_len`), `testdata.json`, and one `uttr-*.pt` tensor (T, 40) of log-mel frames per utterance.

The built-in corpus is written in all three. Press the button to look inside it.
"""

FEATURES_TEXT = """
### 2. From audio to features
A microphone gives pressure samples. hwml resamples to 16 kHz, cuts 25 ms windows every 10 ms, and takes
each window's power spectrum. **40 mel filters** summarise it the way the ear spaces pitch (HW4's log-mel
features); a DCT of their logs keeps **13 MFCCs**, plus their change over time (deltas and delta-deltas):
HW2's **39**. Type a sentence: the built-in synthesiser speaks it and every stage is drawn.
"""

ALIGN_TEXT = """
### 3. From transcripts to frame labels
HW2 gives every 10 ms frame a phone label. Nobody labels frames by hand: TIMIT's phoneticians marked where each
phone starts, and most speech (LibriSpeech, your own recordings) comes with the **words** only. **Forced
alignment** turns the words into frame labels, using a phone model you already have:

1. **Text → words.** Case and punctuation go, hyphenated words split, numbers are spelled out (42 → FORTY TWO).
2. **Words → phones.** The CMU Pronouncing Dictionary gives each word's phones (WATER → W AO1 T ER0). The stress
   digits go and the phones fold to HW2's **39 classes** (AO → aa). Where people often say it differently, both
   are kept: the T of *water* may be a flap (dx), a reduced vowel either schwa.
3. **Phones → a chain.** The phones in order, each lasting at least **3 frames** (30 ms), with an **optional
   silence** between words (you may or may not pause) and before each stop (TIMIT labels a stop's closure as
   silence).
4. **Viterbi.** The model scores every frame: a log-posterior for each phone. Viterbi (dynamic programming) finds
   the one path down the chain, never going back and never skipping a phone, whose frames score highest in total.
   The transcript fixes *which* phones come; the model only decides *where* each one starts and ends.

The picture: one row per phone of the chain, read top to bottom; time runs left to right; bright = the model
finds that row's phone likely at that frame. The red line is the best path; grey rows are optional silences and
alternatives it skipped. Below it: the aligned phones, the model's own frame-by-frame guess (free), and the
phones eSpeak really used, known exactly because the built-in corpus synthesised the sentence.
"""

ALIGN_OWN_TEXT = """
#### Try your own sentence
Record or upload a clip and type what is said: the same run aligns it (the Phoneme tab's Predict does the same
and gives the frame labels as a CSV). A word the dictionary does not know is named: spell it the way it sounds.
"""

PRESETS_TEXT = """
### 4. The models: what each preset adds, and why
Each preset is a named set of settings (`--set key=value` changes any of them). `simple` is the course's sample
code, kept as the reference; each step up adds one idea.
"""

COMPARE_TEXT = """
### 5. Generative vs discriminative (Lecture 2)
A **generative** classifier models how each class produces its data, p(x | class), here one Gaussian per phone
with one shared covariance, and turns that into p(class | x) by Bayes' rule: fitted in closed form, no training
loop. **Logistic regression** has exactly the same linear decision boundaries but learns them directly by
gradient descent. A **deep** model learns non-linear features as well. Same frames, a few seconds each, side
by side. With so little time the closed-form model is hard to beat: it needs one pass over the data, while the
deep model needs minutes of training (try it in the Train panel) before its extra capacity pays off.
"""

PITFALLS_TEXT = """
### 6. Ten defects of the course's sample code
Each one is run here, defective version next to the fix, on small tensors: the numbers are computed now.
"""


class LearnTab:
    def __init__(self, ctx: AppContext):
        from hwml.lessons import ALIGN_EXAMPLES, EXAMPLE_SENTENCE, PITFALLS, preset_table

        self.ctx = ctx
        gr.Markdown(FORMATS_TEXT)
        self.formats_button = gr.Button("Look inside the built-in corpus", elem_id="learn-formats")
        self.formats = gr.Dataframe(headers=["folder", "file", "holds", "peek"], interactive=False, max_height=360,
                                    label="Files of the built-in corpus")
        self.formats_button.click(self.show_formats, None, self.formats, api_name="learn_formats")

        gr.Markdown(FEATURES_TEXT)
        with gr.Row():
            self.sentence = gr.Textbox(EXAMPLE_SENTENCE, label="Sentence", scale=4)
            self.features_button = gr.Button("Speak and analyse", variant="primary", scale=1,
                                             elem_id="learn-features")
        self.utterance = gr.Audio(label="The synthesised utterance (16 kHz)", interactive=False)
        self.wave_plot = gr.Plot(label="Waveform")
        self.features_plot = gr.Plot(label="Spectrogram -> log-mel -> MFCC", elem_id="learn-features-plot")
        self.features_button.click(self.show_features, self.sentence,
                                   [self.utterance, self.wave_plot, self.features_plot], api_name="learn_features")

        gr.Markdown(ALIGN_TEXT)
        with gr.Row(equal_height=True):
            with gr.Column(scale=3):
                self.align_run = run_picker(ctx, "phoneme", elem_id="learn-align-run")
            self.align_example = gr.Slider(1, ALIGN_EXAMPLES, value=1, step=1, label="Built-in sentence", scale=2)
            self.align_button = gr.Button("Align a built-in sentence", variant="primary", scale=2,
                                          elem_id="learn-align")
        self.align_summary = gr.Markdown(elem_id="learn-align-summary")
        self.align_audio = gr.Audio(label="The sentence", interactive=False)
        self.viterbi_plot = gr.Plot(label="Viterbi: the best path through the transcript's phones",
                                    elem_id="learn-viterbi-plot")
        self.align_strips = gr.Plot(label="Words, aligned phones, free prediction (and eSpeak's phones)",
                                    elem_id="learn-align-strips")
        self.align_table = gr.Dataframe(label="One row per aligned phone", interactive=False, max_height=320,
                                        elem_id="learn-align-table")
        align_outputs = [self.align_summary, self.align_audio, self.viterbi_plot, self.align_strips, self.align_table]
        self.align_button.click(self.show_alignment, [self.align_run, self.align_example], align_outputs,
                                api_name="learn_alignment")
        gr.Markdown(ALIGN_OWN_TEXT)
        with gr.Row():
            self.own_audio = gr.Audio(type="filepath", sources=["upload", "microphone"], label="Your clip",
                                      elem_id="learn-align-own-audio")
            with gr.Column():
                self.own_text = gr.Textbox(label="Transcript (words)", elem_id="learn-align-own-text",
                                           placeholder="the words spoken in the clip")
                self.own_button = gr.Button("Align my clip", elem_id="learn-align-own")
        self.own_button.click(self.align_own, [self.align_run, self.own_audio, self.own_text], align_outputs,
                              api_name="learn_align_own")

        gr.Markdown(PRESETS_TEXT)
        self.presets_button = gr.Button("Show the presets", elem_id="learn-presets")
        with gr.Row():
            self.phoneme_presets = gr.Dataframe(headers=PRESET_COLUMNS, label="Phoneme presets (HW2)",
                                                interactive=False, wrap=True)
            self.speaker_presets = gr.Dataframe(headers=PRESET_COLUMNS, label="Speaker presets (HW4)",
                                                interactive=False, wrap=True)
        self.presets_button.click(lambda: tuple(pd.DataFrame(preset_table(k)) for k in ("phoneme", "speaker")), None,
                                  [self.phoneme_presets, self.speaker_presets], api_name="learn_presets")

        gr.Markdown(COMPARE_TEXT)
        self.compare_button = gr.Button("Train the three briefly on the built-in corpus (about half a minute)",
                                        elem_id="learn-compare")
        self.compare = gr.Dataframe(headers=["preset", "kind", "valid accuracy", "steps", "seconds"], interactive=False,
                                    label="Validation accuracy on the same frames")
        self.compare_button.click(self.run_comparison, None, self.compare, api_name="learn_compare",
                                  concurrency_limit=ctx.jobs.limits.max_training, concurrency_id=TRAINING_QUEUE)

        gr.Markdown(PITFALLS_TEXT)
        for pitfall in PITFALLS:
            with gr.Accordion(f"{pitfall.number}. {pitfall.title}", open=False):
                gr.Markdown(f"**Defect.** {pitfall.defect}\n\n**Effect.** {pitfall.effect}\n\n**Fix.** {pitfall.fix}")
                button = gr.Button("Show it", size="sm", elem_id=f"learn-pitfall-{pitfall.number}")
                headline = gr.Markdown()
                table = gr.Dataframe(interactive=False, wrap=True, visible=False)
                button.click(self._pitfall_handler(pitfall.number), None, [headline, table],
                             api_name=f"learn_pitfall_{pitfall.number}")

    @user_errors
    def show_formats(self):
        from hwml.lessons import describe_course_folder

        root = self.ctx.workspace.corpus.path()
        frames = []
        for folder in ("timit_11", "libriphone", "speaker"):
            rows = describe_course_folder(root / folder, max_files=6)
            frames.append(pd.DataFrame([{"folder": folder, **r} for r in rows]))
        return pd.concat(frames, ignore_index=True)

    @user_errors
    def show_features(self, sentence):
        from hwml.errors import HwmlError
        from hwml.lessons import example_utterance, feature_views
        from hwml.ui import figures

        sentence = (sentence or "").strip()
        if not sentence or len(sentence) > 300:
            raise HwmlError("type a sentence of at most 300 characters")
        utt = example_utterance(sentence)
        views = feature_views(utt.wave)
        return ((utt.sample_rate, utt.wave.numpy()), figures.waveform(utt.wave.numpy(), utt.sample_rate),
                figures.feature_views(views, utt.phones))

    @user_errors
    def show_alignment(self, run_key, example, request: gr.Request):
        """A built-in sentence force-aligned by the picked phoneme run, beside eSpeak's exact phones."""
        from hwml.forced import pron_text
        from hwml.lessons import alignment_example
        from hwml.ui import figures

        entry = task_run(self.ctx, session_of(request), run_key, "phoneme")
        lesson = alignment_example(entry.path, int(example or 1))
        r = lesson.result
        strips = figures.phone_strips(r.logmel_times, r.logmel, [("aligned", r.phones), ("free", r.free_segments),
                                                                 ("eSpeak", lesson.truth_segments)],
                                      words=r.word_segments, title=f"“{lesson.text}”", width=14)
        chain = " · ".join(f"*{w.lower()}*: {pron_text(p)}" for w, p in zip(r.words, r.prons))
        text = (f"**“{lesson.text}”** (voice `{lesson.voice}`, run `{entry.path.name}`)\n\n"
                f"Dictionary phones (a/b: either; (x): may be left out; |: another pronunciation): {chain}\n\n"
                f"Frames whose aligned phone is eSpeak's: **{lesson.aligned_vs_truth:.0%}** (the free frame-by-frame "
                f"guess: {lesson.free_vs_truth:.0%}); eSpeak's phone boundaries with an aligned one within 20 ms: "
                f"**{lesson.boundaries_within_20ms:.0%}**. Part of the difference is the dictionary's: cmudict and "
                "eSpeak do not always choose the same phones.")
        return (text, (lesson.sample_rate, lesson.wave), self._viterbi_figure(r), strips, pd.DataFrame(lesson.rows))

    @user_errors
    def align_own(self, run_key, audio, transcript, request: gr.Request):
        """The visitor's clip and words: the Predict panel's alignment view plus the Viterbi picture."""
        from hwml.errors import HwmlError
        from hwml.forced import align_audio
        from hwml.ui.phoneme_tab import alignment_view

        if not audio:
            raise HwmlError("record or upload a clip first")
        entry = task_run(self.ctx, session_of(request), run_key, "phoneme")
        result = align_audio(entry.path, audio, transcript)
        fig, table, text = alignment_view(result, width=14)
        return text + f" · run `{entry.path.name}`", audio, self._viterbi_figure(result), fig, table

    @staticmethod
    def _viterbi_figure(r):
        from hwml.ui import figures

        v = r.viterbi
        return figures.viterbi_path(r.times, v.logp, v.phones, v.words, r.words, v.path,
                                    title=f"Viterbi through the phones of “{' '.join(r.words).lower()}” "
                                          f"(at least {v.min_frames} frames each)")

    @user_errors
    def run_comparison(self):
        from hwml.lessons import compare_models

        data = self.ctx.workspace.corpus.path() / "libriphone"
        scratch = self.ctx.workspace.root / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        return pd.DataFrame(compare_models(data, max_steps=1000, max_seconds=10, out_root=scratch))

    def _pitfall_handler(self, number: int):
        @user_errors
        def show():
            from hwml.lessons import run_pitfall_demo

            dataset = None
            if number == 5:
                from hwml.data import load_dataset

                dataset = load_dataset(self.ctx.workspace.corpus.path() / "libriphone")
            result = run_pitfall_demo(number, dataset)
            return result.headline, gr.update(value=pd.DataFrame(result.rows), visible=True)
        show.__name__ = f"pitfall_{number}"
        return show
