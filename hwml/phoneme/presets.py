"""The phoneme presets and the settings each model takes (no torch here: the UI and the CLI read it).

Engine settings (lr, schedule, max_epochs, ...) are `hwml.train.engine.DEFAULTS`'s keys; the rest
are the task's (`TASK_KEYS`). A preset's note, shown in the Learn tab, is the catalogue key
`NOTES[name]` in hwml/i18n/*.json.
"""

from __future__ import annotations

_COMMON = {"valid_fraction": 0.1, "split": "auto", "label_smoothing": 0.0, "eval_batch": 8192, "max_seconds": None}


# Fine-tuning (`train --init RUN`) keeps RUN's architecture (`architecture` below) and runs a preset at
# a lower lr with a short warm-up unless set (hwml/train/finetune.py says why).
PRESETS: dict[str, dict] = {
    # The course sample, exactly: 429-1024-512-128-39, ReLU, logits, Adam 1e-4, batch 64,
    # validation once per epoch.
    "simple": {
        **_COMMON,
        "model": "mlp",
        "concat_nframes": 11,
        "hidden": [1024, 512, 128],
        "norm": "none",
        "dropout": 0.0,
        "input_norm": False,
        "init": "torch",
        "batch_size": 64,
        "optimizer": "adam",
        "lr": 1e-4,
        "weight_decay": 0.0,
        "schedule": "constant",
        "warmup_steps": 0,
        "max_epochs": 50,
        "valid_every": "epoch",
        "patience": 5,
    },
    # Wider context, BatchNorm + dropout, bigger batches (matmuls a CPU runs efficiently), AdamW
    # with warmup and cosine decay, label smoothing. Sized for a CPU's minutes: in the same time a
    # 512-wide net sees more frames than a 1024-wide one and ends better; `strong` is for longer runs.
    "medium": {
        **_COMMON,
        "model": "mlp",
        "concat_nframes": 21,
        "hidden": [512, 512, 512],
        "norm": "batch",
        "dropout": 0.2,
        "input_norm": True,
        "init": "kaiming",
        "batch_size": 512,
        "optimizer": "adamw",
        "lr": 3e-3,
        "weight_decay": 0.05,
        "schedule": "cosine",
        "warmup_steps": 50,
        "max_epochs": 20,
        "label_smoothing": 0.1,
        "valid_every": 500,
        "patience": 10,
    },
    "strong": {
        **_COMMON,
        "model": "mlp",
        "concat_nframes": 21,
        "hidden": [1024, 1024, 1024],
        "norm": "batch",
        "dropout": 0.25,
        "input_norm": True,
        "init": "kaiming",
        "batch_size": 512,
        "optimizer": "adamw",
        "lr": 2e-3,
        "weight_decay": 0.05,
        "schedule": "cosine",
        "warmup_steps": 50,
        "max_epochs": 30,
        "label_smoothing": 0.1,
        "valid_every": 500,
        "patience": 10,
    },
    # A bidirectional LSTM over whole utterances, trained on random 1 s chunks of them; it runs
    # at half the frame rate (subsample 2), which doubles the frames a CPU gets through.
    "boss": {
        **_COMMON,
        "model": "birnn",
        "concat_nframes": 1,
        "hidden": 128,
        "layers": 2,
        "kernel": 5,
        "channels": 128,
        "dropout": 0.2,
        "cell": "lstm",
        "subsample": 2,
        "batch_size": 32,
        "chunk_frames": 100,
        "optimizer": "adamw",
        "lr": 3e-3,
        "weight_decay": 0.05,
        "schedule": "cosine",
        "warmup_steps": 30,
        "grad_clip": 1.0,
        "max_epochs": 30,
        "label_smoothing": 0.1,
        "valid_every": 200,
        "patience": 10,
        "eval_frames": 40000,
    },
    # Lecture 2 baselines on the same 11-frame windows: generative vs discriminative.
    "gaussian": {**_COMMON, "model": "gaussian", "concat_nframes": 11, "shrinkage": 1e-3, "batch_size": 8192},
    "logreg": {
        **_COMMON,
        "model": "linear",
        "concat_nframes": 11,
        "input_norm": True,
        "batch_size": 1024,
        "optimizer": "adamw",
        "lr": 3e-3,
        "weight_decay": 0.0,
        "schedule": "cosine",
        "warmup_steps": 100,
        "max_epochs": 5,
        "valid_every": 500,
        "patience": 10,
    },
}


MODEL_KEYS = {
    "mlp": ("hidden", "norm", "dropout", "input_norm", "init"),
    "linear": ("input_norm",),
    "birnn": ("hidden", "layers", "kernel", "channels", "dropout", "cell", "subsample"),
    "gaussian": (),
}


TASK_KEYS = {
    "model",
    "concat_nframes",
    "batch_size",
    "chunk_frames",
    "eval_frames",
    "shrinkage",
    *_COMMON,
    *(k for keys in MODEL_KEYS.values() for k in keys),
}


NOTES = {name: f"preset.phoneme.{name}" for name in PRESETS}  # catalogue keys (hwml/i18n)


def architecture(settings: dict) -> dict:
    """The settings that make a trained run's network: what a run fine-tuned from it keeps
    (hwml.train.finetune), unless the user sets them."""
    if settings.get("model") == "gaussian":
        # a closed-form fit; trained on by gradient descent it is logistic regression
        return {"model": "linear", "input_norm": False, "concat_nframes": settings.get("concat_nframes", 11)}
    keys = ("model", "concat_nframes", *MODEL_KEYS.get(settings.get("model"), ()))
    return {k: settings[k] for k in keys if k in settings}
