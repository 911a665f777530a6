"""HW2 phoneme classification: presets, the engine Task, evaluation and prediction.

Frames stay where the reader put them (a (N, 39) tensor for libriphone, a read-only (N, 429)
memmap for timit_11) and every batch is gathered by one index tensor: random row indices
(sorted, for memmap locality), context windows clamped to each frame's own utterance by
`hwml.audio.context_indices`, or whole-utterance chunks for the sequence model. No Dataset,
no DataLoader, no Python call per frame (PITFALLS 7).

The validation split never shares an utterance with training (PITFALLS 5): libriphone holds
out whole speakers (see `speaker_of`) or whole utterances; timit_11 has no
boundaries, so ten contiguous blocks are held out and config.json says so.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hwml import timing
from hwml.audio.decode import AUDIO_SUFFIXES
from hwml.audio.features import featurize
from hwml.audio.frames import context_indices, frame_times, label_segments
from hwml.audio.params import MFCC39, MFCC_DIM, FeatureParams
from hwml.data.types import Dataset, FrameSet
from hwml.errors import HwmlError
from hwml.machine import single_thread
from hwml.safeio import FEATURE_SUFFIXES, load_tensor_file, write_csv_atomic
from hwml.train.engine import DEFAULTS as ENGINE_DEFAULTS

_COMMON = {"valid_fraction": 0.1, "split": "auto", "label_smoothing": 0.0, "eval_batch": 8192, "max_seconds": None}
# Fine-tuning (`train --init RUN`) keeps RUN's architecture and runs a preset at 0.3x its lr with at
# most 20 warm-up steps unless set (hwml/finetune.py says why).
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
    # with warmup and cosine decay, label smoothing. Sized for the CPU: on 2 cores for 2 minutes
    # a 512-wide net sees more frames than a 1024-wide one and ends better; `strong` is for
    # longer runs.
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


# ----------------------------------------------------------------------------------------- frames


def gather_rows(feats, rows: torch.Tensor) -> torch.Tensor:
    """feats[rows] as a float32 tensor; on a numpy memmap one fancy-indexing read."""
    if isinstance(feats, torch.Tensor):
        return feats[rows]
    return torch.from_numpy(np.ascontiguousarray(feats[rows.numpy()], dtype=np.float32))


def utterance_bounds(frames: FrameSet) -> tuple[torch.Tensor, torch.Tensor]:
    """(start, end) of each frame's utterance; a split without offsets is one utterance."""
    n = len(frames)
    offsets = frames.offsets if frames.offsets is not None else torch.tensor([0, n])
    lengths = offsets[1:] - offsets[:-1]
    return torch.repeat_interleave(offsets[:-1], lengths), torch.repeat_interleave(offsets[1:], lengths)


def stacked_inputs(frames: FrameSet, rows: torch.Tensor, n: int, bounds=None) -> torch.Tensor:
    """(B, n * 39) model inputs for frame rows: the stored window when it already is n frames
    wide (timit_11), else n frames around each row, clamped to its utterance (edge repeat)."""
    if frames.stacked == n:
        return gather_rows(frames.feats, rows)
    if frames.stacked != 1:
        raise HwmlError(f"features are {frames.stacked}-frame windows but the model needs {n}-frame windows")
    start, end = bounds if bounds is not None else utterance_bounds(frames)
    idx = context_indices(rows, start[rows], end[rows], n)
    return gather_rows(frames.feats, idx.reshape(-1)).reshape(len(rows), -1)


def subset(frames: FrameSet, rows: torch.Tensor | None = None, utts: list[int] | None = None) -> FrameSet:
    """A FrameSet of some rows (no boundaries kept) or of whole utterances (boundaries kept)."""
    if utts is not None:
        starts, ends = frames.offsets[utts], frames.offsets[[u + 1 for u in utts]]
        rows = (
            torch.cat([torch.arange(int(s), int(e)) for s, e in zip(starts, ends)])
            if utts
            else torch.zeros(0, dtype=torch.long)
        )
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(ends - starts, 0)])
        ids = [frames.utt_ids[u] for u in utts]
    else:
        offsets, ids = None, None
    labels = frames.labels[rows] if frames.labels is not None else None
    return FrameSet(gather_rows(frames.feats, rows), labels, offsets, ids, frames.class_names, frames.stacked)


