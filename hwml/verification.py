"""Speaker verification scores: same/different trials, equal error rate, the threshold.

"Same speaker" means cosine(embedding A, embedding B) >= threshold. A speaker run calibrates its
threshold when it saves its best weights (hwml.speaker.SpeakerTask.best_info: the equal-error
point on pairs of its validation utterances) and stores it in config.json under "verification";
hwml.speaker_id.verify reads it back. Pure tensor maths, no model: the benchmark uses it too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hwml.errors import HwmlError

MAX_TRIALS = 200_000  # same/different pairs scored to calibrate (half of them same-speaker at most)
MIN_SAME = 30  # fewer same-speaker pairs than this calibrate poorly (hwml.speaker.SpeakerTask.best_info)


def verification_trials(
    emb: Tensor, labels: Tensor, max_trials: int = MAX_TRIALS, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """(cosine scores, is_same) of utterance pairs: every pair when they fit in max_trials;
    otherwise every same-speaker pair (a seeded sample of max_trials // 2 when more) plus
    seeded random different-speaker pairs up to max_trials. Unlabelled rows (< 0) take no part."""
    keep = torch.nonzero(labels >= 0).flatten()
    emb, labels = F.normalize(emb[keep].float(), dim=-1), labels[keep]
    n = len(labels)
    gen = torch.Generator().manual_seed(seed)
    if n * (n - 1) // 2 <= max_trials:
        i, j = torch.triu_indices(n, n, 1)
        return (emb @ emb.T)[i, j], labels[i] == labels[j]
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels)
    same = [
        order[start + torch.triu_indices(k, k, 1)]
        for start, k in zip((torch.cumsum(counts, 0) - counts).tolist(), counts.tolist())
        if k > 1
    ]
    same = torch.cat(same, 1) if same else torch.zeros(2, 0, dtype=torch.long)
    if same.shape[1] > max_trials // 2:
        same = same[:, torch.randperm(same.shape[1], generator=gen)[: max_trials // 2]]
    want = max_trials - same.shape[1]
    a, b = torch.randint(n, (2, 2 * want + 64), generator=gen)
    differ = labels[a] != labels[b]
    a, b = a[differ][:want], b[differ][:want]
    i, j = torch.cat([same[0], a]), torch.cat([same[1], b])
    scores = torch.cat([(emb[i[k : k + 16384]] * emb[j[k : k + 16384]]).sum(-1) for k in range(0, len(i), 16384)])
    return scores, labels[i] == labels[j]


def eer_threshold(scores: Tensor, same: Tensor) -> tuple[float, float]:
    """(equal error rate, threshold) of verification trials; "same" means score >= threshold.

    Accepting the k best-scoring trials gives a false-accept rate (different-speaker trials
    accepted) and a false-reject rate (same-speaker trials rejected); the EER is their mean at
    the k where they are closest, and the threshold lies halfway between the k-th and the
    (k+1)-th score. Only cuts between different scores count: tied trials fall on one side."""
    same = same.bool()
    n_same, n_diff = int(same.sum()), int((~same).sum())
    if n_same == 0 or n_diff == 0:
        raise HwmlError("verification calibration needs same-speaker and different-speaker trials")
    s, order = torch.sort(scores.double(), descending=True)
    hit = same[order]
    far = torch.cat([torch.zeros(1), torch.cumsum((~hit).double(), 0) / n_diff])
    frr = torch.cat([torch.ones(1), 1 - torch.cumsum(hit.double(), 0) / n_same])
    cut = torch.ones(len(s) + 1, dtype=torch.bool)
    cut[1:-1] = s[:-1] > s[1:]
    gap = torch.where(cut, (far - frr).abs(), torch.tensor(float("inf"), dtype=torch.double))
    k = int(torch.argmin(gap))
    eer = float((far[k] + frr[k]) / 2)
    if k == 0:
        threshold = float(s[0]) + 1e-6
    elif k == len(s):
        threshold = float(s[-1]) - 1e-6
    else:
        threshold = float((s[k - 1] + s[k]) / 2)
    return eer, threshold


def calibrate(emb: Tensor, labels: Tensor, max_trials: int = MAX_TRIALS, seed: int = 0) -> dict | None:
    """{"threshold", "eer", "n_trials", "n_same"} of embeddings of labelled utterances (what
    config.json stores under "verification"), or None without both kinds of trial."""
    scores, same = verification_trials(emb, labels, max_trials, seed)
    if not bool(same.any()) or bool(same.all()):
        return None
    eer, threshold = eer_threshold(scores, same)
    return {"threshold": round(threshold, 6), "eer": round(eer, 6), "n_trials": len(scores), "n_same": int(same.sum())}
