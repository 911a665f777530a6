"""A task tab (Phoneme (HW2), Speaker (HW4)): its Train, Evaluate and Predict sub-tabs."""

from __future__ import annotations

from hwml.ui.lang import localized_tab
from hwml.ui.widgets import AppContext


def task_tab(ctx: AppContext, kind: str, predict_panel) -> dict:
    """A task's Train, Evaluate and Predict sub-tabs, inside the current gr.Tab; only Predict
    differs between the tasks (`predict_panel`: the task's PredictPanel subclass)."""
    from hwml.ui.evaluate_panel import EvaluatePanel
    from hwml.ui.train_panel import TrainPanel

    with localized_tab(ctx.localized, "tab.train"):
        train = TrainPanel(ctx, kind, default_preset="medium")
    with localized_tab(ctx.localized, "tab.evaluate") as eval_tab:
        evaluate = EvaluatePanel(ctx, kind)
    with localized_tab(ctx.localized, "tab.predict") as predict_tab:
        predict = predict_panel(ctx)
    return {"train": train, "evaluate": evaluate, "predict": predict, "eval_tab": eval_tab, "predict_tab": predict_tab}
