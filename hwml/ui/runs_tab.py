"""The Runs tab: every run of this visitor plus the shipped ones, their curves overlaid, deleting
a run, and resuming one a server restart cut short (listed as interrupted: `hwml.runs.resume`).
Runs of other visitors are never listed (`hwml.serve.workspace` keeps them apart; on a laptop
there is one visitor, `hwml.serve.identity`)."""

from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from hwml.i18n import t
from hwml.ui.lang import L, lang_of
from hwml.ui.widgets import (
    AppContext,
    curve_frames,
    empty_curves,
    series_colors,
    session_of,
    ui_error,
    user_errors,
    visitor_of,
    with_all_series,
)

CURVES = {
    "valid accuracy": ("acc", "valid"),
    "train accuracy": ("acc", "train"),
    "valid loss": ("loss", "valid"),
    "train loss": ("loss", "train"),
}
SLOTS = tuple(f"run {i}" for i in range(1, 9))
SLOT_COLORS = series_colors(SLOTS)
COLUMNS = ["run", "task", "preset", "model", "data", "best valid acc", "steps", "finished", "shipped"]
METRIC_KEYS = {
    "valid accuracy": "metric.valid_acc",
    "train accuracy": "metric.train_acc",
    "valid loss": "metric.valid_loss",
    "train loss": "metric.train_loss",
}
COLUMN_KEYS = [
    "runs.col.run",
    "runs.col.task",
    "runs.col.preset",
    "runs.col.model",
    "runs.col.data",
    "runs.col.best",
    "runs.col.steps",
    "runs.col.finished",
    "runs.col.shipped",
]


def runs_table(entries, lang: str = "en", interrupted=frozenset()) -> pd.DataFrame:
    """One row a run; `interrupted` (keys) say "interrupted" in the finished column."""

    def yes_no(flag):  # booleans as words in the session's language (English keeps True/False)
        return flag if lang == "en" else t("who.yes" if flag else "who.no", lang)

    def finished(e):
        return t("runs.interrupted", lang) if e.key in interrupted else yes_no(e.finished)

    def task(kind):
        return t(f"task.{kind}", lang) if kind in ("phoneme", "speaker") and lang != "en" else kind

    rows = [
        (
            e.path.name if not e.shipped else f"★ {e.key}",
            task(e.task),
            e.preset,
            e.model,
            e.data,
            None if e.best_valid_acc is None else round(float(e.best_valid_acc), 4),
            e.steps,
            finished(e),
            yes_no(e.shipped),
        )
        for e in entries
    ]
    return pd.DataFrame(rows, columns=COLUMNS if lang == "en" else [t(k, lang) for k in COLUMN_KEYS])


