"""HW4 open set on short and long clips: each scoring step against raw cosine, and threshold calibration.

Speakers the model never trained on, from data beside the repository (../shared/data):
- `fsdd-short`: FSDD (6 speakers, 1 s digit recordings, ~0.4 s of speech each), enrolled from
  `--enrol-clips` clips joined into one, every other clip identified alone;
- `fsdd-long`: FSDD enrolled from ~10 s joined, tested on 6 other clips joined (~2.5 s);
- `timit-long` / `timit-short`: the TIMIT sample (8 speakers; measure only, never trained on),
  enrolled from 2 sentences joined, tested on each other sentence / on ~1 s pieces of them cut at
  the word alignment (.wrd).
speechocean762 words are not used: ../shared has no time alignment for them, and its speakers
trained the shipped model (not an open set for it).

Every clip is embedded once (and once more as crops for multi-crop); the methods then score the
same trials (each test clip against every enrolled speaker): top-1 identification, the equal error
rate per set, and the pooled EER (one threshold for all four sets), each with its ratio to raw
cosine. Calibration: thresholds for short and long clips (hwml.speaker.scoring.length_thresholds)
fitted on FSDD alone, then the false-accept / false-reject rates they give on TIMIT (other
speakers, other corpus) three ways: one threshold for all lengths (`single`), the short or long
one by a 1.5 s cut (`two_step`), and the one interpolated in log clip length (`loglength`); the
verification of two clips (`hwml verify`, rosters under 3) is calibrated on FSDD clip pairs,
training-mean centred, and checked on TIMIT clip pairs; one threshold is stored (by length it
rejected 44-71% of same-speaker TIMIT pairs).
Then Who is speaking? itself, open set: the best score over a roster decides, so its threshold is
calibrated on FSDD rosters of 3-5 people (seeded draws: clips of enrolled speakers against clips of
the others), by length, and checked on TIMIT rosters of 3 and of all but one: how many clips of
people not enrolled pass, how many of the enrolled are named right and pass.
`--save-thresholds` writes the FSDD calibration into the run's embedding_stats.json.
Skips cleanly when ../shared is absent.

    python bench/bench_speaker_short.py [--run checkpoints/speaker] [--save-thresholds]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from hwml.speaker.identify import open_model  # noqa: E402
from hwml.speaker.scoring import (  # noqa: E402
    CROP,
    SHORT_FRAMES,
    Scorer,
    ScoringStats,
    length_thresholds,
    save_thresholds,
    threshold_for,
)
from hwml.speaker.verification import eer_threshold, verification_threshold, verification_trials  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
BENCH = "speaker_short"
FPS = 100
# name -> (Scorer mode, whiten, multi-crop)
METHODS = {
    "raw": ("raw", False, False),
    "centre": ("centre", False, False),
    "centre+whiten": ("centre", True, False),
    "snorm": ("snorm", False, False),
    "asnorm": ("asnorm", False, False),
    "roster": ("roster", False, False),
    "roster+whiten": ("roster", True, False),
    "raw+multicrop": ("raw", False, True),
    "roster+multicrop": ("roster", False, True),
}
CALIBRATED = ("raw", "centre", "roster")  # the modes whose pairwise thresholds are calibrated
FSDD_SETS = ("fsdd-short", "fsdd-long")


def emit(line: dict) -> None:
    print(json.dumps({"bench": BENCH, **line}), flush=True)


def cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def seeded(items: list, gen: torch.Generator) -> list:
    return [items[i] for i in torch.randperm(len(items), generator=gen).tolist()]


def fsdd_sets(sm, folder: Path, enrol_clips: int, gen) -> dict:
    """fsdd-short and fsdd-long: {set: (enrol feats per speaker, test feats, test labels)}."""
    by = defaultdict(list)
    for wav in sorted(folder.glob("*.wav")):
        by[wav.stem.split("_")[1]].append(sm.features(wav))
    short, long_ = ([], [], []), ([], [], [])
    for k, (_, clips) in enumerate(sorted(by.items())):
        clips = seeded(clips, gen)
        short[0].append(torch.cat(clips[:enrol_clips]))
        for c in clips[enrol_clips:]:
            short[1].append(c)
            short[2].append(k)
        j, frames = 0, 0
        while frames < 10 * FPS:
            frames += len(clips[j])
            j += 1
        long_[0].append(torch.cat(clips[:j]))
        for i in range(j, len(clips) - 5, 6):
            long_[1].append(torch.cat(clips[i : i + 6]))
            long_[2].append(k)
    return {"fsdd-short": short, "fsdd-long": long_}


def timit_sets(sm, folder: Path, gen) -> dict:
    """timit-long and timit-short, enrolled from the same 2 sentences per speaker."""
    long_, short = ([], [], []), ([], [], [])
    for k, spk in enumerate(sorted(p for p in folder.iterdir() if p.is_dir())):
        wavs = seeded(sorted(spk.glob("*.wav")), gen)
        feats = [sm.features(w) for w in wavs]
        for part in (long_, short):
            part[0].append(torch.cat(feats[:2]))
        for wav, f in zip(wavs[2:], feats[2:]):
            long_[1].append(f)
            long_[2].append(k)
            start = None
            for line in wav.with_suffix(".wrd").read_text().split("\n"):
                if not line.strip():
                    continue
                s, e = (int(v) // 160 for v in line.split()[:2])
                start = s if start is None else start
                if e - start >= FPS:  # ~1 s pieces, cut where a word ends
                    short[1].append(f[start:e])
                    short[2].append(k)
                    start = None
    return {"timit-long": long_, "timit-short": short}


def trial_matrix(labels: list[int], n_enrolled: int) -> torch.Tensor:
    same = torch.zeros(len(labels), n_enrolled, dtype=torch.bool)
    same[torch.arange(len(labels)), torch.tensor(labels)] = True
    return same


def rates(scores: torch.Tensor, same: torch.Tensor, threshold: float) -> dict:
    accept = scores >= threshold
    return {
        "far": round(float(accept[~same].float().mean()), 4),
        "frr": round(float((~accept[same]).float().mean()), 4),
    }


def open_set_trials(sm, mode: str, embedded: dict, sets: dict, name: str, k: int, draws: int, gen) -> tuple:
    """Who is speaking? with k of the set's speakers enrolled, `draws` seeded rosters: per test clip
    and draw (best score, clip's speaker enrolled, best is that speaker, clip frames)."""
    enrol, tests, labels = sets[name]
    e_all, t_all = embedded[name, False]
    labels = torch.tensor(labels)
    frames = torch.tensor([len(x) for x in tests])
    out = []
    for _ in range(draws):
        pick = torch.randperm(len(enrol), generator=gen)[:k]
        best, who = Scorer(sm.stats, mode).scores(t_all, e_all[pick]).max(1)
        out.append((best, torch.isin(labels, pick), pick[who] == labels, frames))
    return tuple(torch.cat(parts) for parts in zip(*out))


def pair_trials(sm, embedded: dict, sets: dict, name: str, seed: int) -> tuple:
    """Verification of two clips (hwml verify): (centred cosines, same speaker, frames of the shorter
    clip) of pairs of the set's test clips (all pairs, or a seeded 300,000 when more)."""
    _, tests, labels = sets[name]
    emb = sm.stats.transform(embedded[name, False][1])
    scores, same = verification_trials(emb, torch.tensor(labels), max_trials=300_000, seed=seed)
    i, j = torch.triu_indices(len(labels), len(labels), 1)  # recover the pairs' lengths
    frames = torch.tensor([len(x) for x in tests])
    if len(i) <= 300_000:
        return scores, same, torch.minimum(frames[i], frames[j])
    return scores, same, torch.full_like(scores, int(frames.median()), dtype=torch.long)


def open_set_rates(best, enrolled, right, limit) -> dict:
    """Share of clips of unenrolled speakers accepted; of enrolled ones named right and accepted."""
    accept = best >= limit
    return {
        "unenrolled_accepted": round(float(accept[~enrolled].float().mean()), 4),
        "enrolled_named_and_accepted": round(float((accept & right)[enrolled].float().mean()), 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, default=ROOT / "checkpoints" / "speaker")
    p.add_argument("--data", type=Path, default=DATA, help="folder holding fsdd/ and timit-sample/")
    p.add_argument("--enrol-clips", type=int, default=6, help="fsdd-short: clips joined to enrol")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--save-thresholds", action="store_true", help="write the FSDD calibration into the run")
    args = p.parse_args()
    fsdd, timit = args.data / "fsdd" / "recordings", args.data / "timit-sample"
    if not fsdd.is_dir():
        emit({"skipped": f"{fsdd} is absent (a clone without ../shared): nothing to measure"})
        return
    torch.set_num_threads(args.threads)
    started, cpu0 = time.perf_counter(), cpu_seconds()
    sm = open_model(args.run)
    if sm.stats is None:
        raise SystemExit(f"{args.run}: no embedding_stats (run checkpoints/embedding_stats.py first)")
    gen = torch.Generator().manual_seed(args.seed)
    sets = fsdd_sets(sm, fsdd, args.enrol_clips, gen)
    if timit.is_dir():
        sets.update(timit_sets(sm, timit, gen))
    else:
        emit({"note": f"{timit} is absent: FSDD only, no cross-corpus check"})
    embedded = {}
    for name, (enrol, tests, _labels) in sets.items():
        for crop in (False, True):
            e, t = (sm.embed_features(x, CROP if crop else None) for x in (enrol, tests))
            embedded[name, crop] = (e, t)
        emit(
            {
                "event": "set",
                "set": name,
                "speakers": len(enrol),
                "enrol_s": round(sum(map(len, enrol)) / len(enrol) / FPS, 2),
                "test_clips": len(tests),
                "test_s": round(sum(map(len, tests)) / len(tests) / FPS, 2),
            }
        )
    embed_s, embed_cpu = time.perf_counter() - started, cpu_seconds() - cpu0

    results: dict = {}
    for method, (mode, whiten, crop) in METHODS.items():
        scorer = Scorer(sm.stats, mode, whiten)
        per = {}
        for name, (enrol, tests, labels) in sets.items():
            e, t = embedded[name, crop]
            scores = scorer.scores(t, e)
            same = trial_matrix(labels, len(enrol))
            eer, at = eer_threshold(scores.flatten(), same.flatten())
            top1 = float((scores.argmax(1) == torch.tensor(labels)).float().mean())
            frames = torch.tensor([len(x) for x in tests])[:, None].expand_as(scores)
            per[name] = {"top1": top1, "eer": eer, "at": at, "scores": scores, "same": same, "frames": frames}
        pooled = eer_threshold(
            torch.cat([r["scores"].flatten() for r in per.values()]),
            torch.cat([r["same"].flatten() for r in per.values()]),
        )
        results[method] = (per, pooled)
    raw_per, raw_pooled = results["raw"]
    for method, (per, pooled) in results.items():
        emit(
            {
                "method": method,
                **{f"{n}_top1": round(r["top1"], 4) for n, r in per.items()},
                **{f"{n}_eer": round(r["eer"], 4) for n, r in per.items()},
                "pooled_eer": round(pooled[0], 4),
                "pooled_eer_ratio_vs_raw": round(pooled[0] / max(raw_pooled[0], 1e-9), 3),
                **{f"{n}_eer_ratio_vs_raw": round(r["eer"] / max(raw_per[n]["eer"], 1e-9), 3) for n, r in per.items()},
            }
        )

    # calibration on FSDD, checked on TIMIT
    shipped = verification_threshold(sm.config)["threshold"]
    stored, singles = {}, {}
    for method in CALIBRATED:
        per = results[method][0]
        fs = [per[n] for n in FSDD_SETS]
        cat = {k: torch.cat([r[k].flatten() for r in fs]) for k in ("scores", "same", "frames")}
        lengthwise = length_thresholds(cat["scores"], cat["same"], cat["frames"], SHORT_FRAMES)
        one = eer_threshold(cat["scores"], cat["same"])[1]
        stored[method] = lengthwise
        singles[method] = round(one, 6)
        line = {"calibrate": method, "on": "fsdd", **lengthwise, "single": round(one, 4)}
        probe = ScoringStats(sm.stats.mean, sm.stats.whitening, sm.stats.cohort, {"thresholds": {method: lengthwise}})
        for name in [n for n in per if n.startswith("timit")]:
            r = per[name]
            t = lengthwise["short" if name.endswith("short") else "long"]
            by_length = torch.tensor([threshold_for(probe, method, int(f)) for f in r["frames"][:, 0].tolist()])
            line[f"{name}_loglength"] = rates(r["scores"], r["same"], by_length[:, None])
            line[f"{name}_two_step"] = rates(r["scores"], r["same"], t)
            line[f"{name}_single"] = rates(r["scores"], r["same"], one)
            if method == "raw":
                line[f"{name}_shipped_{shipped:.3f}"] = rates(r["scores"], r["same"], shipped)
        if method == "raw":
            for name in FSDD_SETS:
                line[f"{name}_shipped_{shipped:.3f}"] = rates(per[name]["scores"], per[name]["same"], shipped)
        emit(line)
    # Who is speaking?: the best score of a roster, open set. Calibrated on FSDD rosters of 3-5
    # people (20 draws each), checked on TIMIT rosters of 3 and of all but one.
    ident, draws = {}, 20
    for method in ("raw", "roster"):
        parts = [open_set_trials(sm, method, embedded, sets, n, k, draws, gen) for n in FSDD_SETS for k in (3, 4, 5)]
        best, enrolled, _, frames = (torch.cat(x) for x in zip(*parts))
        ident[method] = length_thresholds(best, enrolled, frames, SHORT_FRAMES)
        one = eer_threshold(best, enrolled)[1]
        emit({"calibrate_open_set": method, "on": "fsdd rosters of 3-5", **ident[method], "single": round(one, 4)})
        probe = ScoringStats(sm.stats.mean, sm.stats.whitening, sm.stats.cohort, {"thresholds": ident})
        for name in sets:
            n = len(sets[name][0])
            for k in sorted({3, n - 1}):
                best, enrolled, right, frames = open_set_trials(sm, method, embedded, sets, name, k, draws, gen)
                by_length = torch.tensor([threshold_for(probe, method, int(f)) for f in frames.tolist()])
                line = {"open_set": name, "method": method, "enrolled": k, "of": n, "draws": draws}
                line["loglength"] = open_set_rates(best, enrolled, right, by_length)
                line["single"] = open_set_rates(best, enrolled, right, one)
                if method == "raw":
                    line[f"shipped_{shipped:.3f}"] = open_set_rates(best, enrolled, right, shipped)
                emit(line)
    # hwml verify: two clips, no roster: training-mean centring, calibrated on FSDD clip pairs
    parts = [pair_trials(sm, embedded, sets, n, args.seed) for n in FSDD_SETS]
    scores, same, frames = (torch.cat(x) for x in zip(*parts))
    verify_lengthwise = length_thresholds(scores, same, frames, SHORT_FRAMES)
    verify_one = eer_threshold(scores, same)[1]
    emit({"calibrate_verify": "centre", "on": "fsdd clip pairs", **verify_lengthwise, "single": round(verify_one, 4)})
    probe = ScoringStats(
        sm.stats.mean, sm.stats.whitening, sm.stats.cohort, {"thresholds": {"centre": verify_lengthwise}}
    )
    for name in [n for n in sets if n.startswith("timit")]:
        scores, same, frames = pair_trials(sm, embedded, sets, name, args.seed)
        by_length = torch.tensor([threshold_for(probe, "centre", int(f)) for f in frames.tolist()])
        emit(
            {
                "verify": name,
                "pairs": len(scores),
                "eer": round(eer_threshold(scores, same)[0], 4),
                "loglength": rates(scores, same, by_length),
                "single": rates(scores, same, verify_one),
                f"raw_shipped_{shipped:.3f}": rates(
                    verification_trials(embedded[name, False][1], torch.tensor(sets[name][2]), 300_000, args.seed)[0],
                    same,
                    shipped,
                ),
            }
        )
    saved = {"roster": ident["roster"], "centre": round(verify_one, 6)}  # by length: FRR 44-71% on TIMIT
    if args.save_thresholds:
        where = (
            f"FSDD, {len(sets['fsdd-short'][0])} speakers the model never heard (bench/bench_speaker_short.py, seed "
            f"{args.seed}): roster = the best score of rosters of 3-5 of them ({draws} seeded draws each), by clip "
            f"length: short = single clips (~0.4 s of speech) against {args.enrol_clips} clips joined, long = 6 clips "
            "joined against ~10 s; centre = pairs of test clips of both, one threshold"
        )
        emit({"saved": str(save_thresholds(args.run, saved, where)), "thresholds": saved})
    emit(
        {
            "event": "done",
            "embed_wall_s": round(embed_s, 1),
            "embed_cpu_s": round(embed_cpu, 1),
            "wall_s": round(time.perf_counter() - started, 1),
            "cpu_s": round(cpu_seconds() - cpu0, 1),
        }
    )


if __name__ == "__main__":
    main()
