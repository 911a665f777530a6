"""The Speaker tab's "Who is speaking?" sub-tab: enrol new people from a few clips and recognise
them by the cosine similarity of embeddings, without retraining: identify a clip, compare two
clips, draw the voice map (`hwml.serve.who_is_speaking`, on top of `hwml.speaker.identify`).
Real example clips from assets/clips fill every panel.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from hwml.i18n import t
from hwml.serve import who_is_speaking as who
from hwml.ui.lang import L, lang_of
from hwml.ui.widgets import (
    AppContext,
    check_request_files,
    run_choices,
    session_of,
    shipped_choices,
    task_run,
    ui_error,
    user_errors,
)

KIND = "speaker"

WHO_INTRO = "who.intro"  # catalogue key (hwml/i18n)


AUDIO = {"type": "filepath", "sources": ["upload", "microphone"]}


PEOPLE_HEADERS = ["name", "clips", "from"]


RANK_HEADERS = ["rank", "name", "cosine", "above threshold"]


PEOPLE_KEYS = ["col.name", "col.clips", "col.from"]


RANK_KEYS = ["col.rank", "col.name", "col.cosine", "col.above"]


def who_run_update(ctx: AppContext, session: str, current: str | None, lang: str = "en"):
    """The model chooser's choices; the pick stays, else the shipped model, else the newest run."""
    choices = run_choices(ctx, session, KIND, lang)
    keys = [k for _, k in choices]
    shipped = [k for k in keys if k.startswith("shipped:")]
    value = current if current in keys else (shipped or keys or [None])[0]
    return gr.update(choices=choices, value=value)


PAIR_KEYS = ["who.pair.same_woman", "who.pair.woman_man", "who.pair.same_girl", "who.pair.george_jackson"]


def example_label(clip: str, lang: str) -> str:
    """A shipped example clip named for a Chinese page: woman-0036_1.flac -> 女性 0036（第 1 段）."""
    person, _, n = Path(clip).stem.rpartition("_")
    kind, _, number = person.partition("-")
    who_ = f"{t(f'who.kind.{kind}', lang)} {number}" if kind in ("woman", "man", "girl") else person.title()
    return t("who.example_label", lang, person=who_, n=n)


def localized_headers(
    ctx: AppContext, examples: gr.Examples, header_keys: list[str], clips=None, pair_keys=None
) -> None:
    """gr.Examples shows its inputs' labels as column headers (and its example labels) as plain
    text, which the browser does not translate: they are set per language from the server. On a
    Chinese page each example is shown by a translated label (`clips`: the clip each example row
    is named after) instead of its name and file name; English keeps the table."""
    examples.dataset.headers = [t(k) for k in header_keys]

    def draw(lang):
        labels = None
        if pair_keys:
            labels = [t(k, lang) for k in pair_keys]
        elif clips and lang != "en":
            labels = [example_label(c, lang) for c in clips]
        return gr.update(headers=[t(k, lang) for k in header_keys], sample_labels=labels)

    ctx.localized.add(examples.dataset, draw)


def people_table(roster: who.Roster, lang: str = "en") -> pd.DataFrame:
    return pd.DataFrame(roster.rows(), columns=PEOPLE_HEADERS if lang == "en" else [t(k, lang) for k in PEOPLE_KEYS])


