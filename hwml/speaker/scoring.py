"""Open-set scoring that holds on voices, microphones and lengths a speaker model never met.

A model trained on one corpus puts every clip of another corpus (other microphones, rooms,
languages, lengths) in one corner of its embedding space: raw cosines between different people
there are high, so a threshold calibrated on the training speakers accepts almost everyone.
What speaker-recognition systems do about it, each a few lines of tensor maths:

- **centring** (`ScoringStats.transform`): subtract the mean embedding of the training speakers,
  then L2-normalise again; optionally **whitening** as well (the inverse square root of their
  within-set covariance, shrunk towards the identity because a few hundred speakers estimate a
  64 x 64 covariance poorly);
- **cohort score normalisation** (`normalise_scores`): S-norm / adaptive S-norm (AS-norm, Matejka et
  al. 2017) turns a cosine into "how far above this enrolment's and this clip's usual scores
  against a cohort of other voices" (z-scores over the top-N cohort scores of each side, averaged),
  so one threshold serves clips of any length and domain;
- **multi-crop** (`crop_embeddings`): the mean of the unit embeddings of half-overlapping crops of
  the training crop length, for clips longer than one crop.

The statistics (mean, whitening, cohort of training-speaker mean embeddings) live beside the
weights as `embedding_stats.safetensors` + `embedding_stats.json` (the fingerprint of the weights
that made them, where they came from, the calibrated thresholds): `fit_stats` computes them from
labelled embeddings, `save_stats` / `load_stats` write and read them. A run without them falls
back to its additive-margin head: the class weight rows are the training speakers' directions in
the same space (`head_stats`), a cohort and a centre that need no data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hwml.errors import HwmlError

STATS_STEM = "embedding_stats"  # <run>/embedding_stats.safetensors + .json
STATS_FORMAT = "hwml-embedding-stats"
SHRINK = 0.5  # whitening: covariance shrunk halfway towards its mean variance times the identity
TOP_N = 100  # AS-norm: the cohort scores of each side that count (all when the cohort is smaller)
CROP = 200  # multi-crop: frames per crop (2 s)
SCORING_MODES = ("raw", "centre", "roster", "snorm", "asnorm")
DEFAULT_MODE = "roster"  # what won on held-out speakers (README: Open-set scoring)
ROSTER_MIN = 3  # roster centring needs this many enrolled people; fewer are centred on the training mean


@dataclass
class ScoringStats:
    """Training-speaker statistics in a model's embedding space (see module doc)."""

    mean: Tensor  # (D,) mean unit embedding
    whitening: Tensor  # (D, D) symmetric inverse square root of the shrunk covariance
    cohort: Tensor  # (C, D) unit mean embedding of each training speaker (raw space)
    meta: dict = field(default_factory=dict)  # model_id, source, n_utterances, thresholds, ...

    def transform(self, emb: Tensor, whiten: bool = False) -> Tensor:
        """Unit embeddings centred on the training mean (and whitened): (N, D) -> (N, D)."""
        x = torch.atleast_2d(emb).float() - self.mean
        if whiten:
            x = x @ self.whitening
        return F.normalize(x, dim=-1)


def fit_stats(emb: Tensor, labels: Tensor, shrink: float = SHRINK, meta: dict | None = None) -> ScoringStats:
    """ScoringStats of labelled unit embeddings of training speakers: the mean over speakers'
    means (each speaker weighs the same, however many clips), the whitening of the covariance of
    utterances around it (shrunk), and every speaker's normalised mean as the cohort."""
    emb = F.normalize(emb.float(), dim=-1)
    labels = torch.as_tensor(labels, dtype=torch.long)
    classes = torch.unique(labels[labels >= 0])
    if len(classes) < 2:
        raise HwmlError("embedding statistics need labelled embeddings of at least two speakers")
    means = torch.stack([emb[labels == c].mean(0) for c in classes])
    mean = means.mean(0)
    x = emb[labels >= 0] - mean
    cov = x.T @ x / max(len(x) - 1, 1)
    cov = (1 - shrink) * cov + shrink * cov.diagonal().mean() * torch.eye(cov.shape[0])
    vals, vecs = torch.linalg.eigh(cov.double())
    whitening = (vecs @ torch.diag(vals.clamp(min=1e-10).rsqrt()) @ vecs.T).float()
    whitening = whitening / whitening.diagonal().mean()  # scale-free: cosines do not care
    info = {"n_speakers": len(classes), "n_utterances": int((labels >= 0).sum()), "shrink": shrink, **(meta or {})}
    return ScoringStats(mean, whitening, F.normalize(means, dim=-1), info)


def head_stats(model: nn.Module) -> ScoringStats | None:
    """Data-free statistics of a model with an additive-margin head: its class weight rows are
    unit directions of the training speakers in the embedding space (None for other heads)."""
    weight = getattr(getattr(model, "head", None), "weight", None)
    if not isinstance(weight, Tensor) or weight.ndim != 2 or weight.shape[1] != getattr(model, "emb_dim", -1):
        return None
    rows = F.normalize(weight.detach().float().cpu(), dim=-1)
    dim = rows.shape[1]
    return ScoringStats(rows.mean(0), torch.eye(dim), rows, {"source": "head", "n_speakers": len(rows)})


