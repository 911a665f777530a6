"""Who is speaking? Enrol people from a few clips, identify a clip among them, verify two clips.

Any speaker run works, without retraining: a clip's embedding is the run's pooled vector
(`hwml.speaker.inference.embed`, L2-normalised), a person is the normalised mean embedding of their clips,
and every comparison is a cosine similarity. Identification ranks the enrolled people; verification
says "same speaker" when the cosine of two clips reaches the run's threshold, calibrated when the
run was trained (the equal-error point on its validation utterances: `hwml.speaker.verification`, stored in
config.json under "verification"). Runs without one (made before calibration existed, or without a
validation split) use DEFAULT_THRESHOLD and say so (`"calibrated": false`).

A run that carries embedding statistics with thresholds calibrated on held-out speakers
(`hwml.speaker.scoring`: the shipped model does, checkpoints/embedding_stats.py and
bench/bench_speaker_short.py make them) scores in the space those thresholds belong to instead:
centred on the enrolled people's mean (three or more of them) or on the training speakers' mean
(verification, small rosters), with a threshold for short clips and one for long (`acceptance`).
Validation pairs of the training speakers put the raw threshold far too low for voices, microphones
and lengths a model never met (README: Open-set scoring).

Embeddings of different models are not comparable, so every enrolment carries the fingerprint of
the weights that made it and is refused by any other model.

A `source` below is a run folder, a `SpeakerModel` (`open_model(run)`: load once, use many times),
a model, or (model, config) as returned by hwml.runs.checkpoint.load_run. A clip is an audio file, a .pt/.npy
feature file ((T, 40) log-mel), a (T, 40) tensor or array, or a (sample_rate, samples) recording
(Gradio's microphone).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hwml.audio.decode import AUDIO_SUFFIXES
from hwml.errors import HwmlError
from hwml.safeio import FEATURE_SUFFIXES, read_json
from hwml.speaker.inference import embed
from hwml.speaker.predict import TOP_K, load_clip
from hwml.speaker.scoring import DEFAULT_MODE, Scorer, ScoringStats, crop_embeddings, load_stats, threshold_for
from hwml.speaker.verification import verification_threshold

ENROLLMENT_FORMAT = "hwml-speaker-enrollments"


CLIP_SUFFIXES = AUDIO_SUFFIXES + FEATURE_SUFFIXES


@dataclass
class SpeakerModel:
    """A speaker model loaded once: weights, config.json, and the fingerprint enrolments carry."""

    model: nn.Module
    config: dict = field(default_factory=dict)
    fingerprint: str = ""
    run_dir: Path | None = None
    stats: ScoringStats | None = None  # embedding statistics saved beside the weights (hwml.speaker.scoring)

    def features(self, clip) -> Tensor:
        """(T, 40) log-mel features of a clip, with the run's own feature parameters."""
        if isinstance(clip, tuple) and len(clip) == 2 and isinstance(clip[0], int):
            from hwml.audio.decode import wave_to_16k
            from hwml.audio.features import featurize
            from hwml.audio.params import LOGMEL40, FeatureParams
            from hwml.machine import single_thread

            features = self.config.get("features")
            wave = wave_to_16k(clip[1], clip[0], name="recording")
            with single_thread():
                return featurize(wave, FeatureParams.from_dict(features) if features else LOGMEL40)
        if isinstance(clip, (str, Path)) and not Path(clip).is_file():
            raise HwmlError(f"{clip}: {'a folder, not a clip' if Path(clip).is_dir() else 'no such file'}")
        return load_clip(clip, self.config.get("features"))

    def embed(self, clips: Sequence, crop: int | None = None) -> Tensor:
        """(N, D) unit-length embeddings of whole clips (crop: the mean over crops of that many
        frames, hwml.speaker.scoring.crop_embeddings)."""
        return self.embed_features([self.features(c) for c in clips], crop)

    def embed_features(self, feats: Sequence[Tensor], crop: int | None = None) -> Tensor:
        if crop:
            return crop_embeddings(self.model, list(feats), self.config, crop)
        return embed(self.model, list(feats), self.config)


