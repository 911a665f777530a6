"""The phoneme task for the training engine: frame classification (MLP, linear), per-frame
sequence labelling (birnn), or the Gaussian classifier fitted in closed form."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hwml.audio.params import MFCC39, MFCC_DIM
from hwml.data.types import Dataset
from hwml.errors import HwmlError
from hwml.phoneme.batches import gather_rows, stacked_inputs, utterance_batches, utterance_bounds
from hwml.phoneme.presets import MODEL_KEYS, PRESETS, TASK_KEYS
from hwml.phoneme.split import choose_split, split_rows
from hwml.train.engine import DEFAULTS as ENGINE_DEFAULTS


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