def stats_paths(run_dir) -> tuple[Path, Path]:
    return Path(run_dir) / f"{STATS_STEM}.safetensors", Path(run_dir) / f"{STATS_STEM}.json"


def save_stats(run_dir, stats: ScoringStats) -> Path:
    """Write the tensors (safetensors) and their description (JSON), each atomically."""
    from safetensors.torch import save_file

    from hwml.safeio import atomic_path, write_json_atomic

    tensors_path, json_path = stats_paths(run_dir)
    tensors = {"mean": stats.mean, "whitening": stats.whitening, "cohort": stats.cohort}
    with atomic_path(tensors_path) as tmp:
        save_file({k: v.contiguous().float() for k, v in tensors.items()}, str(tmp))
    write_json_atomic(json_path, {"format": STATS_FORMAT, "version": 1, **stats.meta})
    return json_path


def load_stats(run_dir, model_id: str | None = None) -> ScoringStats | None:
    """The run's saved ScoringStats, or None when it has none. Statistics made by other weights
    (model_id differs from the fingerprint they carry) or unreadable files are a clear error."""
    tensors_path, json_path = stats_paths(run_dir)
    if not tensors_path.is_file() or not json_path.is_file():
        return None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != STATS_FORMAT:
            raise ValueError("not an hwml embedding-statistics file")
        t = load_file(str(tensors_path))
        stats = ScoringStats(t["mean"], t["whitening"], t["cohort"], meta)
        d = stats.mean.numel()
        if (
            stats.mean.ndim != 1
            or stats.whitening.shape != (d, d)
            or stats.cohort.ndim != 2
            or stats.cohort.shape[1] != d
        ):
            raise ValueError("tensor shapes do not fit together")
        if not all(torch.isfinite(x).all() for x in (stats.mean, stats.whitening, stats.cohort)):
            raise ValueError("tensors hold non-finite numbers")
    except (OSError, ValueError, KeyError, UnicodeDecodeError, SafetensorError) as exc:
        raise HwmlError(f"{json_path.parent}: unreadable embedding statistics ({exc})") from None
    if model_id is not None and meta.get("model_id") not in (None, model_id):
        raise HwmlError(
            f"{tensors_path}: made for model {meta.get('model_id')}, not {model_id}: "
            "compute them again (checkpoints/embedding_stats.py)"
        )
    return stats


def cohort_moments(emb: Tensor, cohort: Tensor, top_n: int | None) -> tuple[Tensor, Tensor]:
    """(mean, std) per row of emb of its cosines with the cohort: of the top_n highest (AS-norm)
    or of all of them (top_n None: S-norm)."""
    sims = F.normalize(torch.atleast_2d(emb), dim=-1) @ F.normalize(cohort, dim=-1).T
    if top_n is not None and top_n < sims.shape[1]:
        sims = sims.topk(top_n, dim=-1).values
    return sims.mean(-1), sims.std(-1).clamp(min=1e-4)


def normalise_scores(scores: Tensor, test: Tensor, enrolled: Tensor, cohort: Tensor, top_n: int | None) -> Tensor:
    """S-norm (top_n None) or AS-norm of (N test, S enrolled) cosines: the mean of the score's
    z-score against the test clip's cohort scores and against the enrolment's."""
    mt, st = cohort_moments(test, cohort, top_n)
    me, se = cohort_moments(enrolled, cohort, top_n)
    return 0.5 * ((scores - mt[:, None]) / st[:, None] + (scores - me[None, :]) / se[None, :])


@dataclass
class Scorer:
    """Cosines, or normalised scores, between test and enrolled embeddings (see module doc).

    mode "raw": plain cosine. "centre": cosine after centring on the training mean (and whitening).
    "roster": centred on the mean of the enrolled people themselves (ROSTER_MIN of them at least,
    else as "centre"): the in-domain mean, which is what removes a new corpus' shared direction.
    "snorm" / "asnorm": centred on the training mean, then cohort-normalised. Without stats every
    mode but "roster" scores raw cosines (and "roster" needs no stats)."""

    stats: ScoringStats | None = None
    mode: str = DEFAULT_MODE
    whiten: bool = False
    top_n: int = TOP_N

    def __post_init__(self):
        if self.mode not in SCORING_MODES:
            raise HwmlError(f"scoring {self.mode!r}: one of {', '.join(SCORING_MODES)}")

    def effective_mode(self, n_enrolled: int) -> str:
        """The mode that really scores a roster of n_enrolled people."""
        if self.mode == "roster" and n_enrolled >= ROSTER_MIN:
            return "roster"
        if self.stats is None:
            return "raw"
        return "centre" if self.mode == "roster" else self.mode

    def scores(self, test: Tensor, enrolled: Tensor) -> Tensor:
        """(N, S) scores of N test embeddings against S enrolled (mean) embeddings."""
        test, enrolled = torch.atleast_2d(test).float(), torch.atleast_2d(enrolled).float()
        mode = self.effective_mode(len(enrolled))
        if mode == "raw":
            return F.normalize(test, dim=-1) @ F.normalize(enrolled, dim=-1).T
        if mode == "roster":
            whitening = self.stats.whitening if self.stats is not None else torch.eye(enrolled.shape[1])
            space = ScoringStats(F.normalize(enrolled, dim=-1).mean(0), whitening, enrolled)
            return space.transform(test, self.whiten) @ space.transform(enrolled, self.whiten).T
        a, b = self.stats.transform(test, self.whiten), self.stats.transform(enrolled, self.whiten)
        cos = a @ b.T
        if mode == "centre":
            return cos
        cohort = self.stats.transform(self.stats.cohort, self.whiten)
        return normalise_scores(cos, a, b, cohort, self.top_n if mode == "asnorm" else None)