def speaker_of(utt_id: str) -> str:
    """The utterance id without its last "-"/"_" field: the voice of the built-in corpus
    ("en-us+m1-p39r180-000"), the speaker of a TIMIT import ("dr1_fcjf0_sa1"), speaker and
    chapter of LibriSpeech ids ("103-1240-0000")."""
    return re.sub(r"[-_][^-_]*$", "", utt_id) or utt_id


def choose_split(frames: FrameSet, kind: str, fraction: float, seed: int) -> dict:
    """Which part of the training split validates. Returns the JSON stored in config.json."""
    n = len(frames)
    if fraction <= 0:
        return {"kind": "none", "valid_fraction": 0.0, "note": "no validation: the last weights are kept"}
    if not 0 < fraction < 1:
        raise HwmlError(f"valid_fraction must be in [0, 1), got {fraction}")
    gen = torch.Generator().manual_seed(seed)
    if frames.offsets is None:
        if kind not in ("auto", "blocks"):
            raise HwmlError(f"split={kind!r} needs utterance boundaries, which timit_11 does not have: use blocks")
        size = n // 10
        blocks = [[int(i * size + size * (1 - fraction)), int((i + 1) * size if i < 9 else n)] for i in range(10)]
        return {
            "kind": "blocks",
            "valid_fraction": fraction,
            "valid_blocks": blocks,
            "note": "timit_11 has no utterance boundaries: 10 contiguous row blocks are held out, so "
            "only the frames at each block edge can share an utterance with training",
        }
    ids = frames.utt_ids
    speakers = sorted({speaker_of(u) for u in ids})
    if kind == "auto":
        kind = "speaker" if len(speakers) >= 5 else "utterance"
    if kind == "speaker":
        order = [speakers[i] for i in torch.randperm(len(speakers), generator=gen).tolist()]
        held = set(order[: max(1, round(len(speakers) * fraction))])
        valid = [u for u in ids if speaker_of(u) in held]
        note = (
            f"{len(held)} of {len(speakers)} speakers held out (speaker = the utterance id without its "
            f"last '-'/'_' field)"
        )
    elif kind == "utterance":
        k = max(1, round(len(ids) * fraction))
        valid = [ids[i] for i in sorted(torch.randperm(len(ids), generator=gen)[:k].tolist())]
        note = "whole utterances held out at random"
    else:
        raise HwmlError(f"unknown split {kind!r}: use auto, speaker, utterance or blocks")
    if len(valid) == len(ids):
        raise HwmlError("the validation split would take every utterance: lower valid_fraction")
    return {"kind": kind, "valid_fraction": fraction, "valid_utts": valid, "note": note}


