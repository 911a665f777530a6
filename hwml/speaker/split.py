"""Which utterances validate: a stratified, seeded share of each speaker's, rebuilt from
config.json for `evaluate --split valid`."""

from __future__ import annotations

import torch
from torch import Tensor

from hwml.data.types import UtteranceSet
from hwml.errors import HwmlError


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
    """The run's validation utterances, rebuilt from config.json (hwml.api.evaluate_run, split="valid").

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
