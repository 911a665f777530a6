"""The Train panel both task tabs share: data source, preset, "Start from" (fine-tuning),
hyper-parameters, Start/Stop, live curves, progress, throughput and ETA.

Start streams a `hwml.serve.jobs.TrainingJob` (queued behind the app-wide training limit, its
place and estimated wait in the status line: `hwml.serve.fair`); Stop sets the run's stop flag
and cancels the stream, and the final state is drawn from the run itself, so the best weights
and the last curve points are kept. The run belongs to the visitor, not the page: a reload or a
second tab re-attaches to its live curves (`reattach`).
"""

from __future__ import annotations

import json

import gradio as gr

from hwml.api import check_training_settings
from hwml.errors import HwmlError
from hwml.i18n import t
from hwml.serve.jobs import JobView
from hwml.serve.sources import (
    BUILTIN_FOLDERS,
    SOURCE_AUDIO,
    SOURCE_BUILTIN,
    SOURCE_PATH,
    SOURCE_ZIP,
    SOURCES,
    discard_prepared,
    resolve_source,
)
from hwml.settings import allow_local_paths
from hwml.ui.lang import L, lang_of
from hwml.ui.widgets import (
    AppContext,
    curve_frames,
    empty_curves,
    latest_event,
    progress_html,
    series_colors,
    session_of,
    status_markdown,
    ui_error,
    user_errors,
    visitor_of,
    with_all_series,
)

LOSS_SERIES = ("train loss", "valid loss")
ACC_SERIES = ("train acc", "valid acc")
TRAINING_QUEUE = "training"  # one Gradio concurrency group for every training event of the app
SOURCE_KEYS = {
    SOURCE_BUILTIN: "source.builtin",
    SOURCE_PATH: "source.path",
    SOURCE_ZIP: "source.zip",
    SOURCE_AUDIO: "source.audio",
}  # the Data radio's labels; its values stay the English names


def source_choices(sources) -> list:
    return [(L(SOURCE_KEYS[s]), s) for s in sources]


def plot_titles(lang: str, title_key: str):
    """A curve plot's axis titles in `lang`. The series keep their English names ("train loss"):
    a LinePlot keeps the colour domain of its first draw, so the names must not change with the
    language; the plot's own legend is hidden and a translated one (curve.legend) sits under it."""
    return gr.update(x_title=t("plot.step", lang), y_title=t(title_key, lang))


def parse_settings(text: str | None) -> dict:
    """`key=value` pairs (comma or newline separated) as typed in the extra-settings box; values
    are JSON where they parse (numbers, booleans, lists), strings otherwise."""
    out = {}
    for item in (text or "").replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise HwmlError(f"extra settings: {item!r} is not key=value")
        try:
            out[key.strip()] = json.loads(raw.strip())
        except json.JSONDecodeError:
            out[key.strip()] = raw.strip()
    return out


def _number(value, name: str, integer: bool = False, minimum: float = 0.0, zero_is_default: bool = False):
    """A Number box's value: None when empty (or 0 where 0 means "the preset's"); HwmlError when
    out of range."""
    if value is None or value == "" or (zero_is_default and value == 0):
        return None
    if integer and float(value) != int(value):
        raise HwmlError(f"{name} must be a whole number, got {value}")
    value = int(value) if integer else float(value)
    if value <= minimum:
        raise HwmlError(f"{name} must be more than {minimum:g}, got {value}")
    return value