class RunsTab:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        with gr.Row():
            self.refresh = gr.Button(L("runs.refresh"), elem_id="runs-refresh", scale=0, min_width=120)
            gr.Markdown(L("runs.intro"))
        self.table = gr.Dataframe(runs_table([]), interactive=False, elem_id="runs-table", max_height=360)
        ctx.localized.add(self.table, lambda lang: runs_table([], lang))
        with gr.Row():
            self.pick = gr.Dropdown(
                [], multiselect=True, allow_custom_value=True, label=L("runs.overlay"), scale=3, elem_id="runs-pick"
            )
            self.metric = gr.Radio(
                [(L(METRIC_KEYS[m]), m) for m in CURVES], value="valid accuracy", label=L("runs.curve"), scale=1
            )
        self.plot = gr.LinePlot(
            with_all_series(empty_curves(), SLOTS),
            x="step",
            y="value",
            color="series",
            color_map=SLOT_COLORS,
            colors_in_legend=[],
            height=320,
            title=L("runs.compared"),
            elem_id="runs-plot",
        )
        ctx.localized.add(
            self.plot, lambda lang: gr.update(x_title=t("plot.step", lang), y_title=t("runs.value", lang))
        )
        self.legend = gr.HTML(elem_id="runs-legend")
        with gr.Row():
            self.delete_pick = gr.Dropdown([], label=L("runs.delete_pick"), allow_custom_value=True, scale=3)
            self.resume_button = gr.Button(L("runs.resume"), scale=1, elem_id="runs-resume")
            self.delete_button = gr.Button(L("runs.delete"), variant="stop", scale=1)
        self.message = gr.Markdown()
        listing = [self.table, self.pick, self.delete_pick]
        self.refresh.click(self.list_runs, self.pick, listing, api_name="runs_list")
        self.pick.change(self.overlay, [self.pick, self.metric], [self.plot, self.legend], api_name="runs_overlay")
        self.metric.change(self.overlay, [self.pick, self.metric], [self.plot, self.legend], api_visibility="private")
        self.delete_button.click(self.delete, self.delete_pick, [self.message], api_name="runs_delete").then(
            self.list_runs, self.pick, listing, api_visibility="private"
        )

    def interrupted_keys(self, entries) -> set[str]:
        """Runs a restart or a kill cut short: no end logged, no live job writing them."""
        from hwml.runs.resume import is_interrupted

        active = self.ctx.jobs.active_run_dirs()
        return {e.key for e in entries if not e.shipped and is_interrupted(e.path, active)}

    def resume_wiring(self, *train_panels) -> None:
        """Resume: continue the chosen run from its last checkpoint (the existing resume path,
        `hwml.api.train_run(resume=True)`); its task tab's Train panel then shows its curves."""
        self.panels = {panel.kind: panel for panel in train_panels}
        event = self.resume_button.click(self.resume, self.delete_pick, self.message, api_name="runs_resume")
        for panel in train_panels:
            event.success(
                panel.reattach,
                None,
                panel.outputs,
                api_visibility="private",
                concurrency_limit=None,
                show_progress="hidden",
            )

    @user_errors
    def resume(self, key, request: gr.Request):
        from hwml.runs.resume import is_interrupted, resume_arguments

        owner = visitor_of(request)
        entry = self.ctx.workspace.find_run(owner.owner, key)
        if entry.shipped or not is_interrupted(entry.path, self.ctx.jobs.active_run_dirs()):
            raise ui_error(request, "runs.not_interrupted", name=entry.path.name if not entry.shipped else key)
        args = resume_arguments(entry.path)
        panel = self.panels.get(args["kind"])
        if panel is None:
            raise ui_error(request, "runs.not_interrupted", name=entry.path.name)
        data = args["data"]
        self.ctx.jobs.submit(
            owner,
            args["kind"],
            run_dir=entry.path,
            prepare=lambda report: data,
            preset=args["preset"],
            overrides=args["overrides"],
            max_steps=args["max_steps"],
            max_seconds=args["max_seconds"],
            seed=args["seed"],
            on_finish=panel.after_run,
            resume=True,
        )
        return t("runs.resumed", lang_of(request), name=entry.path.name)

    def list_runs(self, picked, request: gr.Request):
        entries = self.ctx.workspace.visible_runs(session_of(request))
        lang = lang_of(request)
        keys = [e.key for e in entries]
        choices = [(e.label_for(lang) + f" ({e.task})", e.key) for e in entries]
        own = [(e.label_for(lang), e.key) for e in entries if not e.shipped]
        return (
            runs_table(entries, lang, self.interrupted_keys(entries)),
            gr.update(choices=choices, value=[k for k in (picked or []) if k in keys]),
            gr.update(choices=own, value=own[0][1] if own else None),
        )

    @user_errors
    def overlay(self, picked, metric, request: gr.Request):
        """One curve per picked run (the chosen metric) on a shared step axis, and its legend.

        Runs are drawn as slots "run 1".."run 8" with fixed colours: Gradio's LinePlot keeps the
        colour domain of its first draw, so series names must not change between updates."""
        from hwml.runs.folder import read_metrics

        which, split = CURVES[metric]
        if len(picked or []) > len(SLOTS):
            raise ui_error(request, "runs.too_many", n=len(SLOTS))
        frames, legend = [], []
        for slot, key in zip(SLOTS, picked or []):
            entry = self.ctx.workspace.find_run(session_of(request), key)
            loss, acc = curve_frames(read_metrics(entry.path))
            frame = acc if which == "acc" else loss
            frame = frame[frame["series"] == f"{split} {which}"].assign(series=slot)
            frames.append(frame)
            name = entry.key if entry.shipped else entry.path.name
            shown = slot.replace("run", t("runs.slot", lang_of(request)), 1)
            legend.append(
                f"<span style='color:{SLOT_COLORS[slot]}'>&#9632;</span> {html.escape(shown)}: "
                f"{html.escape(name)} ({html.escape(entry.preset or '?')})"
            )
        data = pd.concat(frames, ignore_index=True) if frames else empty_curves()
        return with_all_series(data, SLOTS), "<br>".join(legend)

    @user_errors
    def delete(self, key, request: gr.Request):
        name = self.ctx.workspace.delete_run(session_of(request), key, active=self.ctx.jobs.active_run_dirs())
        return t("runs.deleted", lang_of(request), name=name)