def split_rows(frames: FrameSet, split: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(train rows, valid rows) of the training FrameSet under a choose_split() result."""
    is_valid = torch.zeros(len(frames), dtype=torch.bool)
    if split["kind"] == "blocks":
        for a, b in split["valid_blocks"]:
            is_valid[a:b] = True
    elif split["kind"] != "none":
        index = {u: i for i, u in enumerate(frames.utt_ids)}
        for u in split["valid_utts"]:
            if u not in index:
                raise HwmlError(f"validation utterance {u!r} is not in this dataset")
            is_valid[frames.offsets[index[u]] : frames.offsets[index[u] + 1]] = True
    labelled = frames.labels >= 0
    return torch.nonzero(~is_valid & labelled).squeeze(1), torch.nonzero(is_valid & labelled).squeeze(1)


def valid_split(config: dict, frames: FrameSet) -> FrameSet:
    """The run's validation frames, rebuilt from config.json (hwml.evaluate's split="valid")."""
    split = config.get("split") or {}
    if split.get("kind") in (None, "none"):
        raise HwmlError("this run trained without a validation split")
    if split["kind"] == "blocks":
        if frames.offsets is not None or len(frames) < split["valid_blocks"][-1][1]:
            raise HwmlError("this data is not the timit_11 set the run was trained on")
        return subset(frames, rows=split_rows(frames, split)[1])
    index = {u: i for i, u in enumerate(frames.utt_ids or [])}
    missing = [u for u in split["valid_utts"] if u not in index]
    if missing:
        raise HwmlError(f"validation utterance {missing[0]!r} is not in this dataset's training split")
    return subset(frames, utts=[index[u] for u in split["valid_utts"]])


# ------------------------------------------------------------------------------------------ task


def resolve_settings(dataset: Dataset, preset: str, overrides: dict, seed: int) -> tuple[dict, list[str]]:
    """Preset + overrides, adapted to the data format; notes say what was changed and why."""
    if preset not in PRESETS:
        raise HwmlError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
    unknown = set(overrides) - TASK_KEYS - set(ENGINE_DEFAULTS)
    if unknown:
        raise HwmlError(f"unknown setting(s) {', '.join(sorted(unknown))} for the phoneme task")
    notes = []
    s = {**PRESETS[preset]}
    if dataset.format == "timit_11" and s["model"] == "birnn":
        s = {**PRESETS["strong"]}
        notes.append(
            "timit_11 has no utterance boundaries, so 'boss' (a sequence model) falls back to the 'strong' MLP"
        )
    s.update(overrides)
    s["seed"] = seed
    if s["model"] not in MODEL_KEYS:
        raise HwmlError(f"unknown phoneme model {s['model']!r}: use {', '.join(MODEL_KEYS)}")
    n = s["concat_nframes"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n % 2 == 0:
        raise HwmlError(f"concat_nframes must be a positive odd integer, got {n!r}")
    stacked = dataset.train.stacked
    if stacked > 1 and n != stacked:
        notes.append(f"{dataset.format} rows are fixed {stacked}-frame windows: concat_nframes {n} -> {stacked}")
        s["concat_nframes"] = stacked
    if s["model"] == "birnn" and dataset.train.offsets is None:
        raise HwmlError("the birnn model needs utterance boundaries (a libriphone folder)")
    if not isinstance(s["batch_size"], int) or s["batch_size"] < 1:
        raise HwmlError(f"batch_size must be a positive integer, got {s['batch_size']!r}")
    return s, notes


class PhonemeTask:
    """Frame classification (MLP, linear) or per-frame sequence labelling (birnn) on one FrameSet."""

    kind, unit = "phoneme", "frames"

    def __init__(self, dataset: Dataset, preset: str, settings: dict, notes: list[str]):
        self.dataset, self.preset, self.settings, self.notes = dataset, preset, settings, notes
        self.frames = frames = dataset.train
        if frames.labels is None:
            raise HwmlError(f"{dataset.root}: the training split has no labels")
        self.n_classes = len(frames.class_names)
        self.concat = settings["concat_nframes"]
        self.sequence = settings["model"] == "birnn"
        self.split = choose_split(frames, settings["split"], settings["valid_fraction"], settings["seed"])
        self.train_rows, self.valid_rows = split_rows(frames, self.split)
        if len(self.train_rows) == 0:
            raise HwmlError(f"{dataset.root}: no labelled training frames")
        self.bounds = utterance_bounds(frames) if frames.stacked == 1 else None
        if self.sequence:  # utterances, not frames, are sampled
            is_valid = torch.zeros(len(frames), dtype=torch.bool)
            is_valid[self.valid_rows] = True
            first = frames.offsets[:-1]
            lengths = frames.offsets[1:] - first
            keep = ~is_valid[first] & (lengths > 0)
            self.train_utts = torch.nonzero(keep).squeeze(1)
            self.valid_utts = torch.nonzero(is_valid[first] & (lengths > 0)).squeeze(1)
            per_step = settings["batch_size"] * min(settings["chunk_frames"], int(lengths.float().mean()))
        else:
            per_step = settings["batch_size"]
        self.steps_per_epoch = max(1, math.ceil(len(self.train_rows) / per_step))
        if settings.get("valid_every") == "epoch":
            settings["valid_every"] = self.steps_per_epoch

    # -- what the engine asks for
    def model_spec(self) -> dict:
        s = self.settings
        name = "linear" if s["model"] == "gaussian" else s["model"]
        kwargs = {k: s[k] for k in MODEL_KEYS[s["model"]]}
        if s["model"] == "gaussian":
            kwargs["input_norm"] = False
        kwargs["in_dim"] = MFCC_DIM * (1 if self.sequence else self.concat)
        kwargs["n_classes"] = self.n_classes
        return {"name": name, "kwargs": kwargs}

    def train_batch(self, gen: torch.Generator, device, part: tuple[int, int] = (0, 1)):
        """A batch of batch_size; part=(rank, world) under torchrun: every world-th row of it
        from rank on, only those gathered (hwml.train.distributed.draw_global)."""
        rank, world = part
        if self.sequence:
            return self._chunk_batch(
                self.train_utts[torch.randint(len(self.train_utts), (self.settings["batch_size"],), generator=gen)],
                gen,
                device,
                part,
            )
        pos = torch.randint(len(self.train_rows), (self.settings["batch_size"],), generator=gen)
        rows = self.train_rows[pos].sort().values[rank::world]
        x = stacked_inputs(self.frames, rows, self.concat, self.bounds)
        return (x.to(device),), self.frames.labels[rows].to(device)

    def valid_batches(self, device, part: tuple[int, int] = (0, 1)):
        """Validation batches; part=(rank, world): this rank's share under torchrun."""
        rank, world = part
        if self.sequence:
            for batch in utterance_batches(self.frames, self.valid_utts[rank::world], self.settings["eval_frames"]):
                (x, lengths), rows = batch
                y = torch.full(x.shape[:2], -1, dtype=torch.long)
                mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
                y[mask] = self.frames.labels[rows]
                yield (x.to(device), lengths), y.to(device)
            return
        step = self.settings["eval_batch"]
        for i in range(rank * step, len(self.valid_rows), step * world):
            rows = self.valid_rows[i : i + step]
            yield (
                (stacked_inputs(self.frames, rows, self.concat, self.bounds).to(device),),
                self.frames.labels[rows].to(device),
            )

    def loss(self, model, batch):
        inputs, targets = batch
        logits = model(*inputs)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            targets.reshape(-1),
            ignore_index=-1,
            label_smoothing=self.settings["label_smoothing"] if model.training else 0.0,
        )
        return loss, logits

    def run_config(self) -> dict:
        info = self.dataset.info or {}
        features = info.get("features")
        return {
            "preset": self.preset,
            "class_names": list(self.frames.class_names),
            "course_labels": [str(i) for i in range(self.n_classes)],
            "concat_nframes": self.concat,
            "frame_dim": MFCC_DIM,
            "features": features or MFCC39.to_dict(),
            "features_source": "dataset"
            if features
            else "assumed: hwml's mfcc39 defaults (the data folder does not record its feature parameters)",
            "data": {
                "root": str(self.dataset.root),
                "format": self.dataset.format,
                "n_train_frames": len(self.train_rows),
                "n_valid_frames": len(self.valid_rows),
                "source": info.get("source"),
            },
            "split": self.split,
            "notes": self.notes,
        }

    # -- the sequence model's batches
    def _chunk_batch(self, utts: torch.Tensor, gen: torch.Generator, device, part: tuple[int, int] = (0, 1)):
        """Random chunks of chunk_frames from each utterance; shorter ones whole, padded by
        repeating their last frame (targets -1 there, and the model packs by length).
        part: only every world-th chunk from rank on is gathered (the draws are the same)."""
        offsets = self.frames.offsets
        start, length = offsets[utts], offsets[utts + 1] - offsets[utts]
        chunk = self.settings["chunk_frames"]
        room = (length - chunk).clamp(min=0) + 1
        start = start + (torch.rand(len(utts), generator=gen) * room).long()
        rank, world = part
        utts, start, length = utts[rank::world], start[rank::world], length[rank::world]
        lengths = length.clamp(max=chunk)
        T = int(lengths.max())
        idx = start[:, None] + torch.arange(T)[None, :]
        idx = torch.minimum(idx, (start + lengths - 1)[:, None])
        x = gather_rows(self.frames.feats, idx.reshape(-1)).reshape(len(utts), T, -1)
        y = self.frames.labels[idx]
        y[torch.arange(T)[None, :] >= lengths[:, None]] = -1
        return (x.to(device), lengths), y.to(device)