def crop_embeddings(model: nn.Module, feats: list[Tensor], config: dict | None, crop: int = CROP) -> Tensor:
    """(N, D) unit embeddings of clips as the normalised mean of the unit embeddings of crops of
    `crop` frames every crop/2 frames (the last flush with the end). A clip no longer than one
    crop is embedded whole, exactly as `hwml.speaker.inference.embed` does."""
    from hwml.speaker.inference import embed

    pieces, owner = [], []
    for i, x in enumerate(feats):
        n = len(x)
        if n <= crop:
            starts = [0]
        else:
            hop = max(1, crop // 2)
            starts = list(range(0, n - crop, hop)) + [n - crop]
        pieces += [x[s : s + crop] for s in starts]
        owner += [i] * len(starts)
    emb = embed(model, pieces, config)
    owner_t = torch.tensor(owner)
    out = torch.zeros(len(feats), emb.shape[1]).index_add_(0, owner_t, emb)
    return F.normalize(out, dim=-1)


def threshold_for(stats: ScoringStats | None, mode: str, frames: int | None = None) -> float | None:
    """The calibrated accept threshold of a scoring mode stored with the statistics
    (meta["thresholds"][mode]): one number, or the `length_thresholds` of short and long clips,
    which a clip of `frames` frames interpolates linearly in log length between the two
    calibration lengths (and takes the nearer one outside them; no length: the long one).
    None when none was calibrated."""
    found = ((stats.meta if stats else {}) or {}).get("thresholds", {}).get(mode)
    if isinstance(found, dict):
        short, long_ = found.get("short"), found.get("long")
        a, b = found.get("short_frames"), found.get("long_frames")
        if frames is None or not all(isinstance(v, (int, float)) for v in (short, long_, a, b)) or not 0 < a < b:
            found = long_ if frames is None or frames >= found.get("split_frames", 0) else short
        else:
            w = min(1.0, max(0.0, math.log(max(frames, 1) / a) / math.log(b / a)))
            found = short + w * (long_ - short)
    if isinstance(found, (int, float)) and not isinstance(found, bool) and math.isfinite(found):
        return float(found)
    return None


SHORT_FRAMES = 150  # clips shorter than 1.5 s take the short threshold (a 1 s keyword, a word or two)


def length_thresholds(scores: Tensor, same: Tensor, frames: Tensor, split: int = SHORT_FRAMES) -> dict:
    """Equal-error thresholds of verification trials, one for trials whose test clip is shorter
    than `split` frames and one for the others, each with the median test-clip length it holds
    for: {"short", "long", "split_frames", "short_frames", "long_frames", "eer_short",
    "eer_long", "n_trials_short", "n_trials_long"} (what `threshold_for` reads)."""
    from hwml.speaker.verification import eer_threshold

    out: dict = {"split_frames": split}
    for name, pick in (("short", frames < split), ("long", frames >= split)):
        if not bool(pick.any()):
            raise HwmlError(
                f"length calibration needs {name} trials (test clips "
                f"{'under' if name == 'short' else 'of at least'} {split} frames)"
            )
        eer, threshold = eer_threshold(scores[pick], same[pick])
        out.update(
            {
                name: round(threshold, 6),
                f"{name}_frames": int(frames[pick].median()),
                f"eer_{name}": round(eer, 6),
                f"n_trials_{name}": int(pick.sum()),
            }
        )
    return out


def save_thresholds(run_dir, thresholds: dict, where: str) -> Path:
    """Store held-out thresholds ({mode: number or length_thresholds dict}) in the run's saved
    statistics (which must exist), with a line saying what they were calibrated on."""
    stats = load_stats(run_dir)
    if stats is None:
        raise HwmlError(f"{run_dir}: no embedding statistics to add thresholds to (checkpoints/embedding_stats.py)")
    unknown = set(thresholds) - set(SCORING_MODES)
    if unknown:
        raise HwmlError(f"thresholds for unknown scoring modes: {', '.join(sorted(unknown))}")
    meta = {k: v for k, v in stats.meta.items() if k not in ("format", "version")}
    stats.meta = {**meta, "thresholds": thresholds, "thresholds_from": where}
    return save_stats(run_dir, stats)
