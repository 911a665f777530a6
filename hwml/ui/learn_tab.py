"""The Learn tab: a classroom walkthrough, one section per step, each with a live example.

Every example is computed by `hwml.lessons` (or the same hwml functions the app trains with)
when its button is pressed; this module only lays the sections out.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from hwml.ui.train_panel import TRAINING_QUEUE
from hwml.ui.widgets import AppContext, user_errors

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

PRESETS_TEXT = """
### 3. The models: what each preset adds, and why
Each preset is a named set of settings (`--set key=value` changes any of them). `simple` is the course's sample
code, kept as the reference; each step up adds one idea.
"""

COMPARE_TEXT = """
### 4. Generative vs discriminative (Lecture 2)
A **generative** classifier models how each class produces its data, p(x | class), here one Gaussian per phone
with one shared covariance, and turns that into p(class | x) by Bayes' rule: fitted in closed form, no training
loop. **Logistic regression** has exactly the same linear decision boundaries but learns them directly by
gradient descent. A **deep** model learns non-linear features as well. Same frames, a few seconds each, side
by side. With so little time the closed-form model is hard to beat: it needs one pass over the data, while the
deep model needs minutes of training (try it in the Train panel) before its extra capacity pays off.
"""

PITFALLS_TEXT = """
### 5. Ten defects of the course's sample code
Each one is run here, defective version next to the fix, on small tensors: the numbers are computed now.
"""


class LearnTab:
    def __init__(self, ctx: AppContext):
        from hwml.lessons import EXAMPLE_SENTENCE, PITFALLS, preset_table

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
