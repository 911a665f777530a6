"""The aligners `hwml import phoneme --aligner` offers, and one utterance aligned by any of them.

- `hwml`: Viterbi through the transcript's graph over hwml's phoneme model's log-posteriors
  (`hwml.align.viterbi`), at least `viterbi.MIN_FRAMES` frames a phone;
- `pocketsphinx`: PocketSphinx's own alignment with its en-us model (`hwml.align.pocketsphinx`);
- `joint`: hwml's Viterbi scored by its model plus agreement with PocketSphinx
  (`hwml.align.joint`), at least `joint.JOINT_MIN_FRAMES` frames a phone.

`joint` is the default: it agrees best with hand labels where that was measured (README,
"Forced alignment against hand labels").
"""

from __future__ import annotations

import numpy as np

from hwml.align import joint, viterbi
from hwml.data.phones import PHONES_39
from hwml.errors import HwmlError

ALIGNERS = ("joint", "pocketsphinx", "hwml")
DEFAULT_ALIGNER = "joint"


def check_aligner(name) -> str:
    """The aligner's name, or a HwmlError listing the choices."""
    name = DEFAULT_ALIGNER if name is None else name
    if name not in ALIGNERS:
        raise HwmlError(f"--aligner must be one of {', '.join(ALIGNERS)}, got {name!r}")
    return name


def uses_pocketsphinx(name: str) -> bool:
    return name in ("joint", "pocketsphinx")


def uses_model(name: str) -> bool:
    """Whether the aligner follows hwml's phoneme model (and so `--align-model`, `--rounds`)."""
    return name in ("joint", "hwml")


def min_frames_of(name: str, min_frames: int | None) -> int:
    if min_frames is not None:
        return min_frames
    return joint.JOINT_MIN_FRAMES if name == "joint" else viterbi.MIN_FRAMES


def pocketsphinx_alignment(phones: list, words: list, n_frames: int) -> viterbi.Alignment:
    """PocketSphinx's segments (`hwml.align.pocketsphinx.segments`) as an Alignment of n_frames
    frames, labels in PHONES_39 indices, neighbouring silences merged."""
    from hwml.align.pocketsphinx import frame_labels

    labels = frame_labels(phones, n_frames)
    runs = []
    for a, b, p in phones:
        a, b = max(0, a), min(b, n_frames)
        if b <= a:
            continue
        if runs and runs[-1][2] == PHONES_39[p] == "sil":
            runs[-1] = (runs[-1][0], b, "sil")
        else:
            runs.append((a, b, PHONES_39[p]))
    spans = [(max(0, a), min(b, n_frames), w) for a, b, w in words if min(b, n_frames) > max(0, a)]
    return viterbi.Alignment(labels, runs, spans)


def align_utterance(
    name: str,
    logp: np.ndarray | None,
    prons: list,
    class_names,
    ps: tuple | None,
    n_frames: int,
    min_frames: int,
    source="utterance",
) -> viterbi.Alignment:
    """One utterance aligned by aligner `name`; labels in PHONES_39 indices. `logp`: hwml's
    (T, C) log-posteriors over `class_names` (unused by pocketsphinx); `ps`: PocketSphinx's
    (phone segments, word segments) (unused by hwml; None where PocketSphinx found no
    alignment: joint then follows hwml's model alone)."""
    if name == "pocketsphinx":
        return pocketsphinx_alignment(*ps, n_frames)
    graph = viterbi.build_graph(prons, class_names, min_frames=min_frames)
    if name == "joint" and ps is not None:
        from hwml.align.pocketsphinx import frame_labels

        result = joint.align(logp, graph, frame_labels(ps[0], len(logp)), source)
    else:
        result = viterbi.align(logp, graph, source)
    to_39 = np.array([PHONES_39.index(n) if n in PHONES_39 else -1 for n in class_names])
    result.labels = to_39[result.labels]
    return result
