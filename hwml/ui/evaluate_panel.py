"""The Evaluate panel both task tabs share: pick any finished run (yours or shipped), pick
labelled data, and see the confusion heatmap with class names, per-class accuracy and the
worst confusions. The numbers come from `hwml.workflow.evaluate_run`."""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr
import pandas as pd

from hwml.workspace import BUILTIN_FOLDERS, SOURCE_BUILTIN, SOURCE_PATH, SOURCE_ZIP, local_paths_allowed
from hwml.ui.widgets import AppContext, NO_RUNS_NOTE, run_picker, session_of, task_run, user_errors

SPLITS = ["test", "valid", "all"]


def evaluation_view(run_dir: Path, result: dict, task: str) -> tuple[str, object, pd.DataFrame, pd.DataFrame]:
    """(summary markdown, heatmap figure, per-class table, worst confusions) of an evaluated run."""
    from hwml.evaluate import confusion_figure, plot_data, read_confusion

    names, counts = read_confusion(run_dir)
    unit = "frames" if task == "phoneme" else "utterances"
    title = f"{Path(str(result.get('data', ''))).name} ({result.get('split', '?')}): accuracy {result['accuracy']:.3f}"
    per_class = pd.DataFrame([(name, round(v["acc"], 4), v["count"]) for name, v in result["per_class"].items()],
                             columns=["class", "accuracy", unit]).sort_values("accuracy", kind="stable")
    worst = pd.DataFrame(result["worst_confusions"], columns=["true", "predicted", "count", "fraction"]).round(4)
    summary = (f"**Accuracy {result['accuracy']:.2%}** on {result['n']:,} {unit} "
               f"(split: {result.get('split', '?')}, data: `{Path(str(result.get('data', ''))).name}`)")
    return summary, confusion_figure(plot_data(counts, names), title), per_class, worst


class EvaluatePanel:
    def __init__(self, ctx: AppContext, kind: str):
        self.ctx, self.kind = ctx, kind
        sources = [SOURCE_BUILTIN, SOURCE_ZIP] + ([SOURCE_PATH] if local_paths_allowed() else [])
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                self.run = run_picker(ctx, kind, elem_id=f"{kind}-eval-run")
                self.source = gr.Radio(sources, value=SOURCE_BUILTIN, label="Labelled data")
                self.path = gr.Textbox(label="Folder path on this machine", visible=False)
                self.upload = gr.File(label="Zip of a labelled course folder", file_types=[".zip"], visible=False,
                                      type="filepath")
                self.split = gr.Radio(SPLITS, value="test", label="Split",
                                      info="test: the labelled held-out part; valid: the run's own validation split")
                self.button = gr.Button("Evaluate", variant="primary", elem_id=f"{kind}-eval-button")
                gr.Markdown(NO_RUNS_NOTE)
            with gr.Column(scale=2):
                self.summary = gr.Markdown(elem_id=f"{kind}-eval-summary")
                self.heatmap = gr.Plot(label="Confusion matrix", elem_id=f"{kind}-eval-heatmap")
                with gr.Row():
                    self.per_class = gr.Dataframe(headers=["class", "accuracy", "count"], label="Per-class accuracy",
                                                  interactive=False, max_height=360)
                    self.worst = gr.Dataframe(headers=["true", "predicted", "count", "fraction"],
                                              label="Worst confusions", interactive=False, max_height=360)
                self.csv = gr.File(label="confusion.csv", interactive=False)
        self.source.change(lambda s: (gr.update(visible=s == SOURCE_PATH), gr.update(visible=s == SOURCE_ZIP)),
                           self.source, [self.path, self.upload], api_visibility="private", queue=False)
        self.button.click(self.evaluate, [self.run, self.source, self.path, self.upload, self.split],
                          [self.summary, self.heatmap, self.per_class, self.worst, self.csv],
                          api_name=f"{kind}_evaluate")

    @user_errors
    def evaluate(self, run_key, source, path, upload, split, request: gr.Request):
        """Evaluate a run on labelled data; shipped runs are evaluated from a copy in the
        session's folder, so their folders are never written."""
        from hwml.runs import read_config
        from hwml.workflow import evaluate_run

        session = session_of(request)
        ws = self.ctx.workspace
        entry = task_run(self.ctx, session, run_key, self.kind)
        config = read_config(entry.path)
        trained_on = (config.get("data") or {}).get("format")
        fmt = trained_on if trained_on in BUILTIN_FOLDERS[self.kind] else None
        prepare = ws.resolve_source(session, self.kind, source, builtin_format=fmt, path=path, upload=upload)
        data = prepare(lambda message: None)
        run_dir = entry.path
        if entry.shipped:
            run_dir = ws.session_dir(session) / "evaluations" / entry.key.replace(":", "-").replace("/", "-")
            run_dir.mkdir(parents=True, exist_ok=True)
            for name in ("config.json", "model.safetensors"):
                shutil.copy2(entry.path / name, run_dir / name)
        result = evaluate_run(run_dir, data, split=split)
        summary, heatmap, per_class, worst = evaluation_view(run_dir, result, self.kind)
        return summary, heatmap, per_class, worst, result.get("confusion_csv")