class GaussianTask(PhonemeTask):
    """The Gaussian generative classifier: fitted in closed form in one pass, not trained."""

    def fit(self, model, device) -> None:
        D, C = MFCC_DIM * self.concat, self.n_classes
        sums, counts = torch.zeros(C, D, dtype=torch.float64), torch.zeros(C, dtype=torch.float64)
        scatter = torch.zeros(D, D, dtype=torch.float64)
        step = self.settings["batch_size"]
        for i in range(0, len(self.train_rows), step):
            rows = self.train_rows[i : i + step]
            x = stacked_inputs(self.frames, rows, self.concat, self.bounds)
            y = self.frames.labels[rows]
            sums.index_add_(0, y, x.double())
            counts += torch.bincount(y, minlength=C).double()
            scatter += (x.T @ x).double()
        model.fit_gaussian(sums, counts, scatter, self.settings["shrinkage"])
        model.to(device)


def make_task(dataset: Dataset, preset: str = "medium", overrides: dict | None = None, seed: int = 0) -> PhonemeTask:
    if dataset.kind != "phoneme":
        raise HwmlError(f"{dataset.root}: holds {dataset.format} (speaker) data, not phoneme data")
    settings, notes = resolve_settings(dataset, preset, dict(overrides or {}), seed)
    cls = GaussianTask if settings["model"] == "gaussian" else PhonemeTask
    return cls(dataset, preset, settings, notes)


