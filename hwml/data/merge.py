"""Several course folders of one format -> one folder, so a model can learn from all of them.

Why: the shipped models learn from the built-in corpus and from real speech together, and a
student may want to add their own recordings to a course set. Classes are matched by **name**
(the union, in first-seen order); utterance ids get a per-source prefix so they cannot clash and
so the phoneme task's speaker-disjoint validation still sees each source's speakers
(`hwml.phoneme.split.speaker_of` drops only the last id field). Test parts are merged the same way;
an unlabelled test part cannot be merged with labelled ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from hwml.data.hw4 import write_hw4
from hwml.data.libriphone import write_libriphone
from hwml.data.types import Dataset, FrameSet, UtteranceSet
from hwml.errors import HwmlError
from hwml.safeio import write_folder_atomic

WRITERS = {"libriphone": write_libriphone, "hw4": write_hw4}


def _prefix(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+]*", name):
        raise HwmlError(f"merge: source name {name!r} must be letters, digits, '.' or '+'")
    return name + "_"


def _class_union(datasets: list[Dataset]) -> list[str]:
    names: list[str] = []
    for ds in datasets:
        names += [c for c in ds.train.class_names if c not in names]
    return names


def _relabel(labels: torch.Tensor | None, own: list[str], union: list[str]) -> torch.Tensor | None:
    if labels is None:
        return None
    index = torch.tensor([union.index(c) for c in own] or [0], dtype=torch.long)
    out = labels.clone()
    known = labels >= 0
    out[known] = index[labels[known]]
    return out


def _cat_offsets(parts) -> torch.Tensor:
    lengths = torch.cat([p.offsets[1:] - p.offsets[:-1] for p in parts])
    return torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)])


def _merge_part(parts: list[tuple[str, object]], union: list[str], fmt: str):
    parts = [(prefix, part) for prefix, part in parts if part is not None]
    if not parts:
        return None
    labelled = {part.labels is not None for _, part in parts}
    if len(labelled) > 1:
        raise HwmlError("merge: some test parts are labelled and some are not; merge labelled sets only")
    labels = None if labelled == {False} else torch.cat([_relabel(p.labels, p.class_names, union) for _, p in parts])
    ids = [prefix + u for prefix, p in parts for u in p.utt_ids]
    feats = torch.cat([torch.as_tensor(p.feats) for _, p in parts])
    offsets = _cat_offsets([p for _, p in parts])
    if fmt == "hw4":
        return UtteranceSet(feats, offsets, ids, labels, union)
    return FrameSet(feats, labels, offsets, ids, union, stacked=1)


def merge_datasets(sources: list[tuple[str, Dataset]], out) -> dict:
    """Write the merge of `sources` ([(name, Dataset)], one format: libriphone or hw4) to `out`."""
    if len(sources) < 2:
        raise HwmlError("merge: give at least two data folders")
    formats = {ds.format for _, ds in sources}
    if len(formats) != 1 or (fmt := formats.pop()) not in WRITERS:
        raise HwmlError(
            f"merge: all folders must be libriphone (HW2) or all HW4; got "
            f"{', '.join(sorted({ds.format for _, ds in sources}))}"
        )
    names = [name for name, _ in sources]
    if len(set(names)) != len(names):
        raise HwmlError(f"merge: source names must differ, got {', '.join(names)}")
    datasets = [ds for _, ds in sources]
    union = _class_union(datasets)
    train = _merge_part([(_prefix(n), ds.train) for n, ds in sources], union, fmt)
    test = _merge_part([(_prefix(n), ds.test) for n, ds in sources], union, fmt)
    write_folder_atomic(out, lambda root: WRITERS[fmt](root, train, test))
    return {
        "format": fmt,
        "out": str(out),
        "sources": {n: ds.root for n, ds in sources},
        "classes": len(union),
        "train_utterances": len(train.utt_ids),
        "test_utterances": len(test.utt_ids) if test is not None else 0,
    }


def merge_folders(specs: list[str], out) -> dict:
    """CLI `merge`: specs are `NAME=FOLDER` (or a bare FOLDER, named by its position: d1, d2, ...)."""
    from hwml.data import load_dataset

    out = Path(out)
    sources = []
    for i, spec in enumerate(specs, 1):
        name, sep, folder = spec.partition("=")
        name, folder = (name, folder) if sep else (f"d{i}", spec)
        _prefix(name)
        if Path(folder).resolve() == out.resolve():
            raise HwmlError(f"{out}: the output folder cannot also be a source")
        sources.append((name, load_dataset(folder, mmap=False)))
    return merge_datasets(sources, out)
