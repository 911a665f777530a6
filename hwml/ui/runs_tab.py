"""The Runs tab: every run of this session plus the shipped ones, their curves overlaid, and
deleting a run. Runs of other sessions are never listed (`hwml.workspace` keeps them apart)."""

from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from hwml.errors import HwmlError
from hwml.ui.widgets import (AppContext, curve_frames, empty_curves, series_colors, session_of, user_errors,
                             with_all_series)

METRICS = {"valid accuracy": ("acc", "valid"), "train accuracy": ("acc", "train"),
           "valid loss": ("loss", "valid"), "train loss": ("loss", "train")}
SLOTS = tuple(f"run {i}" for i in range(1, 9))
SLOT_COLORS = series_colors(SLOTS)
COLUMNS = ["run", "task", "preset", "model", "data", "best valid acc", "steps", "finished", "shipped"]


def runs_table(entries) -> pd.DataFrame:
    rows = [(e.path.name if not e.shipped else f"★ {e.key}", e.task, e.preset, e.model, e.data,
             None if e.best_valid_acc is None else round(float(e.best_valid_acc), 4), e.steps, e.finished, e.shipped)
            for e in entries]
    return pd.DataFrame(rows, columns=COLUMNS)


class RunsTab:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        with gr.Row():
            self.refresh = gr.Button("Refresh", elem_id="runs-refresh", scale=0, min_width=120)
            gr.Markdown("Your runs in this browser session and the shipped checkpoints (★). "
                        "Tick several to overlay their curves.")
        self.table = gr.Dataframe(runs_table([]), interactive=False, elem_id="runs-table", max_height=360)
        with gr.Row():
            self.pick = gr.Dropdown([], multiselect=True, allow_custom_value=True, label="Overlay these runs", scale=3,
                                    elem_id="runs-pick")
            self.metric = gr.Radio(list(METRICS), value="valid accuracy", label="Curve", scale=1)
        self.plot = gr.LinePlot(with_all_series(empty_curves(), SLOTS), x="step", y="value", color="series",
                                color_map=SLOT_COLORS, colors_in_legend=[], height=320, title="runs compared",
                                elem_id="runs-plot")
        self.legend = gr.HTML(elem_id="runs-legend")
        with gr.Row():
            self.delete_pick = gr.Dropdown([], label="Delete a run of yours", allow_custom_value=True, scale=3)
            self.delete_button = gr.Button("Delete", variant="stop", scale=1)
        self.message = gr.Markdown()
        listing = [self.table, self.pick, self.delete_pick]
        self.refresh.click(self.list_runs, self.pick, listing, api_name="runs_list")
        self.pick.change(self.overlay, [self.pick, self.metric], [self.plot, self.legend], api_name="runs_overlay")
        self.metric.change(self.overlay, [self.pick, self.metric], [self.plot, self.legend], api_visibility="private")
        self.delete_button.click(self.delete, self.delete_pick, [self.message], api_name="runs_delete").then(
            self.list_runs, self.pick, listing, api_visibility="private")

    def list_runs(self, picked, request: gr.Request):
        entries = self.ctx.workspace.visible_runs(session_of(request))
        keys = [e.key for e in entries]
        choices = [(e.label + f" ({e.task})", e.key) for e in entries]
        own = [(e.label, e.key) for e in entries if not e.shipped]
        return (runs_table(entries), gr.update(choices=choices, value=[k for k in (picked or []) if k in keys]),
                gr.update(choices=own, value=own[0][1] if own else None))

    @user_errors
    def overlay(self, picked, metric, request: gr.Request):
        """One curve per picked run (the chosen metric) on a shared step axis, and its legend.

        Runs are drawn as slots "run 1".."run 8" with fixed colours: Gradio's LinePlot keeps the
        colour domain of its first draw, so series names must not change between updates."""
        from hwml.runs import read_metrics

        which, split = METRICS[metric]
        if len(picked or []) > len(SLOTS):
            raise HwmlError(f"overlay at most {len(SLOTS)} runs at once")
        frames, legend = [], []
        for slot, key in zip(SLOTS, picked or []):
            entry = self.ctx.workspace.find_run(session_of(request), key)
            loss, acc = curve_frames(read_metrics(entry.path))
            frame = acc if which == "acc" else loss
            frame = frame[frame["series"] == f"{split} {which}"].assign(series=slot)
            frames.append(frame)
            name = entry.key if entry.shipped else entry.path.name
            legend.append(f"<span style='color:{SLOT_COLORS[slot]}'>&#9632;</span> {slot}: "
                          f"{html.escape(name)} ({html.escape(entry.preset or '?')})")
        data = pd.concat(frames, ignore_index=True) if frames else empty_curves()
        return with_all_series(data, SLOTS), "<br>".join(legend)

    @user_errors
    def delete(self, key, request: gr.Request):
        name = self.ctx.workspace.delete_run(session_of(request), key, active=self.ctx.jobs.active_run_dirs())
        return f"Deleted `{name}`."
