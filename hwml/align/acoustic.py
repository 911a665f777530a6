"""The acoustic model of an alignment: a phoneme run whose frame log-posteriors Viterbi follows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hwml import settings
from hwml.align.viterbi import log_scores
from hwml.audio.params import MFCC39, FeatureParams
from hwml.errors import HwmlError

LOGIT_BATCH_UTTS = 256  # utterances scored per model call (bounds memory on big corpora)


def shipped_phoneme_model() -> Path:
    """The shipped phoneme run folder ($HWML_CHECKPOINTS_DIR/phoneme, else the repository's)."""
    return settings.checkpoints_dir() / "phoneme"


def load_align_model(run_dir) -> tuple[torch.nn.Module, dict]:
    from hwml.runs.checkpoint import load_run

    model, config = load_run(run_dir)
    if config.get("task") != "phoneme":
        raise HwmlError(f"{run_dir}: not a phoneme run (task {config.get('task')!r}); --align-model needs one")
    if FeatureParams.from_dict(config.get("features") or {}) != MFCC39:
        raise HwmlError(f"{run_dir}: the alignment model must use hwml's default mfcc39 features")
    return model, config


def log_posteriors(model, config: dict, feats: list[torch.Tensor]) -> list[np.ndarray]:
    """(T, C) frame log-posteriors of each utterance, scored in batches of utterances."""
    from hwml.data.types import FrameSet
    from hwml.phoneme.predict import predict_logits

    out = []
    for i in range(0, len(feats), LOGIT_BATCH_UTTS):
        chunk = feats[i : i + LOGIT_BATCH_UTTS]
        lengths = torch.tensor([len(f) for f in chunk])
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
        frames = FrameSet(
            torch.cat(chunk), None, offsets, [str(k) for k in range(len(chunk))], list(config["class_names"]), 1
        )
        logp = log_scores(predict_logits(model, config, frames))
        out += [logp[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    return out


def mean_log_posteriors(models: list[tuple], feats: list[torch.Tensor]) -> list[np.ndarray]:
    """(T, C) frame log-posteriors of each utterance averaged over several phoneme runs (the
    log of their geometric mean: a model average; one run gives its own). They must share
    their class names."""
    names = list(models[0][1]["class_names"])
    for _, config in models[1:]:
        if list(config["class_names"]) != names:
            raise HwmlError("the alignment models must have the same phone classes to be averaged")
    total = None
    for model, config in models:
        logps = log_posteriors(model, config, feats)
        total = logps if total is None else [a + b for a, b in zip(total, logps)]
    return [t / len(models) for t in total]
