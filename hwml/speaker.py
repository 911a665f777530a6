"""HW4 speaker classification: presets, masked crops, whole-utterance inference, embeddings.

Data stay in one (total_T, 40) tensor with offsets (`UtteranceSet`). A training batch is one
gather: offsets + random starts (one seeded generator) -> an index tensor -> feats[index], with
a length mask instead of -20 padding (PITFALLS 4, 7, 10). Validation, evaluation, prediction
and embeddings all run on whole utterances: sorted by length, batched to a frame budget, long
ones cut into half-overlapping windows whose scores (or embeddings) are averaged.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hwml.audio.decode import AUDIO_SUFFIXES
from hwml.audio.params import N_MELS
from hwml.augment import random_level, random_noise, spec_augment
from hwml.data.types import Dataset, UtteranceSet
from hwml.errors import HwmlError
from hwml.models.speaker import ENCODERS, HEADS, INPUT_NORMS, POOLINGS
from hwml.safeio import FEATURE_SUFFIXES, write_csv_atomic

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
CHOICES = {
    "encoder": ENCODERS,
    "pooling": POOLINGS,
    "head": HEADS,
    "input_norm": INPUT_NORMS,
    "optimizer": ("adamw", "adam"),
    "schedule": ("cosine", "constant"),
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
# Fine-tuning (`train --init RUN`) keeps RUN's architecture and runs a preset at 0.3x its lr with at
# most 20 warm-up steps unless set (hwml/finetune.py says why).
PRESETS: dict[str, dict] = {
    # The course's sample code, batch-first: 40->80 prenet, one TransformerEncoderLayer (2 heads,
    # ff 256), mean pooling, Linear-ReLU-Linear head, AdamW 1e-3, 1000 warmup steps, cosine to 0,
    # 128-frame crops, batch 16, validation every 2000 steps, no early stopping; 22 epochs are
    # the course's 70,000 steps on its 56,666 utterances.
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
    # enrolment and verification). Tuned on real speech (speechocean762, 250 speakers): the
    # margin of speaker-recognition recipes (s 30, m 0.2) named 50 unseen speakers best (top-1
    # 0.980 vs 0.950-0.956 at s 20, m 0.1); SAP beat ASP on FSDD and the built-in corpus; longer
    # crops, a wider model and log-mel noise/level augmentation did not pay at 240 CPU-seconds
    # (README: the HW4 quality rows).
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


# ------------------------------------------------------------------------------------ settings


def resolve_settings(preset: str, overrides: dict) -> dict:
    """Defaults <- preset <- overrides, with types and choices checked (HwmlError on a mistake)."""
    from hwml.train.engine import DEFAULTS as ENGINE

    if preset not in PRESETS:
        raise HwmlError(f"unknown speaker preset {preset!r}: use one of {', '.join(PRESETS)}")
    s = {**SETTINGS, **PRESETS[preset]}
    for key, value in (overrides or {}).items():
        if key in s:
            s[key] = _coerce(key, value, SETTINGS[key])
        elif key in ENGINE:
            s[key] = value
        else:
            raise HwmlError(f"unknown speaker setting {key!r}: known are {', '.join(sorted(s))}")
    for key, options in CHOICES.items():
        if s[key] not in options:
            raise HwmlError(f"setting {key}={s[key]!r}: use one of {', '.join(options)}")
    for key in ("d_model", "depth", "heads", "segment_len", "batch_size", "infer_window", "infer_frames", "subsample"):
        if s[key] < 1:
            raise HwmlError(f"setting {key}={s[key]!r}: must be at least 1")
    if s["d_model"] % s["heads"]:
        raise HwmlError(f"d_model={s['d_model']} must be a multiple of heads={s['heads']}")
    if not all(0.0 <= s[key] < 1.0 for key in ("valid_fraction", "dropout", "valid_share")):
        raise HwmlError("valid_fraction, valid_share and dropout must lie in [0, 1)")
    if not (0.0 <= s["noise_prob"] <= 1.0 and s["noise_snr_min"] <= s["noise_snr_max"] and s["level_db"] >= 0):
        raise HwmlError("noise_prob must lie in [0, 1], noise_snr_min <= noise_snr_max, level_db >= 0")
    if s["s"] <= 0 or s["m"] < 0:
        raise HwmlError("AM-softmax needs a scale s > 0 and a margin m >= 0")
    return s


def _coerce(key: str, value, default):
    """A --set value to the type of its default (JSON gives ints for floats, strings for names)."""
    kind = type(default)
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if isinstance(value, (bool, int)) and value in (0, 1):
            return bool(value)
    elif kind is int and isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif kind is str and isinstance(value, str):
        return value
    raise HwmlError(f"setting {key}={value!r}: expected a {kind.__name__}")


# ---------------------------------------------------------------------------------- the split


def split_by_utterance(labels: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """(train, valid) utterance indices: round(fraction * N) validation utterances, seeded.

    Stratified round-robin: one utterance from each speaker (in a random speaker order) before
    any speaker gives a second, so small sets still validate on many speakers; every speaker
    keeps at least one training utterance. Unlabelled utterances (-1) go to neither side.
    """
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(labels), generator=gen)
    perm = perm[labels[perm] >= 0]
    if len(perm) == 0:
        return perm, perm
    lab = labels[perm]
    order = torch.argsort(lab, stable=True)
    perm, lab = perm[order], lab[order]
    counts = torch.bincount(lab)
    rank = torch.arange(len(lab)) - (torch.cumsum(counts, 0) - counts)[lab]
    priority = torch.randperm(len(counts), generator=gen)
    key = rank * len(counts) + priority[lab]
    key[rank >= counts[lab] - 1] = torch.iinfo(torch.long).max  # a speaker's last utterance trains
    n_valid = min(round(fraction * len(lab)), int((key < torch.iinfo(torch.long).max).sum()))
    is_valid = torch.zeros(len(lab), dtype=torch.bool)
    is_valid[torch.argsort(key, stable=True)[:n_valid]] = True
    return perm[~is_valid].sort().values, perm[is_valid].sort().values


def subset(utts: UtteranceSet, indices) -> UtteranceSet:
    """A compact copy of some utterances (labels and class names kept)."""
    idx = torch.as_tensor(indices, dtype=torch.long)
    lengths = utts.lengths[idx]
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)])
    rows = torch.repeat_interleave(utts.offsets[idx] - offsets[:-1], lengths) + torch.arange(int(offsets[-1]))
    labels = None if utts.labels is None else utts.labels[idx]
    return UtteranceSet(
        utts.feats[rows], offsets, [utts.utt_ids[i] for i in idx.tolist()], labels, list(utts.class_names)
    )


def valid_split(config: dict, utts: UtteranceSet) -> UtteranceSet:
    """The run's validation utterances, rebuilt from config.json (hwml.evaluate split="valid").

    The split is recomputed from the run's seed and valid_fraction over the labels in the run's
    class order (matched by speaker name), exactly as training drew it; the utterance ids that
    training recorded then confirm that this is the data the run was trained on.
    """
    from hwml.data.types import label_map

    split = config.get("split") or {}
    if not split.get("valid_fraction") or not split.get("n_valid"):
        raise HwmlError("this run trained without a validation split")
    if utts.labels is None:
        raise HwmlError("this data has no speaker labels to rebuild the validation split from")
    labels = utts.labels.clone()
    known = labels >= 0
    labels[known] = label_map(list(utts.class_names), list(config["class_names"]))[labels[known]]
    valid = split_by_utterance(labels, float(split["valid_fraction"]), int(split["seed"]))[1]
    ids = [utts.utt_ids[i] for i in valid.tolist()]
    if len(ids) != split["n_valid"] or ids != split.get("valid_ids", ids):
        raise HwmlError("this data is not the training set the run was trained on: its validation utterances differ")
    return subset(utts, valid)


# ----------------------------------------------------------------------------- batches and masks


def random_crops(
    utts: UtteranceSet, idx: Tensor, segment_len: int, gen: torch.Generator, keep: slice = slice(None)
) -> tuple[Tensor, Tensor]:
    """(B, W, n_mels) crops of utterances idx and their (B, W) mask, W = min(segment_len, longest).

    One uniform start per utterance from `gen`; utterances shorter than W are zero-padded and
    masked. One gather for the whole batch, or for its rows `keep` only (the draws are the same).
    """
    lengths = utts.lengths[idx]
    width = int(min(segment_len, int(lengths.max())))
    room = (lengths - width).clamp(min=0)
    start = (torch.rand(len(idx), generator=gen) * (room + 1)).long().clamp(max=room)
    return gather_windows(utts, idx[keep], start[keep], lengths.clamp(max=width)[keep], width)


def gather_windows(utts: UtteranceSet, utt: Tensor, start: Tensor, length: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """Frames [start, start+length) of each utterance, zero-padded to width, with their mask."""
    t = torch.arange(width)
    mask = t[None, :] < length[:, None]
    base = utts.offsets[utt] + start
    index = torch.where(mask, base[:, None] + t[None, :], base[:, None])
    x = utts.feats[index]
    if length.min() < width:
        x.masked_fill_(~mask[..., None], 0.0)
    return x, mask


@dataclass
class WindowBatch:
    """Whole utterances `utts` (sorted batch of indices), as window rows owned by them."""

    utts: Tensor  # (U,) utterance indices into the set
    owner: Tensor  # (R,) row -> position in utts
    x: Tensor  # (R, W, n_mels)
    mask: Tensor  # (R, W)


def window_batches(
    utts: UtteranceSet, indices: Tensor | None = None, window: int = 512, max_frames: int = 16384
) -> Iterator[WindowBatch]:
    """Whole-utterance batches for inference: by similar length, at most ~max_frames padded frames.

    An utterance longer than `window` becomes windows of `window` frames every window/2 frames
    (the last one flush with the end); all windows of an utterance share one batch.
    """
    indices = torch.arange(len(utts)) if indices is None else indices
    lengths = utts.lengths[indices]
    hop = max(1, window // 2)
    n_win = torch.where(lengths <= window, 1, (lengths - window + hop - 1) // hop + 1)
    width = lengths.clamp(max=window)
    order = torch.argsort(lengths, stable=True).tolist()
    n_win_l, width_l = n_win.tolist(), width.tolist()
    batch: list[int] = []
    rows = 0
    for i in order:
        if batch and (rows + n_win_l[i]) * width_l[i] > max_frames:
            yield _window_batch(utts, indices, torch.tensor(batch), lengths, window, hop)
            batch, rows = [], 0
        batch.append(i)
        rows += n_win_l[i]
    if batch:
        yield _window_batch(utts, indices, torch.tensor(batch), lengths, window, hop)


def _window_batch(utts, indices, pos, lengths, window, hop) -> WindowBatch:
    L = lengths[pos]
    n_win = torch.where(L <= window, 1, (L - window + hop - 1) // hop + 1)
    owner = torch.repeat_interleave(torch.arange(len(pos)), n_win)
    k = torch.arange(len(owner)) - torch.repeat_interleave(torch.cumsum(n_win, 0) - n_win, n_win)
    start = torch.minimum(k * hop, (L[owner] - window).clamp(min=0))
    length = L[owner].clamp(max=window)
    x, mask = gather_windows(utts, indices[pos][owner], start, length, int(length.max()))
    return WindowBatch(pos, owner, x, mask)


def average_rows(rows: Tensor, owner: Tensor, n: int) -> Tensor:
    """Mean of the rows that belong to each of n owners."""
    total = rows.new_zeros((n, rows.shape[-1])).index_add_(0, owner, rows)
    count = torch.bincount(owner, minlength=n).to(rows.dtype).clamp(min=1)
    return total / count[:, None]


def as_utterances(feats: UtteranceSet | list | tuple | Tensor) -> UtteranceSet:
    """An UtteranceSet from a list of (T, n_mels) tensors (or a single one)."""
    if isinstance(feats, UtteranceSet):
        return feats
    if getattr(feats, "ndim", None) == 2:  # one (T, n_mels) tensor or array
        feats = [feats]
    items = [torch.as_tensor(f, dtype=torch.float32) for f in feats]
    if not items or any(f.ndim != 2 or f.shape[0] == 0 or f.shape[1] != items[0].shape[1] for f in items):
        raise HwmlError("expected one or more non-empty (frames, n_mels) feature matrices of equal width")
    lengths = torch.tensor([len(f) for f in items])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)])
    return UtteranceSet(torch.cat(items), offsets, [str(i) for i in range(len(items))], None, [])


# ------------------------------------------------------------------------------------- the task


def feature_stats(utts: UtteranceSet, idx: Tensor, max_frames: int = 2_000_000) -> tuple[list, list]:
    """Per-mel-bin mean and std over the training utterances (a strided subsample when huge)."""
    parts = [utts.utterance(i) for i in idx.tolist()]
    total = sum(len(p) for p in parts)
    step = max(1, math.ceil(total / max_frames))
    x = torch.cat([p[::step] for p in parts]).double()
    return x.mean(0).tolist(), x.std(0).clamp(min=1e-3).tolist()


class SpeakerTask:
    """The HW4 task for hwml.train.engine.train (see DESIGN.md: the Task protocol)."""

    kind = "speaker"
    unit = "utterances"

    def __init__(self, dataset: Dataset, preset: str, settings: dict, seed: int):
        utts = dataset.train
        if not isinstance(utts, UtteranceSet) or utts.labels is None:
            raise HwmlError(f"{dataset.root}: speaker training needs labelled HW4 utterances")
        if utts.feats.shape[1] != N_MELS:
            raise HwmlError(f"{dataset.root}: features have {utts.feats.shape[1]} mel bins, expected {N_MELS}")
        self.dataset, self.utts, self.preset, self.settings, self.seed = dataset, utts, preset, settings, seed
        self.train_idx, self.valid_idx = split_by_utterance(utts.labels, settings["valid_fraction"], seed)
        if len(self.train_idx) == 0:
            raise HwmlError(f"{dataset.root}: no labelled training utterances")
        self.steps_per_epoch = max(1, len(self.train_idx) // settings["batch_size"])
        settings["valid_every"] = validation_spacing(settings, int(utts.lengths[self.valid_idx].sum()))
        self.input_stats = feature_stats(utts, self.train_idx) if settings["input_norm"] == "global" else None

    def model_spec(self) -> dict:
        kwargs = {k: self.settings[k] for k in MODEL_KEYS}
        kwargs.update(n_classes=len(self.utts.class_names), n_mels=N_MELS)
        if self.input_stats is not None:
            kwargs["input_mean"], kwargs["input_std"] = self.input_stats
        return {"name": MODEL_NAME, "kwargs": kwargs}

    def train_batch(
        self, gen: torch.Generator, device, part: tuple[int, int] = (0, 1)
    ) -> tuple[tuple[Tensor, ...], Tensor]:
        """Crops of batch_size utterances; part=(rank, world) under torchrun: every world-th of
        them from rank on. Only those are gathered, unless an augmentation is on (its draws
        depend on the whole batch: then the whole batch is made and sliced)."""
        pick = torch.randint(len(self.train_idx), (self.settings["batch_size"],), generator=gen)
        idx = self.train_idx[pick]
        s = self.settings
        mine = slice(part[0], None, part[1])
        augmented = bool(s["level_db"] or s["noise_prob"] or s["freq_mask"] or s["time_mask"])
        if not augmented:
            x, mask = random_crops(self.utts, idx, s["segment_len"], gen, keep=mine)
            return (x.to(device), mask.to(device)), self.utts.labels[idx[mine]].to(device)
        x, mask = random_crops(self.utts, idx, s["segment_len"], gen)
        if s["level_db"]:
            x = random_level(x, mask, s["level_db"], gen)
        if s["noise_prob"]:
            x = random_noise(x, mask, (s["noise_snr_min"], s["noise_snr_max"]), s["noise_prob"], gen)
        if s["freq_mask"] or s["time_mask"]:
            x = spec_augment(x, mask, s["freq_mask"], s["time_mask"], gen)
        return (x[mine].to(device), mask[mine].to(device)), self.utts.labels[idx[mine]].to(device)

    def validate(self, model: nn.Module, device, stop, shard=None) -> tuple[float, float, int] | None:
        """(loss, accuracy, n) on the whole validation utterances, on prediction's threaded path:
        the engine's one-batch-after-another loop runs torch's intra-op threads, which stall each
        other when the cores are busy (see _per_utterance). shard (a hwml.train.distributed.Group,
        under torchrun): each rank scores every world-th utterance by length, the rows are summed
        over the ranks, so every rank ends with all of them (best_info needs the embeddings)."""
        if len(self.valid_idx) == 0:
            return None
        fn = lambda x, m: torch.cat([e := model.embed(x, m), model.head(e)], -1)  # noqa: E731
        dim = model.emb_dim + model.n_classes
        if shard is not None and shard.active:
            order = torch.argsort(self.utts.lengths[self.valid_idx], stable=True)
            mine = order[shard.rank :: shard.world]
            both = torch.zeros(len(self.valid_idx), dim)
            rows = _per_utterance(fn, model, self.utts, {"settings": self.settings}, dim, self.valid_idx[mine], stop)
            both[mine] = rows
            both = shard.sum_tensor(both)
        else:
            both = _per_utterance(fn, model, self.utts, {"settings": self.settings}, dim, self.valid_idx, stop)
        if both is None:
            return None
        self.valid_embeddings = F.normalize(both[:, : model.emb_dim], dim=-1)  # for best_info
        logits = both[:, model.emb_dim :]
        targets = self.utts.labels[self.valid_idx]
        loss = F.cross_entropy(logits, targets)
        return float(loss), float((logits.argmax(-1) == targets).float().mean()), len(targets)

    def best_info(self, model: nn.Module) -> dict:
        """{"verification": ...} for the weights the last validation made the best, from the
        embeddings that came with that validation's logits (see calibrate_threshold)."""
        emb = getattr(self, "valid_embeddings", None)
        if emb is None or len(emb) != len(self.valid_idx):
            return {}
        found = calibrate_threshold(model, self.utts, self.valid_idx, {"settings": self.settings}, self.seed, emb)
        return {"verification": found} if found else {}

    def loss(self, model: nn.Module, batch) -> tuple[Tensor, Tensor]:
        """Cross-entropy on training crops, with the AM-softmax margin."""
        (x, mask), targets = batch
        logits = model(x, mask)
        return F.cross_entropy(model.margin(logits, targets), targets), logits

    def run_config(self) -> dict:
        from hwml.audio.params import LOGMEL40

        features = self.dataset.info.get("features") or LOGMEL40.to_dict()
        return {
            "preset": self.preset,
            "class_names": list(self.utts.class_names),
            "features": features,
            "unit": self.unit,
            "data": {"root": str(self.dataset.root), "format": self.dataset.format, "n_utterances": len(self.utts)},
            "split": {
                "method": "by_utterance_per_speaker",
                "seed": self.seed,
                "valid_fraction": self.settings["valid_fraction"],
                "n_train": len(self.train_idx),
                "n_valid": len(self.valid_idx),
                "valid_ids": [self.utts.utt_ids[i] for i in self.valid_idx.tolist()],
            },
        }


