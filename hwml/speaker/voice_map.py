"""A 2-D picture of voices: the model's known speakers, enrolled people and clips, by a PCA of
their unit embeddings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from hwml.speaker.identify import Enrollment, check_enrollments, open_model


def embedding_map(
    source, enrollments: Sequence[Enrollment] = (), clips: Mapping[str, object] | None = None, known: bool = True
) -> dict:
    """2-D coordinates (PCA of the unit embeddings) for a scatter plot of voices.

    Points: the model's known speakers ("known": the class weight vectors of an AM-softmax head,
    which live in the embedding space; none for a softmax head), the enrolled people ("enrolled")
    and optional clips ({label: clip}, "clip"). Returns {"points": [{"name", "kind", "x", "y"}],
    "explained": [share of variance on axis 1, axis 2], "known_from": "amsoftmax class weights"|None}.
    """
    sm = open_model(source)
    if enrollments:
        check_enrollments(sm, list(enrollments))
    rows, labels = [], []
    weight = getattr(getattr(sm.model, "head", None), "weight", None)
    has_known = known and (
        sm.config.get("model", {}).get("kwargs", {}).get("head") == "amsoftmax"
        or type(getattr(sm.model, "head", None)).__name__ == "AMSoftmaxHead"
    )
    if has_known and weight is not None:
        names = sm.config.get("class_names") or [f"class {i}" for i in range(len(weight))]
        rows.append(F.normalize(weight.detach().float(), dim=-1))
        labels += [(n, "known") for n in names]
    if enrollments:
        rows.append(torch.stack([e.embedding for e in enrollments]))
        labels += [(e.name, "enrolled") for e in enrollments]
    if clips:
        rows.append(sm.embed(list(clips.values())))
        labels += [(str(n), "clip") for n in clips]
    if not rows:
        return {"points": [], "explained": [0.0, 0.0], "known_from": None}
    x = torch.cat(rows)
    xy, explained = pca_2d(x)
    return {
        "points": [
            {"name": n, "kind": k, "x": round(float(p[0]), 5), "y": round(float(p[1]), 5)}
            for (n, k), p in zip(labels, xy)
        ],
        "explained": explained,
        "known_from": "amsoftmax class weights" if has_known else None,
    }


def pca_2d(x: Tensor) -> tuple[Tensor, list[float]]:
    """(N, 2) projection of rows onto their two main directions (signs fixed so the largest
    loading is positive: the same data always draws the same picture), and the variance shares."""
    centred = x.double() - x.double().mean(0)
    if len(x) < 2 or float(centred.abs().max()) == 0.0:
        return torch.zeros(len(x), 2), [0.0, 0.0]
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    axes = vh[:2]
    axes = axes * torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
    xy = centred @ axes.T
    if xy.shape[1] < 2:
        xy = torch.cat([xy, torch.zeros(len(x), 1, dtype=xy.dtype)], 1)
    share = (s**2 / (s**2).sum()).tolist() + [0.0]
    return xy.float(), [round(share[0], 5), round(share[1], 5)]
