"""Which frames validate: the validation split never shares an utterance with training (pitfall 5
of the Learn tab). libriphone holds out whole speakers (see `speaker_of`) or whole utterances;
timit_11 has no boundaries, so ten contiguous blocks are held out and config.json says so.
"""

from __future__ import annotations

import re

import torch

from hwml.data.types import FrameSet
from hwml.errors import HwmlError
from hwml.phoneme.batches import subset


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
    """The run's validation frames, rebuilt from config.json (hwml.api.evaluate_run's split="valid")."""
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