def calibrate_threshold(
    model: nn.Module, utts: UtteranceSet, indices: Tensor, config: dict | None, seed: int, emb: Tensor | None = None
) -> dict | None:
    """The verification threshold of a model: the equal-error point of same/different-speaker
    pairs of whole labelled utterances (`indices` of utts: a run's validation split; `emb`:
    their embeddings when already computed). A split with too few speakers seen twice (10
    utterances a speaker at valid_fraction 0.1 give each speaker one) pairs the two halves of up
    to HALVES_MAX of the utterances instead: one more inference pass over at most that many.
    {"threshold", "eer", "n_trials", "n_same", "method": "utterances" | "halves"} or None."""
    from hwml.verification import MIN_SAME, calibrate

    labels = utts.labels[indices]
    if emb is None:
        emb = F.normalize(_per_utterance(model.embed, model, utts, config, model.emb_dim, indices), dim=-1)
    found = calibrate(emb, labels, seed=seed)
    found = found and {**found, "method": "utterances"}
    if found is None or found["n_same"] < MIN_SAME:
        gen = torch.Generator().manual_seed(seed)
        long_enough = (utts.lengths[indices] >= 2 * HALF_MIN_FRAMES).tolist()
        pick = [i for i in torch.randperm(len(indices), generator=gen).tolist() if long_enough[i]][:HALVES_MAX]
        if pick:
            parts = [utts.utterance(int(indices[i])) for i in pick]
            halves = [h for u in parts for h in (u[: len(u) // 2], u[len(u) // 2 :])]
            halved = calibrate(embed(model, halves, config), labels[pick].repeat_interleave(2), seed=seed)
            found = {**halved, "method": "halves"} if halved else found
    return found


HALVES_MAX = 1000  # best_info: validation utterances halved when too few speakers validate twice
HALF_MIN_FRAMES = 50  # ... each half at least 0.5 s

VALID_FRAME_COST = 0.5  # a validation frame (forward only) in training frames (forward + backward),
# measured 0.33 (boss) to 0.68 (medium) on 2 cores


def validation_spacing(s: dict, valid_frames: int) -> int:
    """Steps between validations: valid_every, or more where whole-utterance validation would
    take over `valid_share` of the compute. Validating the course's 5,667 held-out utterances
    every 100 steps took 62% (boss) to 80% (medium) of a run (bench_speaker_validation.py)."""
    share = s["valid_share"]
    if share <= 0:
        return s["valid_every"]
    step_frames = s["batch_size"] * s["segment_len"]
    floor = math.ceil(VALID_FRAME_COST * valid_frames * (1 - share) / (share * step_frames))
    return max(s["valid_every"], floor)


def make_task(dataset: Dataset, preset: str, overrides: dict, seed: int) -> SpeakerTask:
    """The speaker task for the training engine: preset + overrides, split seeded by `seed`."""
    if dataset.kind != "speaker":
        raise HwmlError(f"{dataset.root}: holds {dataset.kind} data, not speaker data")
    return SpeakerTask(dataset, preset, resolve_settings(preset, overrides), seed)


# ------------------------------------------------------------------------- inference on utterances


def _inference_settings(config: dict | None) -> tuple[int, int]:
    s = (config or {}).get("settings", {})
    return int(s.get("infer_window", SETTINGS["infer_window"])), int(s.get("infer_frames", SETTINGS["infer_frames"]))


def _per_utterance(
    fn,
    model: nn.Module,
    utts: UtteranceSet,
    config: dict | None,
    dim: int,
    indices: Tensor | None = None,
    stop=lambda: False,
) -> Tensor | None:
    """fn's rows for every whole utterance (or those at `indices`, in that order), window rows
    averaged; None when `stop()` turned true half-way (checked before every batch).

    On CPU the batches are spread over torch.get_num_threads() Python threads, each running
    torch on one intra-op thread: these small-width models are many short ops, and on a busy
    2-core machine intra-op threads spent most of their time waiting for each other (3-50x
    slower than one thread); a batch per thread needs no per-op synchronisation.
    """
    from concurrent.futures import ThreadPoolExecutor

    from hwml.machine import single_thread

    window, frames = _inference_settings(config)
    device = next(model.parameters()).device
    batches = window_batches(utts, indices, window, frames)
    take = threading.Lock()
    out = torch.zeros(len(utts) if indices is None else len(indices), dim)

    def drain() -> list:
        done = []
        with torch.no_grad():  # grad mode is per thread
            while not stop() and (b := _next_locked(batches, take)) is not None:
                rows = fn(b.x.to(device), b.mask.to(device)).float().cpu()
                done.append((b.utts, average_rows(rows, b.owner, len(b.utts))))
        return done

    was_training = model.training
    model.eval()
    try:
        workers = torch.get_num_threads() if device.type == "cpu" else 1
        with single_thread() if device.type == "cpu" else contextlib.nullcontext(), ThreadPoolExecutor(workers) as pool:
            for job in [pool.submit(drain) for _ in range(workers)]:
                for idx, rows in job.result():
                    out[idx] = rows
    finally:
        model.train(was_training)
    return None if stop() else out


def _next_locked(it, lock: threading.Lock):
    with lock:
        return next(it, None)


def warm_up(model: nn.Module, config: dict, feats: Tensor) -> None:
    """One forward pass over (T, 40) frames (hwml.workflow.warm_run: the first request meets warm code)."""
    predict_logits(model, config, [feats])


def predict_logits(model: nn.Module, config: dict | None, split) -> Tensor:
    """(N, C) utterance scores (logits; averaged over windows of long utterances), no cropping."""
    return _per_utterance(model, model, as_utterances(split), config, model.n_classes)


def embed(model: nn.Module, feats, config: dict | None = None) -> Tensor:
    """(N, D) L2-normalised speaker embeddings (the pooled vector) of whole utterances."""
    utts = as_utterances(feats)
    return F.normalize(_per_utterance(model.embed, model, utts, config, model.emb_dim), dim=-1)


def cosine_similarity(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of embeddings: (D,)x(D,) -> scalar, (N,D)x(M,D) -> (N, M)."""
    a2, b2 = F.normalize(torch.atleast_2d(a), dim=-1), F.normalize(torch.atleast_2d(b), dim=-1)
    sim = a2 @ b2.T
    return sim.reshape(()) if a.ndim == 1 and b.ndim == 1 else sim


# ------------------------------------------------------------------------------------- predict


def load_clip(clip, features: dict | None = None) -> Tensor:
    """(T, 40) features of a clip: a feature tensor/array, a .pt/.npy file, or an audio file."""
    if isinstance(clip, (str, Path)):
        path = Path(clip)
        suffix = path.suffix.lower()
        if suffix in FEATURE_SUFFIXES:
            from hwml.safeio import load_tensor_file

            return load_tensor_file(path, width=N_MELS)
        if suffix in AUDIO_SUFFIXES:
            from hwml import timing
            from hwml.audio.decode import load_audio
            from hwml.audio.features import featurize
            from hwml.audio.params import LOGMEL40, FeatureParams
            from hwml.machine import single_thread

            params = FeatureParams.from_dict(features) if features else LOGMEL40
            with timing.stage("decode"):
                wave = load_audio(path)
            with timing.stage("features"), single_thread():  # small ops: a second intra-op thread only adds waiting
                return featurize(wave, params)
        raise HwmlError(
            f"{path}: not a feature file ({', '.join(FEATURE_SUFFIXES)}) or audio file ({', '.join(AUDIO_SUFFIXES)})"
        )
    x = torch.as_tensor(clip, dtype=torch.float32)
    if x.ndim != 2 or x.shape[1] != N_MELS or x.shape[0] == 0:
        raise HwmlError(f"expected (frames, {N_MELS}) features, got shape {tuple(x.shape)}")
    return x


TOP_K = 5


def predict_files(run_dir, inputs: list[Path], out_csv: Path, *, fsync: bool = True) -> dict:
    """CLI `predict` for a speaker run; writes out_csv atomically (flushed to disk unless
    fsync=False: the app's throwaway per-request CSVs) and returns a summary.

    - one HW4 Dataset folder (or zip) with testdata.json: the course submission, header
      `Id,Category`, Id = feature_path, Category = speaker name, rows in testdata.json order;
    - feature files (.pt/.npy, (T, 40)) or audio files: header
      `Id,Category,top1,p1,...,top5,p5`, Id = the path as given, Category = the best speaker,
      topK/pK = the K-th most likely speaker and its softmax probability (fewer columns when the
      run knows fewer than 5 speakers).
    """
    from hwml import timing
    from hwml.runs.cache import loaded_run

    model, config = loaded_run(run_dir)
    names = config["class_names"]
    inputs = [Path(p) for p in inputs]
    folders = [p for p in inputs if p.is_dir() or p.suffix.lower() == ".zip"]
    if folders:
        if len(inputs) != 1:
            raise HwmlError(f"{folders[0]}: give a data folder alone, not together with other inputs")
        from hwml.data import load_dataset

        dataset = load_dataset(folders[0], need_train=False)
        if dataset.kind != "speaker" or dataset.test is None:
            raise HwmlError(f"{folders[0]}: no HW4 test split (testdata.json) to predict")
        logits = predict_logits(model, config, dataset.test)
        pred = logits.argmax(-1).tolist()
        write_csv_atomic(out_csv, ["Id", "Category"], zip(dataset.test.utt_ids, (names[i] for i in pred)), fsync=fsync)
        return {"out": str(out_csv), "rows": len(pred), "format": "submission", "header": "Id,Category"}
    feats = [load_clip(p, config.get("features")) for p in inputs]
    with timing.stage("model"):
        probs = predict_logits(model, config, feats).softmax(-1)
    k = min(TOP_K, len(names))
    top_p, top_i = probs.topk(k, dim=-1)
    header = ["Id", "Category"] + [c for j in range(1, k + 1) for c in (f"top{j}", f"p{j}")]
    rows = [
        [str(path), names[ti[0]]] + [v for j in range(k) for v in (names[ti[j]], f"{tp[j]:.6f}")]
        for path, ti, tp in zip(inputs, top_i.tolist(), top_p.tolist())
    ]
    with timing.stage("csv"):
        write_csv_atomic(out_csv, header, rows, fsync=fsync)
    return {"out": str(out_csv), "rows": len(rows), "format": "top5", "header": ",".join(header)}