def model_fingerprint(model: nn.Module) -> str:
    """A short hash of the weights: enrolments are only valid for the model that made them."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def open_model(source) -> SpeakerModel:
    """A SpeakerModel from any source. A run folder's comes from the one model cache
    (hwml.runs.cache, with its fingerprint kept beside it), so the app can call this on every
    click without loading and hashing the weights again."""
    if isinstance(source, SpeakerModel):
        return source
    if isinstance(source, nn.Module):
        return SpeakerModel(source.eval(), {}, model_fingerprint(source))
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], nn.Module):
        return SpeakerModel(source[0].eval(), dict(source[1] or {}), model_fingerprint(source[0]))
    from hwml.runs.cache import cached_run
    from hwml.runs.folder import read_config

    run_dir = Path(source)
    if read_config(run_dir).get("task") != "speaker":
        raise HwmlError(f"{run_dir}: not a speaker run (enrolment needs a speaker model)")
    loaded = cached_run(run_dir)
    opened = loaded.derived.get("speaker_model")
    if opened is None:  # two threads may both hash a new version: the same value, kept once
        fingerprint = model_fingerprint(loaded.model)
        opened = SpeakerModel(loaded.model, loaded.config, fingerprint, run_dir, load_stats(run_dir, fingerprint))
        opened = loaded.derived.setdefault("speaker_model", opened)
    return opened


@dataclass
class Enrollment:
    """A speaker known by a mean embedding, not by a trained class: no retraining needed."""

    name: str
    embedding: Tensor  # (D,) L2-normalised mean of the clips' embeddings
    n_clips: int
    model_id: str  # the fingerprint of the model that made it


def enroll_many(source, people: Mapping[str, Sequence]) -> list[Enrollment]:
    """Enrol several people at once: {name: [clip, ...]} -> one Enrollment each (in that order)."""
    sm = open_model(source)
    names = [str(n).strip() for n in people]
    if not people:
        raise HwmlError("nobody to enrol: give at least one name with clips")
    if any(not n for n in names):
        raise HwmlError("every enrolled speaker needs a name")
    if len(set(names)) != len(names):
        raise HwmlError("two enrolled speakers have the same name")
    clips = [list(c) if isinstance(c, (list, tuple)) and not _is_recording(c) else [c] for c in people.values()]
    for name, cs in zip(names, clips):
        if not cs:
            raise HwmlError(f"{name}: no clips to enrol from")
    emb = sm.embed([c for cs in clips for c in cs])
    out, start = [], 0
    for name, cs in zip(names, clips):
        mean = F.normalize(emb[start : start + len(cs)].mean(0), dim=0)
        out.append(Enrollment(name, mean, len(cs), sm.fingerprint))
        start += len(cs)
    return out


def enroll(source, name: str, clips) -> Enrollment:
    """Enrol one person from a clip or a list of clips."""
    if not name or not str(name).strip():
        raise HwmlError("enrolment needs a speaker name")
    return enroll_many(source, {name: clips})[0]


def _is_recording(clip) -> bool:
    return isinstance(clip, tuple) and len(clip) == 2 and isinstance(clip[0], int)


def speaker_folders(root) -> dict[str, list[Path]]:
    """{speaker: clip files} of a folder with one sub-folder per speaker (the folder name is the
    speaker's name; audio or feature files at any depth below it). A speaker folder without a
    usable clip, or clips lying directly in root, are errors naming the place."""
    root = Path(root)
    if not root.is_dir():
        raise HwmlError(f"{root}: no such folder" if not root.exists() else f"{root}: not a folder")
    loose = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in CLIP_SUFFIXES]
    if loose:
        raise HwmlError(
            f"{loose[0]}: clips directly in {root}: put each speaker's clips in a folder named after the speaker"
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise HwmlError(f"{root}: no speaker folders (one folder per speaker, named after them)")
    found = {}
    for folder in folders:
        clips = clip_files(folder)
        if not clips:
            raise HwmlError(
                f"{folder}: no audio ({', '.join(AUDIO_SUFFIXES)}) or feature "
                f"({', '.join(FEATURE_SUFFIXES)}) files for speaker {folder.name!r}"
            )
        found[folder.name] = clips
    return found


def clip_files(folder: Path) -> list[Path]:
    """Audio and feature files anywhere below a folder (hidden ones skipped), sorted."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in CLIP_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def save_enrollments(path, enrollments: list[Enrollment]) -> Path:
    """A plain JSON file: {"format", "version", "speakers": [{name, n_clips, model_id, embedding}]}."""
    from hwml.safeio import write_json_atomic

    return write_json_atomic(
        path,
        {
            "format": ENROLLMENT_FORMAT,
            "version": 1,
            "speakers": [
                {
                    "name": e.name,
                    "n_clips": e.n_clips,
                    "model_id": e.model_id,
                    "embedding": [round(v, 7) for v in e.embedding.tolist()],
                }
                for e in enrollments
            ],
        },
        indent=None,
    )


def load_enrollments(path) -> list[Enrollment]:
    path = Path(path)
    data = read_json(path)  # refused by size (HWML_MAX_JSON_MB) before it is read
    try:
        if not isinstance(data, dict) or data.get("format") != ENROLLMENT_FORMAT:
            raise ValueError("not an hwml enrolment file")
        out = [
            Enrollment(
                str(s["name"]), torch.tensor(s["embedding"], dtype=torch.float32), int(s["n_clips"]), str(s["model_id"])
            )
            for s in data["speakers"]
        ]
        if any(e.embedding.ndim != 1 or not torch.isfinite(e.embedding).all() for e in out):
            raise ValueError("an embedding is not a list of finite numbers")
        return out
    except FileNotFoundError:
        raise HwmlError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise HwmlError(f"{path}: a folder, not an enrolment file") from None
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RuntimeError) as exc:
        raise HwmlError(f"{path}: unreadable enrolment file ({exc})") from None


