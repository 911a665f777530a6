"""The speaker presets: every setting a speaker run knows, with its default, and each preset as a
named set of overrides (no torch here: the UI and the CLI read it). A preset's note, shown in the
Learn tab, is the catalogue key `NOTES[name]` in hwml/i18n/*.json."""

from __future__ import annotations

MODEL_NAME = "speaker_classifier"


# Every setting a speaker run knows, with its default; a preset is a named subset of overrides.
MODEL_KEYS = (
    "encoder",
    "d_model",
    "depth",
    "heads",
    "ff_dim",
    "dropout",
    "norm_first",
    "conv_kernel",
    "pooling",
    "head",
    "head_hidden",
    "emb_dim",
    "s",
    "m",
    "input_norm",
    "subsample",
)


SETTINGS = {
    # model (hwml.models.speaker.SpeakerClassifier)
    "encoder": "transformer",
    "d_model": 80,
    "depth": 1,
    "heads": 2,
    "ff_dim": 256,
    "dropout": 0.1,
    "norm_first": False,
    "conv_kernel": 31,
    "pooling": "mean",
    "head": "softmax",
    "head_hidden": 0,
    "emb_dim": 0,
    "s": 30.0,
    "m": 0.2,
    "input_norm": "none",
    "subsample": 1,  # stack this many frames per encoder step
    # data
    "segment_len": 128,  # training crop length (frames)
    "freq_mask": 0,  # SpecAugment: mask up to this many mel bins per crop (0 = off)
    "time_mask": 0,  # ... and up to this many frames (at most a quarter of the crop)
    "level_db": 0.0,  # random gain of up to +-level_db per crop (0 = off)
    "noise_prob": 0.0,  # share of crops given additive coloured noise ...
    "noise_snr_min": 5.0,  # ... at an SNR drawn uniformly from [min, max] dB
    "noise_snr_max": 20.0,
    "batch_size": 16,
    "valid_fraction": 0.1,  # of each speaker's utterances
    "valid_share": 0.0,  # > 0: validate less often than valid_every when validation would
    # otherwise take more than this share of the compute (big sets)
    "infer_window": 512,  # longer utterances: windows of this many frames, half overlap
    "infer_frames": 16384,  # padded frames per inference batch
    # engine (hwml.train.engine.DEFAULTS)
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 0.01,
    "warmup_steps": 1000,
    "schedule": "cosine",
    "min_lr_ratio": 0.0,
    "grad_clip": 0.0,
    "max_epochs": 20,
    "valid_every": 2000,
    "patience": 0,
}


TUNED = {
    "input_norm": "global",
    "norm_first": True,
    "batch_size": 32,
    "lr": 3e-3,
    "warmup_steps": 100,
    "grad_clip": 5.0,
    "min_lr_ratio": 0.05,
    "max_epochs": 200,
    "valid_every": 100,
    "valid_share": 0.2,
    "patience": 10,
}


# Fine-tuning (`train --init RUN`) keeps RUN's architecture (`architecture` below) and runs a preset at
# a lower lr with a short warm-up unless set (hwml/train/finetune.py says why).
PRESETS: dict[str, dict] = {
    # The course's sample code, batch-first: 40->80 prenet, one TransformerEncoderLayer (2 heads,
    # ff 256), mean pooling, Linear-ReLU-Linear head, AdamW 1e-3, 1000 warmup steps, cosine to 0,
    # 128-frame crops, batch 16, validation every 2000 steps, no early stopping; 22 epochs are
    # the course's 70,000 steps on its course-size training set.
    "simple": {"head_hidden": 80, "max_epochs": 22},
    # Tuned for CPU minutes, not GPU hours: per-bin input standardisation, pre-norm, two frames
    # per encoder step, larger batches, a short warmup, gradient clipping, early stopping.
    "medium": {**TUNED, "d_model": 96, "depth": 2, "heads": 4, "ff_dim": 192, "subsample": 2},
    # Conformer blocks (batch-first, masked attention and convolution), 4 frames per step,
    # masked mean pooling.
    "strong": {
        **TUNED,
        "encoder": "conformer",
        "d_model": 64,
        "depth": 2,
        "heads": 4,
        "ff_dim": 128,
        "conv_kernel": 15,
        "subsample": 4,
    },
    # strong + self-attentive pooling + additive margin softmax (cosine logits: embeddings for
    # enrolment and verification). Tuned on real speech: the margin of speaker-recognition recipes
    # (s 30, m 0.2) named unseen speakers best; SAP beat ASP; longer crops, a wider model and
    # log-mel noise/level augmentation did not pay at a few CPU minutes (README: Benchmarks, HW4).
    "boss": {
        **TUNED,
        "encoder": "conformer",
        "d_model": 64,
        "depth": 2,
        "heads": 4,
        "ff_dim": 128,
        "conv_kernel": 15,
        "subsample": 4,
        "pooling": "sap",
        "emb_dim": 64,
        "head": "amsoftmax",
        "s": 30.0,
        "m": 0.2,
    },
}


NOTES = {name: f"preset.speaker.{name}" for name in PRESETS}  # catalogue keys (hwml/i18n)


def architecture(settings: dict) -> dict:
    """The settings that make a trained run's network: what a run fine-tuned from it keeps
    (hwml.train.finetune), unless the user sets them."""
    return {k: settings[k] for k in MODEL_KEYS if k in settings}
