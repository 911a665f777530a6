"""Speaker verification: "same speaker" means cosine(embedding A, embedding B) >= threshold.

A speaker run calibrates its threshold when it saves its best weights (`SpeakerTask.best_info`:
the equal-error point on pairs of its validation utterances, `calibrate_threshold`) and stores
it in config.json under "verification"; `verification_threshold` reads it back. Runs without one
(made before calibration existed, or without a validation split) use DEFAULT_THRESHOLD and say so
(`"calibrated": false`). The trial maths (`verification_trials`, `eer_threshold`, `calibrate`) is
pure tensor work, no model: the benchmarks use it too.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hwml.data.types import UtteranceSet
from hwml.errors import HwmlError
from hwml.speaker.inference import embed, per_utterance

MAX_TRIALS = 200_000  # same/different pairs scored to calibrate (half of them same-speaker at most)


MIN_SAME = 30  # fewer same-speaker pairs than this calibrate poorly (hwml.speaker.task.SpeakerTask.best_info)


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


HALVES_MAX = 1000  # best_info: validation utterances halved when too few speakers validate twice


HALF_MIN_FRAMES = 50  # ... each half at least 0.5 s


def calibrate_threshold(
    model: nn.Module, utts: UtteranceSet, indices: Tensor, config: dict | None, seed: int, emb: Tensor | None = None
) -> dict | None:
    """The verification threshold of a model: the equal-error point of same/different-speaker
    pairs of whole labelled utterances (`indices` of utts: a run's validation split; `emb`:
    their embeddings when already computed). A split with too few speakers seen twice (10
    utterances a speaker at valid_fraction 0.1 give each speaker one) pairs the two halves of up
    to HALVES_MAX of the utterances instead: one more inference pass over at most that many.
    {"threshold", "eer", "n_trials", "n_same", "method": "utterances" | "halves"} or None."""
    labels = utts.labels[indices]
    if emb is None:
        emb = F.normalize(per_utterance(model.embed, model, utts, config, model.emb_dim, indices), dim=-1)
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


DEFAULT_THRESHOLD = 0.5  # cosine; used only by runs with no calibrated threshold (see module doc)


def verification_threshold(config: dict) -> dict:
    """{"threshold", "calibrated", "eer", "n_trials"} of a run: its calibrated threshold from
    config.json, or DEFAULT_THRESHOLD (calibrated false, eer None) when it has none."""
    found = (config or {}).get("verification")
    if found is None:
        return {"threshold": DEFAULT_THRESHOLD, "calibrated": False, "eer": None, "n_trials": 0}
    t = found.get("threshold") if isinstance(found, dict) else None
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t) or not -1 <= t <= 1:
        raise HwmlError(f"config.json: 'verification' holds no threshold between -1 and 1 ({found!r:.80})")
    return {"threshold": float(t), "calibrated": True, "eer": found.get("eer"), "n_trials": found.get("n_trials", 0)}


def calibrate_run(run_dir, data) -> dict:
    """Calibrate an existing run's threshold afterwards (e.g. one trained before calibration
    existed): the equal-error point on its validation utterances rebuilt from `data` (the folder
    it was trained on), written into its config.json. Returns the "verification" entry."""
    from hwml.data import load_dataset
    from hwml.runs.cache import loaded_run
    from hwml.runs.folder import CONFIG, read_config
    from hwml.safeio import write_json_atomic
    from hwml.speaker.split import valid_split

    if read_config(run_dir).get("task") != "speaker":
        raise HwmlError(f"{run_dir}: not a speaker run (calibration needs a speaker model)")
    model, config = loaded_run(run_dir)
    valid = valid_split(config, load_dataset(data).train)
    found = calibrate_threshold(model, valid, torch.arange(len(valid)), config, int(config["split"]["seed"]))
    if found is None:
        raise HwmlError(f"{data}: the validation split has too few speakers or utterances to calibrate")
    config = read_config(run_dir)
    write_json_atomic(Path(run_dir) / CONFIG, {**config, "verification": found})
    return found
