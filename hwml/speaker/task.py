"""The speaker task for the training engine: masked crops in, AM-softmax (or softmax) logits out;
validation on whole utterances, which also calibrates the verification threshold."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hwml.audio.params import LOGMEL40, N_MELS
from hwml.data.types import Dataset, UtteranceSet
from hwml.errors import HwmlError
from hwml.models.speaker import ENCODERS, HEADS, INPUT_NORMS, POOLINGS
from hwml.speaker.augment import random_level, random_noise, spec_augment
from hwml.speaker.batches import random_crops
from hwml.speaker.inference import per_utterance
from hwml.speaker.presets import MODEL_KEYS, MODEL_NAME, PRESETS, SETTINGS
from hwml.speaker.split import split_by_utterance
from hwml.speaker.verification import calibrate_threshold

CHOICES = {
    "encoder": ENCODERS,
    "pooling": POOLINGS,
    "head": HEADS,
    "input_norm": INPUT_NORMS,
    "optimizer": ("adamw", "adam"),
    "schedule": ("cosine", "constant"),
}


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
            rows = per_utterance(fn, model, self.utts, {"settings": self.settings}, dim, self.valid_idx[mine], stop)
            both[mine] = rows
            both = shard.sum_tensor(both)
        else:
            both = per_utterance(fn, model, self.utts, {"settings": self.settings}, dim, self.valid_idx, stop)
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


VALID_FRAME_COST = 0.5  # a validation frame (forward only) in training frames (forward + backward),
# between what the presets measure (README: Benchmarks, HW4 validation share)


def validation_spacing(s: dict, valid_frames: int) -> int:
    """Steps between validations: valid_every, or more where whole-utterance validation would
    take over `valid_share` of the compute: validating a course-size held-out part every 100
    steps took most of a run (README: Benchmarks, bench_speaker_validation.py)."""
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