def check_enrollments(source, enrollments: list[Enrollment], where: str = "") -> SpeakerModel:
    """The SpeakerModel, after checking that every enrolment was made by it."""
    sm = open_model(source)
    prefix = f"{where}: " if where else ""
    if not enrollments:
        raise HwmlError(f"{prefix}no enrolled speakers to compare with")
    stale = [e.name for e in enrollments if e.model_id != sm.fingerprint]
    if stale:
        shown = ", ".join(stale[:5]) + (" ..." if len(stale) > 5 else "")
        raise HwmlError(
            f"{prefix}speakers {shown} were enrolled with another model "
            f"(not {sm.fingerprint}): enrol them again with this run"
        )
    dims = {int(e.embedding.numel()) for e in enrollments}
    if dims != {sm.model.emb_dim}:
        raise HwmlError(f"{prefix}enrolled embeddings have {sorted(dims)} dims, the model {sm.model.emb_dim}")
    return sm


def scoring_mode(sm: SpeakerModel, n_enrolled: int) -> str:
    """How a roster of n_enrolled people is scored: the scoring the model's statistics hold a
    held-out threshold for (hwml.speaker.scoring.DEFAULT_MODE, or the centring it falls back to
    for small rosters), else raw cosines."""
    mode = Scorer(sm.stats, DEFAULT_MODE).effective_mode(n_enrolled)
    return mode if threshold_for(sm.stats, mode) is not None else "raw"


def acceptance(sm: SpeakerModel, mode: str, frames: int | None = None) -> dict:
    """The same-speaker threshold of a scoring mode for a clip of `frames` frames: {"threshold",
    "calibrated", "eer", "n_trials", "scoring", "held_out", "length"}. Raw scoring uses the run's
    validation threshold (hwml.speaker.verification); the others the held-out calibration
    stored with the statistics (short or long clip)."""
    if mode == "raw":
        return {
            **verification_threshold(sm.config),
            "scoring": "raw",
            "held_out": False,
            "length": None,
            "frames": frames,
        }
    found = sm.stats.meta["thresholds"][mode]
    length = None
    if isinstance(found, dict) and "split_frames" in found:  # the nearer calibration's error rate
        length = "short" if frames is not None and frames < found["split_frames"] else "long"
    eer = found.get(f"eer_{length}" if length else "eer") if isinstance(found, dict) else None
    trials = found.get(f"n_trials_{length}" if length else "n_trials", 0) if isinstance(found, dict) else 0
    return {
        "threshold": threshold_for(sm.stats, mode, frames),
        "calibrated": True,
        "eer": eer,
        "n_trials": trials,
        "scoring": mode,
        "held_out": True,
        "length": length,
        "frames": frames,
    }


def score_clips(source, enrollments: list[Enrollment], clips: Sequence) -> tuple[Tensor, list[int], str]:
    """(scores (N clips, S enrolled), frames of each clip, scoring mode): cosines in the space of
    `scoring_mode`, in the enrolments' order."""
    sm = check_enrollments(source, enrollments)
    feats = [sm.features(c) for c in clips]
    mode = scoring_mode(sm, len(enrollments))
    scores = Scorer(sm.stats, mode).scores(sm.embed_features(feats), torch.stack([e.embedding for e in enrollments]))
    return scores, [len(f) for f in feats], mode


