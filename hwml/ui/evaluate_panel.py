"""The Evaluate panel both task tabs share: pick any finished run (yours or shipped), pick
labelled data, and see the confusion heatmap with class names, per-class accuracy and the
worst confusions. The numbers come from `hwml.api.evaluate_run`."""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr
import pandas as pd

from hwml.i18n import t
from hwml.serve.sources import (
    BUILTIN_FOLDERS,
    SOURCE_BUILTIN,
    SOURCE_PATH,
    SOURCE_ZIP,
    discard_prepared,
    resolve_source,
)
from hwml.settings import allow_local_paths
from hwml.ui.lang import L, lang_of
from hwml.ui.widgets import NO_RUNS_NOTE, AppContext, run_picker, session_of, task_run, user_errors

SPLITS = ["test", "valid", "all"]
PER_CLASS_KEYS = ["col.class", "col.accuracy", "col.count"]
WORST_KEYS = ["col.true", "col.predicted", "col.count", "col.fraction"]


def evaluation_view(
    run_dir: Path, result: dict, task: str, lang: str = "en"
) -> tuple[str, object, pd.DataFrame, pd.DataFrame]:
    """(summary markdown, heatmap figure, per-class table, worst confusions) of an evaluated run."""
    from hwml.runs.confusion import confusion_figure, plot_data, read_confusion
    from hwml.ui.figures import localise_confusion

    names, counts = read_confusion(run_dir)
    unit = t("unit.frames" if task == "phoneme" else "unit.utterances", lang)
    split = t(f"split.{result.get('split')}", lang) if result.get("split") in SPLITS else result.get("split", "?")
    data = Path(str(result.get("data", ""))).name
    title = t("eval.title", lang, data=data, split=split, acc=f"{result['accuracy']:.3f}")
    per_class = pd.DataFrame(
        [(name, round(v["acc"], 4), v["count"]) for name, v in result["per_class"].items()],
        columns=["class", "accuracy", "count"],
    ).sort_values("accuracy", kind="stable")
    per_class.columns = [t("col.class", lang), t("col.accuracy", lang), unit]
    worst = pd.DataFrame(result["worst_confusions"], columns=["true", "predicted", "count", "fraction"]).round(4)
    worst.columns = [t(k, lang) for k in WORST_KEYS]
    summary = t(
        "eval.summary", lang, acc=f"{result['accuracy']:.2%}", n=f"{result['n']:,}", unit=unit, split=split, data=data
    )
    figure = localise_confusion(confusion_figure(plot_data(counts, names), title), lang)
    return summary, figure, per_class, worst


class EvaluatePanel:
    def __init__(self, ctx: AppContext, kind: str):
        self.ctx, self.kind = ctx, kind
        from hwml.ui.train_panel import source_choices

        sources = [SOURCE_BUILTIN, SOURCE_ZIP] + ([SOURCE_PATH] if allow_local_paths() else [])
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                self.run = run_picker(ctx, kind, elem_id=f"{kind}-eval-run")
                self.source = gr.Radio(source_choices(sources), value=SOURCE_BUILTIN, label=L("eval.data"))
                self.path = gr.Textbox(label=L("ui.folder_path"), visible=False)
                self.upload = gr.File(label=L("eval.zip"), file_types=[".zip"], visible=False, type="filepath")
                self.split = gr.Radio(
                    [(L(f"split.{s}"), s) for s in SPLITS],
                    value="test",
                    label=L("eval.split"),
                    info=L("eval.split_info"),
                )
                self.button = gr.Button(L("eval.button"), variant="primary", elem_id=f"{kind}-eval-button")
                gr.Markdown(NO_RUNS_NOTE)
            with gr.Column(scale=2):
                self.summary = gr.Markdown(elem_id=f"{kind}-eval-summary")
                self.heatmap = gr.Plot(label=L("eval.heatmap"), elem_id=f"{kind}-eval-heatmap")
                with gr.Row():
                    self.per_class = ctx.localized.table(
                        gr.Dataframe(
                            headers=["class", "accuracy", "count"],
                            label=L("eval.per_class"),
                            interactive=False,
                            max_height=360,
                        ),
                        PER_CLASS_KEYS,
                    )
                    self.worst = ctx.localized.table(
                        gr.Dataframe(
                            headers=["true", "predicted", "count", "fraction"],
                            label=L("eval.worst"),
                            interactive=False,
                            max_height=360,
                        ),
                        WORST_KEYS,
                    )
                self.csv = gr.File(label="confusion.csv", interactive=False)
        self.source.change(
            lambda s: (gr.update(visible=s == SOURCE_PATH), gr.update(visible=s == SOURCE_ZIP)),
            self.source,
            [self.path, self.upload],
            api_visibility="private",
            queue=False,
        )
        self.button.click(
            self.evaluate,
            [self.run, self.source, self.path, self.upload, self.split],
            [self.summary, self.heatmap, self.per_class, self.worst, self.csv],
            api_name=f"{kind}_evaluate",
        )

    @user_errors
    def evaluate(self, run_key, source, path, upload, split, request: gr.Request):
        """Evaluate a run on labelled data; shipped runs are evaluated from a copy in the
        session's folder, so their folders are never written."""
        from hwml.api import evaluate_run
        from hwml.runs.folder import read_config

        session = session_of(request)
        ws = self.ctx.workspace
        entry = task_run(self.ctx, session, run_key, self.kind)
        config = read_config(entry.path)
        trained_on = (config.get("data") or {}).get("format")
        fmt = trained_on if trained_on in BUILTIN_FOLDERS[self.kind] else None
        prepare = resolve_source(ws, session, self.kind, source, builtin_format=fmt, path=path, upload=upload)
        try:
            data = prepare(lambda message: None)
            run_dir = entry.path
            if entry.shipped:
                run_dir = ws.session_dir(session) / "evaluations" / entry.key.replace(":", "-").replace("/", "-")
                run_dir.mkdir(parents=True, exist_ok=True)
                for name in ("config.json", "model.safetensors"):
                    shutil.copy2(entry.path / name, run_dir / name)
            result = evaluate_run(run_dir, data, split=split)
        finally:  # an uploaded zip's extraction is done with once evaluated (or refused)
            discard_prepared(ws, prepare)
        summary, heatmap, per_class, worst = evaluation_view(run_dir, result, self.kind, lang_of(request))
        return summary, heatmap, per_class, worst, result.get("confusion_csv")