class WhoIsSpeaking:
    """The sub-tab: model chooser, enrol, identify, same speaker?, voice map."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        examples = who.example_clips()
        gr.Markdown(L(WHO_INTRO))
        self.roster = gr.State(who.Roster())
        with gr.Row():
            shipped = shipped_choices(ctx, KIND)
            self.run = gr.Dropdown(
                shipped,
                value=shipped[0][1] if shipped else None,
                label=L("who.model"),
                info=L("who.model_info"),
                allow_custom_value=True,
                scale=2,
                elem_id="speaker-who-run",
            )
            self.model_info = gr.Markdown(elem_id="speaker-who-model")

        gr.Markdown(L("who.h.enrol"))
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                self.name = gr.Textbox(
                    label=L("who.name"), placeholder=L("who.name_placeholder"), elem_id="speaker-who-name"
                )
                self.audio = gr.Audio(label=L("who.audio"), elem_id="speaker-who-audio", **AUDIO)
                self.files = gr.File(
                    label=L("who.files"), file_count="multiple", type="filepath", elem_id="speaker-who-files"
                )
                self.enrol_button = gr.Button(L("who.enrol"), variant="primary", elem_id="speaker-who-enrol")
                if examples["enrol"]:
                    enrol_examples = gr.Examples(
                        examples["enrol"],
                        [self.name, self.audio],
                        label=L("who.enrol_examples"),
                        examples_per_page=10,
                        elem_id="speaker-who-enrol-examples",
                    )
                    localized_headers(
                        ctx, enrol_examples, ["who.name", "who.audio"], [row[1] for row in examples["enrol"]]
                    )
            with gr.Column(scale=1, min_width=320):
                self.status = gr.Markdown(L("who.nobody_yet"), elem_id="speaker-who-status")
                self.people = ctx.localized.table(
                    gr.Dataframe(
                        headers=PEOPLE_HEADERS,
                        label=L("who.people"),
                        interactive=False,
                        wrap=True,
                        elem_id="speaker-who-people",
                    ),
                    PEOPLE_KEYS,
                )
                with gr.Row():
                    self.remove_pick = gr.Dropdown(
                        [], label=L("who.person"), scale=2, elem_id="speaker-who-remove-pick"
                    )
                    self.remove_button = gr.Button(L("who.remove"), scale=1, min_width=80)
                    self.clear_button = gr.Button(L("who.remove_all"), scale=1, min_width=80)
                with gr.Row():
                    self.save_button = gr.Button(L("who.save"), scale=1)
                    self.load_button = gr.UploadButton(L("who.load"), file_types=[".json"], scale=1)
                self.saved = gr.File(label=L("who.saved"), interactive=False, visible=False, elem_id="speaker-who-file")

        gr.Markdown(L("who.h.identify"))
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                self.query = gr.Audio(label=L("who.query"), elem_id="speaker-who-query", **AUDIO)
                self.identify_button = gr.Button(L("who.identify"), variant="primary", elem_id="speaker-who-identify")
                if examples["identify"]:
                    identify_examples = gr.Examples(
                        examples["identify"],
                        [self.query],
                        label=L("who.identify_examples"),
                        elem_id="speaker-who-identify-examples",
                    )
                    localized_headers(ctx, identify_examples, ["who.query"], [row[0] for row in examples["identify"]])
            with gr.Column(scale=1, min_width=320):
                self.sentence = gr.Markdown(elem_id="speaker-who-sentence")
                self.ranking = ctx.localized.table(
                    gr.Dataframe(
                        headers=RANK_HEADERS,
                        label=L("who.ranking"),
                        interactive=False,
                        max_height=260,
                        elem_id="speaker-who-ranking",
                    ),
                    RANK_KEYS,
                )
                self.bars = gr.Plot(label=L("who.bars"), elem_id="speaker-who-bars")

        gr.Markdown(L("who.h.same"))
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                with gr.Row():
                    self.clip_a = gr.Audio(label=L("who.clip_a"), elem_id="speaker-who-a", **AUDIO)
                    self.clip_b = gr.Audio(label=L("who.clip_b"), elem_id="speaker-who-b", **AUDIO)
                self.same_button = gr.Button(L("who.compare"), variant="primary", elem_id="speaker-who-same")
                if examples["pairs"]:
                    n = len(examples["pairs"])
                    pairs = gr.Examples(
                        examples["pairs"],
                        [self.clip_a, self.clip_b],
                        label=L("who.pair_examples"),
                        example_labels=[t(k) for k in PAIR_KEYS][:n],
                        elem_id="speaker-who-pair-examples",
                    )
                    localized_headers(ctx, pairs, ["who.clip_a", "who.clip_b"], pair_keys=PAIR_KEYS[:n])
            with gr.Column(scale=1, min_width=320):
                self.verdict = gr.Markdown(elem_id="speaker-who-verdict")
                self.scale = gr.Plot(label=L("who.scale"), elem_id="speaker-who-scale")

        gr.Markdown(L("who.h.map"))
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                self.with_query = gr.Checkbox(True, label=L("who.with_query"))
                self.map_button = gr.Button(L("who.map_button"), variant="primary", elem_id="speaker-who-map-button")
                self.caption = gr.Markdown(elem_id="speaker-who-map-caption")
            with gr.Column(scale=2):
                self.map = gr.Plot(label=L("who.map"), elem_id="speaker-who-map")
        self.wire()

    def wire(self) -> None:
        people_out = [self.roster, self.people, self.status, self.remove_pick]
        self.run.change(self.describe_model, self.run, self.model_info, api_name="speaker_who_model")
        self.enrol_button.click(
            self.enrol,
            [self.run, self.name, self.audio, self.files, self.roster],
            [*people_out, self.audio, self.files],
            api_name="speaker_who_enrol",
        )
        self.remove_button.click(
            self.remove, [self.remove_pick, self.roster], people_out, api_name="speaker_who_remove"
        )
        self.clear_button.click(self.clear, None, people_out, api_name="speaker_who_clear")
        self.save_button.click(self.save, [self.run, self.roster], self.saved, api_name="speaker_who_save").success(
            lambda: gr.update(visible=True), None, self.saved, api_visibility="private", queue=False
        )
        self.load_button.upload(
            self.load, [self.run, self.load_button, self.roster], people_out, api_name="speaker_who_load"
        )
        self.identify_button.click(
            self.identify,
            [self.run, self.query, self.roster],
            [self.sentence, self.ranking, self.bars],
            api_name="speaker_who_identify",
        )
        self.same_button.click(
            self.same, [self.run, self.clip_a, self.clip_b], [self.verdict, self.scale], api_name="speaker_who_same"
        )
        self.map_button.click(
            self.voice_map,
            [self.run, self.roster, self.query, self.with_query],
            [self.map, self.caption],
            api_name="speaker_who_map",
        )

    def keep_runs_current(self, demo: gr.Blocks, tab: gr.Tab, train) -> None:
        """Refresh the model chooser on page load, when the sub-tab opens (and describe the model
        then: its first use needs it loaded anyway) and after a training run."""

        def refresh(current, request: gr.Request):
            return who_run_update(self.ctx, session_of(request), current, lang_of(request))

        demo.load(refresh, self.run, self.run, api_visibility="private", queue=False)
        tab.select(refresh, self.run, self.run, api_visibility="private", queue=False).then(
            self.describe_model, self.run, self.model_info, api_visibility="private"
        )  # loads the model, too
        for event in (train.start_event, train.stop_event):
            event.then(refresh, self.run, self.run, api_visibility="private", queue=False)

    # --- handlers: each calls hwml.serve.who_is_speaking and shows what it returns -----------------------
    def _model(self, run_key, request: gr.Request) -> Path:
        return task_run(self.ctx, session_of(request), run_key, KIND).path

    @staticmethod
    def _people(roster: who.Roster, status: str, lang: str = "en") -> tuple:
        return roster, people_table(roster, lang), status, gr.update(choices=roster.names, value=None)

    @user_errors
    def describe_model(self, run_key, request: gr.Request):
        if not run_key:
            return t("who.no_model", lang_of(request))
        return who.model_summary(self._model(run_key, request), lang_of(request))

    @user_errors
    def enrol(self, run_key, name, audio, files, roster, request: gr.Request):
        lang = lang_of(request)
        clips = [c for c in [audio, *check_request_files(files)] if c]
        roster = (roster or who.Roster()).add(self._model(run_key, request), name, clips)
        person = next(p for p in roster.people if p.name == " ".join(str(name).split()))
        status = t(
            "who.enrolled",
            lang,
            name=person.name,
            n=person.n_clips,
            clips=t("who.clip_word" if person.n_clips == 1 else "who.clips_word", lang),
            people=t("who.person_count" if len(roster) == 1 else "who.people_count", lang, n=len(roster)),
        )
        return (*self._people(roster, status, lang), None, None)

    @user_errors
    def remove(self, name, roster, request: gr.Request):
        lang = lang_of(request)
        roster = (roster or who.Roster()).remove(name)
        return self._people(
            roster, t("who.removed", lang, name=name) if len(roster) else t("who.nobody_now", lang), lang
        )

    def clear(self, request: gr.Request):
        lang = lang_of(request)
        return self._people(who.Roster(), t("who.nobody_now", lang), lang)

    @user_errors
    def save(self, run_key, roster, request: gr.Request):
        out = self.ctx.workspace.new_output_dir(session_of(request)) / "speakers.json"
        return str((roster or who.Roster()).save(self._model(run_key, request), out))

    @user_errors
    def load(self, run_key, upload, roster, request: gr.Request):
        if not upload:
            raise ui_error(request, "who.choose_file")
        lang = lang_of(request)
        roster = (roster or who.Roster()).load(self._model(run_key, request), upload)
        return self._people(roster, t("who.loaded", lang, file=Path(upload).name, n=len(roster)), lang)

    @user_errors
    def identify(self, run_key, clip, roster, request: gr.Request):
        from hwml.ui import figures

        lang = lang_of(request)
        found = who.identify_clip(self._model(run_key, request), roster or who.Roster(), clip, lang)
        names, scores = zip(*found["ranked"])
        bars = figures.cosine_bars(
            list(names),
            list(scores),
            found["threshold"]["threshold"],
            title=t("who.bars_title", lang, file=Path(clip).name),
            lang=lang,
        )
        columns = RANK_HEADERS if lang == "en" else [t(k, lang) for k in RANK_KEYS]
        return found["sentence"], pd.DataFrame(found["rows"], columns=columns), bars

    @user_errors
    def same(self, run_key, clip_a, clip_b, request: gr.Request):
        from hwml.ui import figures

        lang = lang_of(request)
        found = who.same_speaker(self._model(run_key, request), clip_a, clip_b, lang)
        return found["sentence"], figures.score_scale(found["score"], found["threshold"], found["same"], lang)

    @user_errors
    def voice_map(self, run_key, roster, query, with_query, request: gr.Request):
        from hwml.ui import figures

        lang = lang_of(request)
        found = who.voice_map(self._model(run_key, request), roster, query if with_query else None, lang)
        return figures.voice_map(found["points"], found["explained"], lang=lang), found["caption"]