def identify_many(source, enrollments: list[Enrollment], clips: Sequence) -> Tensor:
    """(N clips, S enrolled) scores (`score_clips`), in the enrolments' order."""
    return score_clips(source, enrollments, clips)[0]


def identify_scored(source, enrollments: list[Enrollment], clip) -> tuple[list[tuple[str, float]], dict]:
    """(enrolled speakers ranked by score, best first; the `acceptance` threshold for this clip)."""
    sm = check_enrollments(source, enrollments)
    scores, frames, mode = score_clips(sm, enrollments, [clip])
    ranked = sorted(((e.name, float(s)) for e, s in zip(enrollments, scores[0])), key=lambda p: -p[1])
    return ranked, acceptance(sm, mode, frames[0])


def identify(source, enrollments: list[Enrollment], clip) -> list[tuple[str, float]]:
    """Enrolled speakers ranked by score (`score_clips`) against the clip, best first."""
    return identify_scored(source, enrollments, clip)[0]


def verify(source, clip_a, clip_b) -> dict:
    """Are two clips one speaker? {"score", "threshold", "same", "calibrated", "eer", "scoring",
    "held_out"}: same = score(A, B) >= the threshold of the shorter clip's length."""
    sm = open_model(source)
    feats = [sm.features(clip_a), sm.features(clip_b)]
    a, b = sm.embed_features(feats)
    mode = scoring_mode(sm, 1)
    score = float(Scorer(sm.stats, mode).scores(a, b)[0, 0])
    found = acceptance(sm, mode, min(len(f) for f in feats))
    return {
        "score": score,
        "threshold": found["threshold"],
        "same": score >= found["threshold"],
        "calibrated": found["calibrated"],
        "eer": found["eer"],
        "scoring": mode,
        "held_out": found["held_out"],
        "frames": found["frames"],
    }


def enroll_folder(run_dir, root, out_json) -> dict:
    """CLI `enroll`: every speaker folder under root -> the enrolment file (written atomically)."""
    sm = open_model(run_dir)
    people = speaker_folders(root)
    enrolled = enroll_many(sm, people)
    save_enrollments(out_json, enrolled)
    return {
        "out": str(out_json),
        "speakers": len(enrolled),
        "clips": sum(e.n_clips for e in enrolled),
        "model_id": sm.fingerprint,
    }


def input_clips(inputs: Sequence) -> list[tuple[str, Path]]:
    """(Id, file) of every clip: a file as itself (Id = its name), a folder searched recursively
    (Id = the path relative to that folder)."""
    out = []
    for given in map(Path, inputs):
        if given.is_dir():
            found = clip_files(given)
            if not found:
                raise HwmlError(f"{given}: no audio or feature files in this folder")
            out += [(p.relative_to(given).as_posix(), p) for p in found]
        elif given.is_file():
            out.append((given.name, given))
        else:
            raise HwmlError(f"{given}: no such file or folder")
    return out


def identify_files(run_dir, enrollment_file, inputs: Sequence, out_csv) -> dict:
    """CLI `identify`: header `Id,Speaker,Score,top1,score1,...,topK,scoreK` (K = min(5, enrolled)),
    Score = the best match's score (`score_clips`: a cosine, centred when the run carries
    statistics); written atomically once everything is scored."""
    from hwml.safeio import write_csv_atomic

    enrollments = load_enrollments(enrollment_file)
    sm = check_enrollments(run_dir, enrollments, where=str(enrollment_file))
    clips = input_clips(inputs)
    scores, _, mode = score_clips(sm, enrollments, [p for _, p in clips])
    k = min(TOP_K, len(enrollments))
    top_s, top_i = scores.topk(k, dim=-1)
    names = [e.name for e in enrollments]
    header = ["Id", "Speaker", "Score"] + [c for j in range(1, k + 1) for c in (f"top{j}", f"score{j}")]
    rows = (
        [cid, names[ti[0]], f"{ts[0]:.6f}"] + [v for j in range(k) for v in (names[ti[j]], f"{ts[j]:.6f}")]
        for (cid, _), ti, ts in zip(clips, top_i.tolist(), top_s.tolist())
    )
    write_csv_atomic(Path(out_csv), header, rows)
    return {
        "out": str(out_csv),
        "rows": len(clips),
        "speakers": len(enrollments),
        "header": ",".join(header),
        "scoring": mode,
    }
