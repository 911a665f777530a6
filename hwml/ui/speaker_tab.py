"""The Speaker (HW4) tab's own parts: its preset order, how Predict shows speakers, and the
"Who is speaking?" sub-tab.

Predict shows the top-5 of the speakers a run was trained on for a recording (upload or
microphone) or feature files, with their probabilities, says what those speakers are
(`hwml.who_is_speaking.run_note`), and writes the CSV (the course's `Id,Category` for a test
folder). "Who is speaking?" enrols new people from a few clips and recognises them by the cosine
similarity of embeddings, without retraining: identify a clip, compare two clips, draw the voice
map (`hwml.who_is_speaking`, on top of `hwml.speaker_id`). Real example clips from assets/clips
fill every panel.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from hwml import who_is_speaking as who
from hwml.errors import HwmlError
from hwml.ui.predict_panel import PredictPanel
from hwml.ui.widgets import AppContext, run_choices, session_of, shipped_choices, task_run, user_errors

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

    def add_audio_inputs(self) -> list:
        """Under the audio: what this run's classes are (no inputs of its own)."""
        self.about = gr.Markdown(self.first_note, elem_id="speaker-predict-about")
        return []

    def first_note(self) -> str:
        """The note for the run the picker starts on (called on every page load)."""
        first = self.ctx.workspace.shipped_runs(KIND)
        return who.run_note(first[0].path) if first else ""

    def wire_extras(self) -> None:
        self.run.change(self.note, self.run, self.about, api_visibility="private", queue=False)

    def note(self, run_key, request: gr.Request):
        try:
            return who.run_note(task_run(self.ctx, session_of(request), run_key, KIND).path)
        except HwmlError:
            return ""

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


# ------------------------------------------------------------------------- Who is speaking?

WHO_INTRO = """### Who is speaking?
Recognise **new** people without retraining. Enrol each person from one or more clips (upload or record;
enrol the same name again to add clips): the model turns every clip into an embedding (a voice print) and a
person is the average of theirs. A new clip is then compared with everyone by **cosine similarity** (1: the
same direction, 0: unrelated). No microphone? The examples under each panel are real voices
(speechocean762 and the Free Spoken Digit Dataset, see `assets/README.md`)."""

AUDIO = {"type": "filepath", "sources": ["upload", "microphone"]}
PEOPLE_HEADERS = ["name", "clips", "from"]
RANK_HEADERS = ["rank", "name", "cosine", "above threshold"]


def who_run_update(ctx: AppContext, session: str, current: str | None):
    """The model chooser's choices; the pick stays, else the shipped model, else the newest run."""
    choices = run_choices(ctx, session, KIND)
    keys = [k for _, k in choices]
    shipped = [k for k in keys if k.startswith("shipped:")]
    value = current if current in keys else (shipped or keys or [None])[0]
    return gr.update(choices=choices, value=value)


def people_table(roster: who.Roster) -> pd.DataFrame:
    return pd.DataFrame(roster.rows(), columns=PEOPLE_HEADERS)


