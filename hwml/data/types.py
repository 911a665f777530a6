"""In-memory forms of the course datasets, shared by every reader, the trainer and the app.

Everything downstream of a reader sees only these types, whatever folder format the data came
from. Features are kept as one contiguous array per split (memory-mapped for timit_11) and
utterances as offsets into it, so batches are taken by index tensors, never per item in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class FrameSet:
    """HW2 frames: one row per 10 ms frame.

    feats: (N, D) float32. D = 39 * stacked. timit_11 rows are already 11-frame windows
        (stacked=11, D=429, usually a read-only np.memmap); libriphone rows are single frames
        (stacked=1, D=39) and context is stacked per batch within utterance bounds.
    labels: (N,) int64 indices into class_names, or None for an unlabelled test split.
    offsets: (U+1,) int64 utterance boundaries into feats, or None where the format has none
        (timit_11).
    utt_ids: one id per utterance (len U), or None with offsets None.
    """

    feats: np.ndarray | torch.Tensor
    labels: torch.Tensor | None
    offsets: torch.Tensor | None
    utt_ids: list[str] | None
    class_names: list[str]
    stacked: int = 1

    def __len__(self) -> int:
        return int(self.feats.shape[0])

    @property
    def dim(self) -> int:
        return int(self.feats.shape[1])

    @property
    def n_utts(self) -> int | None:
        return None if self.offsets is None else len(self.offsets) - 1


@dataclass
class UtteranceSet:
    """HW4 utterances: all frames of all utterances in one (total_T, n_mels) float32 tensor.

    offsets: (U+1,) int64; utterance i is feats[offsets[i]:offsets[i+1]].
    utt_ids: the course's feature_path of each utterance (the submission's Id).
    labels: (U,) int64 indices into class_names (speaker names), -1 where unknown; None when
        the whole split is unlabelled.
    """

    feats: torch.Tensor
    offsets: torch.Tensor
    utt_ids: list[str]
    labels: torch.Tensor | None
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def utterance(self, i: int) -> torch.Tensor:
        return self.feats[self.offsets[i] : self.offsets[i + 1]]


@dataclass
class Dataset:
    """A whole data folder: its format, the training split and the optional test split.

    kind: "phoneme" or "speaker". format: "timit_11", "libriphone" or "hw4".
    test may carry labels when the folder has an answer key (hwml's built-in corpus and
    imports write one; course downloads do not).
    """

    kind: str
    format: str
    root: str
    train: FrameSet | UtteranceSet
    test: FrameSet | UtteranceSet | None = None
    info: dict = field(default_factory=dict)


def label_map(data_names: list[str], run_names: list[str]) -> torch.Tensor:
    """Index into run_names for each data class, matched by NAME (a folder imported separately
    may order its classes differently); -1 for names the run does not know."""
    index = {name: i for i, name in enumerate(run_names)}
    return torch.tensor([index.get(name, -1) for name in data_names], dtype=torch.long)