class TrainPanel:
    """Builds the panel inside the current Blocks context and wires its events."""

    def __init__(self, ctx: AppContext, kind: str, default_preset: str):
        from hwml.api import task_presets  # torch-free: the presets' names in their order

        presets = list(task_presets(kind).PRESETS)
        self.ctx, self.kind, self.preset_order = ctx, kind, presets
        formats = list(BUILTIN_FOLDERS[kind])
        sources = list(SOURCES) if allow_local_paths() else [s for s in SOURCES if s != SOURCE_PATH]
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                self.source = gr.Radio(source_choices(sources), value=SOURCE_BUILTIN, label=L("train.data"))
                self.builtin_format = gr.Dropdown(
                    formats,
                    value=formats[0],
                    label=L("train.builtin_format"),
                    visible=len(formats) > 1,
                    info=L("train.builtin_format_info"),
                )
                self.corpus_status = gr.Markdown(ctx.workspace.corpus.status())
                ctx.localized.add(self.corpus_status, lambda lang: ctx.workspace.corpus.status(lang))
                self.corpus_timer = gr.Timer(2.0, active=not ctx.workspace.corpus.ready)
                self.path = gr.Textbox(
                    label=L("ui.folder_path"),
                    visible=False,
                    placeholder="/data/timit_11 or /data/libriphone" if kind == "phoneme" else "/data/Dataset",
                )
                self.upload = gr.File(label=L("train.zip"), file_types=[".zip"], visible=False, type="filepath")
                self.preset = gr.Dropdown(presets, value=default_preset, label=L("train.preset"))
                self.start_from = gr.Dropdown(
                    ctx.workspace.start_from_choices(None, kind),
                    value=ctx.workspace.START_FROM_NONE,
                    label=L("train.start_from"),
                    allow_custom_value=True,
                    elem_id=f"{kind}-train-start-from",
                    info=L("train.start_from_info"),
                )
                ctx.localized.add(
                    self.start_from,
                    lambda lang, request: gr.update(
                        choices=ctx.workspace.start_from_choices(session_of(request), kind, lang),
                        value=ctx.workspace.START_FROM_NONE,
                    ),
                    with_request=True,
                )
                with gr.Row():
                    self.max_steps = gr.Number(label=L("train.max_steps"), value=300, precision=0, minimum=1)
                    self.max_seconds = gr.Number(
                        label=L("train.max_seconds"),
                        value=120,
                        minimum=1,
                        info=f"≤ {ctx.jobs.limits.max_run_seconds:g} s",
                    )
                ctx.localized.add(
                    self.max_seconds,
                    lambda lang: gr.update(
                        info=t("train.max_seconds_info", lang, limit=f"{ctx.jobs.limits.max_run_seconds:g}")
                    ),
                )
                with gr.Row():
                    self.lr = gr.Number(label=L("train.lr"), value=0)
                    self.batch_size = gr.Number(label=L("train.batch_size"), value=0, precision=0)
                with gr.Row():
                    self.seed = gr.Number(label=L("train.seed"), value=0, precision=0)
                    self.valid_every = gr.Number(label=L("train.valid_every"), value=50, precision=0)
                self.extra = gr.Textbox(label=L("train.extra"), placeholder="dropout=0.3, patience=5")
                with gr.Row():
                    self.start = gr.Button(L("train.start"), variant="primary", elem_id=f"{kind}-train-start")
                    self.stop = gr.Button(L("train.stop"), variant="stop", elem_id=f"{kind}-train-stop")
            with gr.Column(scale=2):
                self.status = gr.Markdown(L("train.hint"), elem_id=f"{kind}-train-status")
                self.progress = gr.HTML(progress_html(None), elem_id=f"{kind}-train-progress")
                ctx.localized.add(self.progress, lambda lang: progress_html(None, lang))
                with gr.Row():
                    self.loss_plot = gr.LinePlot(
                        with_all_series(empty_curves(), LOSS_SERIES),
                        x="step",
                        y="value",
                        color="series",
                        title=L("plot.loss"),
                        y_title="loss",
                        height=260,
                        color_map=series_colors(LOSS_SERIES),
                        colors_in_legend=[],
                        elem_id=f"{kind}-loss-plot",
                    )
                    self.acc_plot = gr.LinePlot(
                        with_all_series(empty_curves(), ACC_SERIES),
                        x="step",
                        y="value",
                        color="series",
                        title=L("plot.accuracy"),
                        y_title="accuracy",
                        y_lim=[0, 1],
                        height=260,
                        color_map=series_colors(ACC_SERIES),
                        colors_in_legend=[],
                        elem_id=f"{kind}-acc-plot",
                    )
                ctx.localized.add(self.loss_plot, lambda lang: plot_titles(lang, "plot.loss"))
                ctx.localized.add(self.acc_plot, lambda lang: plot_titles(lang, "plot.accuracy"))
                gr.HTML(L("curve.legend"), elem_classes=["hwml-legend"], container=False, padding=False)
                with gr.Accordion(L("train.latest_event"), open=False):
                    self.event = gr.JSON(label=L("train.latest_event_label"))
        self.outputs = [self.status, self.progress, self.loss_plot, self.acc_plot, self.event]
        self._wire()

    # --- events -----------------------------------------------------------------------------
    def _wire(self) -> None:
        self.source.change(
            self._source_visibility,
            self.source,
            [self.builtin_format, self.path, self.upload, self.corpus_status],
            api_visibility="private",
            queue=False,
        )
        self.corpus_timer.tick(
            self._corpus_tick,
            None,
            [self.corpus_status, self.corpus_timer],
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )
        inputs = [
            self.source,
            self.builtin_format,
            self.path,
            self.upload,
            self.preset,
            self.max_steps,
            self.max_seconds,
            self.lr,
            self.batch_size,
            self.seed,
            self.valid_every,
            self.extra,
            self.start_from,
        ]
        self.start_event = self.start.click(
            self.train,
            inputs,
            self.outputs,
            api_name=f"{self.kind}_train",
            concurrency_limit=None,  # the stream only polls; hwml.serve.fair queues the training itself
            show_progress="full",
            show_progress_on=[self.status],
            trigger_mode="once",
        )
        self.start_from.focus(
            self.start_from_choices,
            self.start_from,
            self.start_from,
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )
        self.stop_event = self.stop.click(
            self.request_stop, None, None, cancels=[self.start_event], api_name=f"{self.kind}_stop"
        ).then(self.final_view, None, self.outputs, api_visibility="undocumented", show_progress="hidden")

    def reattach_on(self, loaded) -> None:
        """Once the page knows its visitor: stream their live run of this task, if any."""
        self.reattach_event = loaded.load(
            self.reattach, None, self.outputs, api_visibility="private", concurrency_limit=None, show_progress="hidden"
        )
        self.stop.click(None, None, None, cancels=[self.reattach_event], api_visibility="private", queue=False)

    def reattach(self, request: gr.Request):
        """The visitor's queued or running run of this task (started on another page, or before
        a reload), drawn live until it ends; nothing when there is none."""
        job = self.ctx.jobs.live(session_of(request), self.kind)
        if job is None:  # leave the panel as the page drew it (an empty stream would blank it)
            yield tuple(gr.skip() for _ in self.outputs)
            return
        lang = lang_of(request)
        for view in job.stream(interval=0.5):
            yield self._render(view, lang)

    def preset_choices(self, current):
        """The task module's presets (in the panel's order, new ones last): read on page load, so
        building the page does not import the models (the speaker models pull in torch's compiler)."""
        from hwml.api import task_presets

        names = list(task_presets(self.kind).PRESETS)
        ordered = [p for p in self.preset_order if p in names] + [p for p in names if p not in self.preset_order]
        return gr.update(choices=ordered, value=current if current in ordered else ordered[0])

    def start_from_choices(self, current, request: gr.Request):
        """The runs this session may start from, listed afresh whenever the dropdown opens."""
        choices = self.ctx.workspace.start_from_choices(session_of(request), self.kind, lang_of(request))
        keys = [k for _, k in choices]
        return gr.update(choices=choices, value=current if current in keys else keys[0])

    def _corpus_tick(self, request: gr.Request):
        """Refresh the built-in corpus's status until it is ready, then stop ticking."""
        corpus = self.ctx.workspace.corpus
        return corpus.status(lang_of(request)), gr.Timer(active=not corpus.ready)

    def _source_visibility(self, source: str, request: gr.Request):
        builtin = source == SOURCE_BUILTIN
        return (
            gr.update(visible=builtin and len(BUILTIN_FOLDERS[self.kind]) > 1),
            gr.update(visible=source in (SOURCE_PATH, SOURCE_AUDIO) and allow_local_paths()),
            gr.update(visible=source in (SOURCE_ZIP, SOURCE_AUDIO)),
            gr.update(value=self.ctx.workspace.corpus.status(lang_of(request)), visible=builtin),
        )

    def _overrides(self, lr, batch_size, valid_every, extra) -> dict:  # messages: the package's (shared with the CLI)
        overrides = parse_settings(extra)
        if (value := _number(lr, "learning rate", zero_is_default=True)) is not None:
            overrides.setdefault("lr", value)
        if (value := _number(batch_size, "batch size", integer=True, zero_is_default=True)) is not None:
            overrides.setdefault("batch_size", value)
        if (value := _number(valid_every, "validation interval", integer=True, zero_is_default=True)) is not None:
            overrides.setdefault("valid_every", value)
        return overrides

    def _render(self, view: JobView, lang: str = "en"):
        loss, acc = curve_frames(view.events)
        return (
            status_markdown(view, lang),
            progress_html(view, lang),
            with_all_series(loss, LOSS_SERIES),
            with_all_series(acc, ACC_SERIES),
            latest_event(view),
        )

    @user_errors
    def train(
        self,
        source,
        builtin_format,
        path,
        upload,
        preset,
        max_steps,
        max_seconds,
        lr,
        batch_size,
        seed,
        valid_every,
        extra,
        start_from=None,
        request: gr.Request = None,
    ):
        """Start a run for this visitor and stream its curves until it ends."""
        visitor = visitor_of(request)
        session = visitor.owner
        ws, jobs = self.ctx.workspace, self.ctx.jobs
        check_training_settings(
            self.kind,
            preset,
            self._overrides(lr, batch_size, valid_every, extra),
            _number(max_steps, "max steps", integer=True),
            _number(max_seconds, "max seconds"),
        )
        prepare = resolve_source(
            ws, session, self.kind, source, builtin_format=builtin_format, path=path, upload=upload
        )
        overrides = self._overrides(lr, batch_size, valid_every, extra)
        steps = _number(max_steps, "max steps", integer=True)
        seconds = _number(max_seconds, "max seconds")
        seed = int(seed or 0)
        try:
            init = ws.start_from_path(session, self.kind, start_from)
            run_dir = ws.new_run_dir(session, self.kind, preset)
        except HwmlError:
            discard_prepared(ws, prepare)
            raise
        try:
            job = jobs.submit(
                visitor,
                self.kind,
                run_dir=run_dir,
                prepare=prepare,
                preset=preset,
                overrides=overrides,
                max_steps=steps,
                max_seconds=seconds,
                seed=seed,
                on_finish=self.after_run,
                init=init,
            )
        except HwmlError:  # refused (their share is taken): the empty run folder and any upload go
            run_dir.rmdir()
            discard_prepared(ws, prepare)
            raise
        view = None
        lang = lang_of(request)
        for view in job.stream(interval=0.5):
            yield self._render(view, lang)
        if view is not None and view.state == "failed":
            raise HwmlError(view.error) if view.error else ui_error(request, "train.failed")

    def after_run(self, job) -> None:
        """Runs in the training thread when a run ends: drop an empty folder, keep disk in budget."""
        try:
            if job.run_dir.is_dir() and not any(job.run_dir.iterdir()):
                job.run_dir.rmdir()
        except OSError:
            pass
        self.ctx.workspace.prune(active=self.ctx.jobs.in_use_paths() - {job.run_dir.resolve()}, owner=job.visitor.owner)

    def request_stop(self, request: gr.Request):
        """Set the stop flag at once; the engine ends within a second and keeps the best weights."""
        self.ctx.jobs.stop(session_of(request), self.kind)

    def final_view(self, request: gr.Request):
        """After Stop: wait for the run to wind down, then draw its final state."""
        job = self.ctx.jobs.get(session_of(request), self.kind)
        lang = lang_of(request)
        if job is None:
            return (
                t("train.stopped_nothing", lang),
                progress_html(None, lang),
                with_all_series(empty_curves(), LOSS_SERIES),
                with_all_series(empty_curves(), ACC_SERIES),
                {},
            )
        job.join(timeout=5.0)
        return self._render(job.poll(), lang)