# ---------------------------------------------------------------------------------- inference


def utterance_batches(frames: FrameSet, utts: torch.Tensor, max_frames: int):
    """Whole utterances grouped by similar length (padded size <= max_frames), each padded by
    repeating its last frame. Yields ((x (B, T, D), lengths), rows of the real frames)."""
    offsets = frames.offsets
    lengths = offsets[utts + 1] - offsets[utts]
    order = utts[torch.argsort(lengths, descending=True)]
    i = 0
    while i < len(order):
        T = int(offsets[order[i] + 1] - offsets[order[i]])
        group = order[i : i + max(1, max_frames // max(T, 1))]
        i += len(group)
        start, length = offsets[group], offsets[group + 1] - offsets[group]
        idx = torch.minimum(start[:, None] + torch.arange(T)[None, :], (start + length - 1)[:, None])
        mask = torch.arange(T)[None, :] < length[:, None]
        x = gather_rows(frames.feats, idx.reshape(-1)).reshape(len(group), T, -1)
        yield (x, length), idx[mask]


@torch.no_grad()
def predict_logits(model, config: dict, split: FrameSet, batch_frames: int = 8192) -> torch.Tensor:
    """(N, C) float32 logits for every row of split, in row order; eval mode, no grad."""
    model.eval()
    device = next(model.parameters()).device
    n, D = config["concat_nframes"], config.get("frame_dim", MFCC_DIM)
    if split.dim != D * split.stacked:
        raise HwmlError(
            f"features have {split.dim} columns; this run expects {D}-dim frames ({D * n} columns when stacked)"
        )
    out = torch.empty(len(split), len(config["class_names"]), dtype=torch.float32)
    if config["model"]["name"] == "birnn":
        if split.stacked != 1:
            raise HwmlError(
                "this run's sequence model needs single frames with utterance boundaries, "
                f"not {split.stacked}-frame windows"
            )
        frames = (
            split
            if split.offsets is not None
            else FrameSet(split.feats, split.labels, torch.tensor([0, len(split)]), ["utt"], split.class_names)
        )
        utts = torch.arange(frames.n_utts)
        for (x, lengths), rows in utterance_batches(frames, utts, config["settings"].get("eval_frames", 40000)):
            logits = model(x.to(device), lengths)
            mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
            out[rows] = logits.float().cpu()[mask]
        return out
    bounds = utterance_bounds(split) if split.stacked == 1 else None
    for i in range(0, len(split), batch_frames):
        rows = torch.arange(i, min(i + batch_frames, len(split)))
        out[rows] = model(stacked_inputs(split, rows, n, bounds).to(device)).float().cpu()
    return out


def _one_utterance(x: torch.Tensor, name: str, class_names: list[str]) -> FrameSet:
    """Unlabelled (T, D) frames as a FrameSet of one utterance."""
    return FrameSet(x, None, torch.tensor([0, len(x)]), [name], class_names, 1)


def _file_frames(path: Path, config: dict, params: FeatureParams) -> FrameSet:
    """One input file as a FrameSet: raw (T, 39) frames (one utterance) or stacked windows."""
    names = config["class_names"]
    if path.suffix.lower() in FEATURE_SUFFIXES:
        x = load_tensor_file(path)
        D, n = config.get("frame_dim", MFCC_DIM), config["concat_nframes"]
        if x.shape[1] == D:
            return _one_utterance(x, path.stem, names)
        if x.shape[1] == D * n and n > 1:
            return FrameSet(x, None, None, None, names, n)
        raise HwmlError(
            f"{path}: has {x.shape[1]} columns; this run takes {D} (single frames)"
            + (f" or {D * n} ({n}-frame windows)" if n > 1 else "")
        )
    if path.suffix.lower() in AUDIO_SUFFIXES:
        from hwml.audio.decode import load_audio

        with timing.stage("decode"):
            wave = load_audio(path)
        with timing.stage("features"):
            x = featurize(wave, params)
        return _one_utterance(x, path.stem, names)
    raise HwmlError(f"{path}: not a data folder, feature file (.npy/.pt) or audio file")


def warm_up(model, config: dict, feats: torch.Tensor) -> None:
    """One forward pass over (T, 39) frames (hwml.workflow.warm_run: the first request meets warm code)."""
    predict_logits(model, config, _one_utterance(feats, "warm", config["class_names"]))


def predict_files(run_dir, inputs: list[Path], out_csv: Path, *, fsync: bool = True) -> dict:
    """Predict for the CLI's `predict` and the app; writes CSV atomically, returns a summary.
    fsync=False: atomic but not flushed to disk (the app's throwaway per-request CSVs).

    - A HW2 data folder (or zip): its course test split -> the submission `Id,Class` (one row per
      test frame, course order: timit_11 rows, libriphone utterances in test_split.txt order;
      Class is the course's label string of the predicted class).
    - Feature files (.npy/.pt: (T, 39) frames or (T, 39*concat) windows) and audio files: out_csv
      gets one row per frame, `file,frame,time,phone,prob` (time = frame centre in seconds,
      prob = softmax probability of the phone), and `<out_csv stem>.segments.csv` the merged runs,
      `file,start,end,phone` (seconds). The summary carries the segments per file too.
    """
    from hwml.data import load_dataset
    from hwml.runs.cache import loaded_run

    model, config = loaded_run(run_dir)
    inputs = [Path(p) for p in inputs]
    out_csv = Path(out_csv)
    if not inputs:
        raise HwmlError("predict: no inputs given")
    folders = [p for p in inputs if p.is_dir() or p.suffix.lower() == ".zip"]
    if folders:
        if len(inputs) != 1:
            raise HwmlError("predict: give one data folder, or any number of feature/audio files, not both")
        dataset = load_dataset(folders[0])
        if dataset.kind != "phoneme" or dataset.test is None:
            raise HwmlError(f"{folders[0]}: no phoneme test split to predict")
        test = dataset.test
        pred = predict_logits(model, config, test).argmax(1).tolist()
        labels = config["course_labels"]
        write_csv_atomic(out_csv, ["Id", "Class"], ((i, labels[p]) for i, p in enumerate(pred)), fsync=fsync)
        return {"kind": "submission", "out": str(out_csv), "rows": len(pred), "format": dataset.format}

    params = FeatureParams.from_dict(config["features"])
    names = config["class_names"]
    frame_rows, seg_rows, files = [], [], []
    for path in inputs:
        if not path.is_file():
            raise HwmlError(f"{path}: no such file")
        frames = _file_frames(path, config, params)
        with timing.stage("model"), single_thread():
            probs = torch.softmax(predict_logits(model, config, frames), dim=1)
        p, idx = probs.max(1)
        phones = [names[i] for i in idx.tolist()]
        times = frame_times(len(phones), params).tolist()
        probs_of = p.tolist()  # Python floats: formatting a tensor element costs ~20x more
        frame_rows += [(path.name, t, f"{times[t]:.3f}", ph, f"{probs_of[t]:.4f}") for t, ph in enumerate(phones)]
        segs = label_segments(phones, params)
        seg_rows += [(path.name, f"{a:.3f}", f"{b:.3f}", ph) for a, b, ph in segs]
        files.append({"file": str(path), "frames": len(phones), "segments": segs})
    seg_csv = out_csv.with_name(out_csv.stem + ".segments.csv")
    with timing.stage("csv"):
        write_csv_atomic(out_csv, ["file", "frame", "time", "phone", "prob"], frame_rows, fsync=fsync)
        write_csv_atomic(seg_csv, ["file", "start", "end", "phone"], seg_rows, fsync=fsync)
    return {
        "kind": "frames",
        "out": str(out_csv),
        "segments_csv": str(seg_csv),
        "rows": len(frame_rows),
        "files": files,
    }
