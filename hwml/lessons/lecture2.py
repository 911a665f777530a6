"""Lecture 2 on the same frames: generative (closed form) vs discriminative (the same linear
boundaries, learned) vs deep."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hwml.i18n import t

if TYPE_CHECKING:
    pass


def compare_models(
    data,
    presets=("gaussian", "logreg", "medium"),
    max_steps: int = 300,
    max_seconds: float = 20.0,
    seed: int = 0,
    out_root=None,
    stop_event=None,
    lang: str = "en",
) -> list[dict]:
    """Train each preset briefly on the same frames and report validation accuracy and time:
    generative (closed form) vs discriminative (same linear boundaries, learned) vs deep."""
    from hwml.api import train_run

    rows = []
    with tempfile.TemporaryDirectory(dir=out_root) as tmp:
        for preset in presets:
            if stop_event is not None and stop_event.is_set():
                break
            t0 = time.perf_counter()
            summary = train_run(
                "phoneme",
                data,
                Path(tmp) / preset,
                preset=preset,
                max_steps=max_steps,
                max_seconds=max_seconds,
                seed=seed,
                stop_event=stop_event,
            )
            acc = summary.get("best_valid_acc")
            rows.append(
                {
                    t("col.preset", lang): preset,
                    t("col.kind", lang): t(_model_family(preset), lang),
                    t("col.valid_acc", lang): round(acc, 4) if acc is not None else None,
                    t("col.steps", lang): summary.get("step"),
                    t("col.seconds", lang): round(time.perf_counter() - t0, 2),
                }
            )
    return rows


def _model_family(preset: str) -> str:
    """The catalogue key of a preset's model family."""
    return {"gaussian": "family.generative", "logreg": "family.linear"}.get(preset, "family.deep")