class WhoIsSpeaking:
    """The sub-tab: model chooser, enrol, identify, same speaker?, voice map."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        examples = who.example_clips()
        gr.Markdown(WHO_INTRO)
        self.roster = gr.State(who.Roster())
        with gr.Row():
            shipped = shipped_choices(ctx, KIND)
            self.run = gr.Dropdown(shipped, value=shipped[0][1] if shipped else None, label="Model",
                                   info="★ the shipped model, or one of your speaker runs (Train tab)",
                                   allow_custom_value=True, scale=2, elem_id="speaker-who-run")
            self.model_info = gr.Markdown(elem_id="speaker-who-model")

        gr.Markdown("#### 1 · Enrol people")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                self.name = gr.Textbox(label="Name", placeholder="e.g. Ann", elem_id="speaker-who-name")
                self.audio = gr.Audio(label="A clip of them (upload or record)", elem_id="speaker-who-audio", **AUDIO)
                self.files = gr.File(label="…or several clips at once (audio, or .pt/.npy features)",
                                     file_count="multiple", type="filepath", elem_id="speaker-who-files")
                self.enrol_button = gr.Button("Enrol", variant="primary", elem_id="speaker-who-enrol")
                if examples["enrol"]:
                    gr.Examples(examples["enrol"], [self.name, self.audio], label="Example voices to enrol "
                                "(click one, then Enrol; each person has two clips)", examples_per_page=10,
                                elem_id="speaker-who-enrol-examples")
            with gr.Column(scale=1, min_width=320):
                self.status = gr.Markdown("Nobody is enrolled yet.", elem_id="speaker-who-status")
                self.people = gr.Dataframe(headers=PEOPLE_HEADERS, label="Enrolled people (this browser session)",
                                           interactive=False, wrap=True, elem_id="speaker-who-people")
                with gr.Row():
                    self.remove_pick = gr.Dropdown([], label="Person", scale=2, elem_id="speaker-who-remove-pick")
                    self.remove_button = gr.Button("Remove", scale=1, min_width=80)
                    self.clear_button = gr.Button("Remove everyone", scale=1, min_width=80)
                with gr.Row():
                    self.save_button = gr.Button("Save as an enrolment file (.json)", scale=1)
                    self.load_button = gr.UploadButton("Load an enrolment file", file_types=[".json"], scale=1)
                self.saved = gr.File(label="Enrolment file (for this model; `hwml identify` reads it too)",
                                     interactive=False, visible=False, elem_id="speaker-who-file")

        gr.Markdown("#### 2 · Identify a clip")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                self.query = gr.Audio(label="Who is this? (upload or record)", elem_id="speaker-who-query", **AUDIO)
                self.identify_button = gr.Button("Identify", variant="primary", elem_id="speaker-who-identify")
                if examples["identify"]:
                    gr.Examples(examples["identify"], [self.query], label="Clips the enrolment examples do not "
                                "contain", elem_id="speaker-who-identify-examples")
            with gr.Column(scale=1, min_width=320):
                self.sentence = gr.Markdown(elem_id="speaker-who-sentence")
                self.ranking = gr.Dataframe(headers=RANK_HEADERS, label="Enrolled people, most alike first",
                                            interactive=False, max_height=260, elem_id="speaker-who-ranking")
                self.bars = gr.Plot(label="Cosine similarity", elem_id="speaker-who-bars")

        gr.Markdown("#### 3 · Same speaker?")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                with gr.Row():
                    self.clip_a = gr.Audio(label="Clip A", elem_id="speaker-who-a", **AUDIO)
                    self.clip_b = gr.Audio(label="Clip B", elem_id="speaker-who-b", **AUDIO)
                self.same_button = gr.Button("Compare", variant="primary", elem_id="speaker-who-same")
                if examples["pairs"]:
                    gr.Examples(examples["pairs"], [self.clip_a, self.clip_b], label="Example pairs: "
                                "same person, different people", example_labels=[
                                    "woman 0036 twice", "woman 0036 / man 0482", "girl 0006 twice",
                                    "George / Jackson"][:len(examples["pairs"])],
                                elem_id="speaker-who-pair-examples")
            with gr.Column(scale=1, min_width=320):
                self.verdict = gr.Markdown(elem_id="speaker-who-verdict")
                self.scale = gr.Plot(label="Score against the threshold", elem_id="speaker-who-scale")

        gr.Markdown("#### 4 · Voice map")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                self.with_query = gr.Checkbox(True, label="Add the clip from Identify (a star)")
                self.map_button = gr.Button("Draw the voice map", variant="primary", elem_id="speaker-who-map-button")
                self.caption = gr.Markdown(elem_id="speaker-who-map-caption")
            with gr.Column(scale=2):
                self.map = gr.Plot(label="Voice map", elem_id="speaker-who-map")
        self.wire()

    def wire(self) -> None:
        people_out = [self.roster, self.people, self.status, self.remove_pick]
        self.run.change(self.describe_model, self.run, self.model_info, api_name="speaker_who_model")
        self.enrol_button.click(self.enrol, [self.run, self.name, self.audio, self.files, self.roster],
                                [*people_out, self.audio, self.files], api_name="speaker_who_enrol")
        self.remove_button.click(self.remove, [self.remove_pick, self.roster], people_out,
                                 api_name="speaker_who_remove")
        self.clear_button.click(self.clear, None, people_out, api_name="speaker_who_clear")
        self.save_button.click(self.save, [self.run, self.roster], self.saved, api_name="speaker_who_save").success(
            lambda: gr.update(visible=True), None, self.saved, api_visibility="private", queue=False)
        self.load_button.upload(self.load, [self.run, self.load_button, self.roster], people_out,
                                api_name="speaker_who_load")
        self.identify_button.click(self.identify, [self.run, self.query, self.roster],
                                   [self.sentence, self.ranking, self.bars], api_name="speaker_who_identify")
        self.same_button.click(self.same, [self.run, self.clip_a, self.clip_b], [self.verdict, self.scale],
                               api_name="speaker_who_same")
        self.map_button.click(self.voice_map, [self.run, self.roster, self.query, self.with_query],
                              [self.map, self.caption], api_name="speaker_who_map")

    def keep_runs_current(self, demo: gr.Blocks, tab: gr.Tab, train) -> None:
        """Refresh the model chooser on page load, when the sub-tab opens (and describe the model
        then: its first use needs it loaded anyway) and after a training run."""
        def refresh(current, request: gr.Request):
            return who_run_update(self.ctx, session_of(request), current)

        demo.load(refresh, self.run, self.run, api_visibility="private", queue=False)
        tab.select(refresh, self.run, self.run, api_visibility="private", queue=False).then(
            self.describe_model, self.run, self.model_info, api_visibility="private")  # loads the model, too
        for event in (train.start_event, train.stop_event):
            event.then(refresh, self.run, self.run, api_visibility="private", queue=False)

    # --- handlers: each calls hwml.who_is_speaking and shows what it returns -----------------------
    def _model(self, run_key, request: gr.Request) -> Path:
        return task_run(self.ctx, session_of(request), run_key, KIND).path

    @staticmethod
    def _people(roster: who.Roster, status: str) -> tuple:
        return roster, people_table(roster), status, gr.update(choices=roster.names, value=None)

    @user_errors
    def describe_model(self, run_key, request: gr.Request):
        if not run_key:
            return "No speaker model yet: train one in the Train tab."
        return who.model_summary(self._model(run_key, request))

    @user_errors
    def enrol(self, run_key, name, audio, files, roster, request: gr.Request):
        clips = [c for c in [audio, *(files or [])] if c]
        roster = (roster or who.Roster()).add(self._model(run_key, request), name, clips)
        person = next(p for p in roster.people if p.name == " ".join(str(name).split()))
        status = (f"Enrolled **{person.name}** ({person.n_clips} clip{'s' if person.n_clips != 1 else ''}); "
                  f"{len(roster)} {'person' if len(roster) == 1 else 'people'} enrolled.")
        return (*self._people(roster, status), None, None)

    @user_errors
    def remove(self, name, roster):
        roster = (roster or who.Roster()).remove(name)
        return self._people(roster, f"Removed {name}." if len(roster) else "Nobody is enrolled now.")

    def clear(self):
        return self._people(who.Roster(), "Nobody is enrolled now.")

    @user_errors
    def save(self, run_key, roster, request: gr.Request):
        out = self.ctx.workspace.new_upload_dir(session_of(request)) / "speakers.json"
        return str((roster or who.Roster()).save(self._model(run_key, request), out))

    @user_errors
    def load(self, run_key, upload, roster, request: gr.Request):
        if not upload:
            raise HwmlError("choose an enrolment file (.json) to load")
        roster = (roster or who.Roster()).load(self._model(run_key, request), upload)
        return self._people(roster, f"Loaded {Path(upload).name}: {len(roster)} people enrolled.")

    @user_errors
    def identify(self, run_key, clip, roster, request: gr.Request):
        from hwml.ui import figures

        found = who.identify_clip(self._model(run_key, request), roster or who.Roster(), clip)
        names, scores = zip(*found["ranked"])
        bars = figures.cosine_bars(list(names), list(scores), found["threshold"]["threshold"],
                                   title=f"who is {Path(clip).name}?")
        return found["sentence"], pd.DataFrame(found["rows"], columns=RANK_HEADERS), bars

    @user_errors
    def same(self, run_key, clip_a, clip_b, request: gr.Request):
        from hwml.ui import figures

        found = who.same_speaker(self._model(run_key, request), clip_a, clip_b)
        return found["sentence"], figures.score_scale(found["score"], found["threshold"], found["same"])

    @user_errors
    def voice_map(self, run_key, roster, query, with_query, request: gr.Request):
        from hwml.ui import figures

        found = who.voice_map(self._model(run_key, request), roster, query if with_query else None)
        return figures.voice_map(found["points"], found["explained"]), found["caption"]
