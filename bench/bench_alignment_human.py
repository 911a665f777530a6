"""Forced alignment against a human: hwml's aligners and PocketSphinx vs TIMIT's hand-made phone times.

Reads ../shared/data/timit-sample (8 TIMIT speakers, 10 read sentences each, phone times marked by
phoneticians; non-commercial licence: nothing of it, nor anything derived from it, is written
outside a temporary folder) and skips cleanly when it is absent. The speakers are split by
speaker, fixed, into two halves of 2 women + 2 men each (SPLIT): `dev` to tune on, `test` to
report on.

Each half is copied as a transcribed corpus (MFA layout: `<utt>.wav` + `<utt>.lab` with the
sentence, no phone times) and aligned by `hwml.importers.import_phoneme` once per `--aligner`
choice (`hwml.align.aligners`): `hwml` (today's Viterbi over the shipped model, the baseline of
the ratios), `pocketsphinx` (PocketSphinx 5.1.1's own alignment with the en-us model inside its
wheel) and `joint` (and, with `--average-with RUN`, `joint` over the shipped model's and RUN's averaged
log-posteriors). Every frame of every recording is scored (10 ms frames as hwml cuts them;
the hand labels folded to TIMIT-39; a `q` glottal stop, which TIMIT-39 drops, is left out of
the counts, nothing else is):

- frame_agreement, overall and per phone class (CLASSES), and boundaries_within_10ms / 20ms
  (share of the hand-marked boundaries with an aligned boundary that close);
- two conventions: `timit39` (a stop's closure is `sil`, as TIMIT-39 and hwml's models say) and
  `closure_as_stop` (the closure counts as its stop, as PocketSphinx labels it).

`--sweep` also tunes the joint aligner's penalty, silence cost and minimum frames on the dev
half (frame scores computed once). Prints JSON lines; wall-clock seconds with CPU seconds beside
(the machine is shared: wall clock is inflated by other jobs).

    python bench/bench_alignment_human.py [--data DIR] [--halves dev,test] [--sweep]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hwml.align import joint, viterbi  # noqa: E402
from hwml.align.aligners import ALIGNERS  # noqa: E402
from hwml.audio.frames import label_frames, num_frames  # noqa: E402
from hwml.data.phones import PHONES_39, fold  # noqa: E402
from hwml.importers import import_phoneme  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "timit-sample"
SPLIT = {  # by speaker, fixed: 2 women (f...) and 2 men (m...) in each half
    "dev": ("dr1-fvmh0", "dr2-marc0", "dr3-madc0", "dr4-falr0"),
    "test": ("dr5-ftlg0", "dr6-mbma1", "dr7-madd0", "dr8-fbcg1"),
}
CLASSES = {
    "vowels": "iy ih eh ae ah uw uh aa ey ay oy aw ow er",
    "stops": "b d g p t k dx ch jh",
    "fricatives": "f v th dh s z sh hh",
    "nasals": "m n ng",
    "liquids_glides": "l r w y",
    "silence": "sil",
}
CLASS_OF = {p: c for c, names in CLASSES.items() for p in names.split()}
RELEASE = {"bcl": "b", "dcl": "d", "gcl": "g", "pcl": "p", "tcl": "t", "kcl": "k"}
AFFRICATE = {"dcl": "jh", "tcl": "ch"}
HOP_S, FIRST_EDGE_S = 0.01, 0.0075  # frame i starts (for boundaries) at FIRST_EDGE_S + i * HOP_S


class HandLabels:
    """One recording's hand labels as hwml's frames: (T,) 39-class labels in both conventions
    and the boundary times (s) with the class of the phone each boundary starts."""

    def __init__(self, wav: Path, phn: Path):
        info = sf.info(str(wav))
        self.n_frames = num_frames(info.frames)
        rows = [line.split() for line in phn.read_text().splitlines() if line.strip()]
        starts = [int(r[0]) for r in rows]
        ends = [int(r[1]) for r in rows]
        timit = [r[2] for r in rows]
        native = list(timit)
        for i, p in enumerate(timit[:-1]):
            nxt = timit[i + 1]
            if p in RELEASE and (nxt == RELEASE[p] or nxt == AFFRICATE.get(p)):
                native[i] = nxt
        self.labels, self.boundaries = {}, {}
        for name, phones in (("timit39", timit), ("closure_as_stop", native)):
            folded = [fold(p) for p in phones]
            idx = [-1 if f is None else PHONES_39.index(f) for f in folded]
            self.labels[name] = label_frames(self.n_frames, starts, ends, idx, info.samplerate).numpy()
            bounds, previous = [], None
            for s, f in zip(starts, folded):
                if f is None:
                    continue
                if previous is not None and f != previous:
                    bounds.append((s / info.samplerate, CLASS_OF[f]))
                previous = f
            self.boundaries[name] = bounds


def aligned_edges(labels: np.ndarray) -> np.ndarray:
    change = np.flatnonzero(np.diff(labels) != 0) + 1
    return FIRST_EDGE_S + change * HOP_S


def score(aligned: dict, truth: dict, convention: str) -> dict:
    """Frame agreement and boundaries within 10 / 20 ms, overall and per class."""
    agree = {c: 0 for c in ["all", *CLASSES]}
    frames = dict.fromkeys(agree, 0)
    hits = {tol: dict.fromkeys(agree, 0) for tol in (10, 20)}
    bounds = dict.fromkeys(agree, 0)
    for utt, labels in aligned.items():
        t = truth[utt]
        ref = t.labels[convention]
        keep = ref >= 0
        same = labels[keep] == ref[keep]
        cls = np.array([CLASS_OF[PHONES_39[i]] for i in ref[keep]])
        agree["all"] += int(same.sum())
        frames["all"] += int(keep.sum())
        for c in CLASSES:
            agree[c] += int(same[cls == c].sum())
            frames[c] += int((cls == c).sum())
        edges = aligned_edges(labels)
        for when, c in t.boundaries[convention]:
            gap = np.abs(edges - when).min() if len(edges) else np.inf
            for key in ("all", c):
                bounds[key] += 1
                for tol in hits:
                    hits[tol][key] += int(gap <= tol / 1000 + 1e-9)
    out = {"frame_agreement": round(agree["all"] / max(1, frames["all"]), 4)}
    for tol in hits:
        out[f"boundaries_within_{tol}ms"] = round(hits[tol]["all"] / max(1, bounds["all"]), 4)
    out["per_class"] = {
        c: {
            "frame_agreement": round(agree[c] / max(1, frames[c]), 4),
            "boundaries_within_20ms": round(hits[20][c] / max(1, bounds[c]), 4),
            "frames": frames[c],
        }
        for c in CLASSES
    }
    out["frames"], out["boundaries"] = frames["all"], bounds["all"]
    return out


def copy_half(data: Path, speakers, dest: Path) -> dict:
    """MFA-layout copy (wav linked, sentence as .lab) of a half; {utt_id: HandLabels}."""
    truth = {}
    for spk in speakers:
        (dest / spk).mkdir(parents=True)
        for wav in sorted((data / spk).glob("*.wav")):
            text = wav.with_suffix(".txt").read_text().split(maxsplit=2)[2]
            os.symlink(wav, dest / spk / wav.name)
            (dest / spk / (wav.stem + ".lab")).write_text(text)
            truth[f"{spk}_{wav.stem}"] = HandLabels(wav, wav.with_suffix(".phn"))
    return truth


def run_aligner(src: Path, out: Path, aligner: str, **options) -> tuple[dict, dict]:
    """({utt_id: (T,) labels}, timing) of one import through the CLI's pipeline."""
    got = {}
    wall, cpu = time.perf_counter(), time.process_time()
    summary = import_phoneme(
        src,
        out,
        aligner=aligner,
        skip_bad=True,
        progress=False,
        on_round=lambda r, a: got.update({u: x.labels for u, x in a.items()}),
        **options,
    )
    timing = {
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "skipped": len(summary["skipped"]),
    }
    return got, timing


def sweep(src: Path, truth: dict) -> list[dict]:
    """The joint aligner's settings tried on one half, the frame scores computed once."""
    from hwml.align import pocketsphinx
    from hwml.align.acoustic import load_align_model, log_posteriors, shipped_phoneme_model
    from hwml.align.clip import pronunciations
    from hwml.audio.decode import load_audio
    from hwml.audio.features import mfcc39

    model, config = load_align_model(shipped_phoneme_model())
    names = list(config["class_names"])
    to_39 = np.array([PHONES_39.index(n) for n in names])
    items = []
    for lab in sorted(src.glob("*/*.lab")):
        wave = load_audio(lab.with_suffix(".wav"))
        words, prons = pronunciations(lab.read_text())
        ps = pocketsphinx.segments(wave.numpy(), words, prons)
        items.append((f"{lab.parent.name}_{lab.stem}", mfcc39(wave), prons, ps))
    logps = joint.scaled(log_posteriors(model, config, [f for _, f, _, _ in items]))
    rows = []
    for min_frames in (1, 2, 3):
        graphs = [viterbi.build_graph(p, names, min_frames=min_frames) for _, _, p, _ in items]
        for penalty in (2.0, 3.0, 4.0, 6.0, 10.0):
            for sil_cost in (0.0, 2.0, 5.0):
                got = {}
                for (utt, _, _, ps), logp, graph in zip(items, logps, graphs):
                    labels = pocketsphinx.frame_labels(ps[0], len(logp))
                    a = joint.align(logp, graph, labels, utt, penalty=penalty, sil_cost=sil_cost)
                    got[utt] = to_39[a.labels]
                s = score(got, truth, "timit39")
                row = {"min_frames": min_frames, "penalty": penalty, "sil_cost": sil_cost}
                row.update({k: s[k] for k in ("frame_agreement", "boundaries_within_20ms")})
                rows.append(row)
                print(json.dumps({"bench": "alignment_human", "sweep": True, **row}), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--halves", default="dev,test")
    ap.add_argument("--aligners", default=",".join(reversed(ALIGNERS)), help="hwml first: the baseline")
    ap.add_argument("--sweep", action="store_true", help="tune the joint aligner's settings on the dev half")
    ap.add_argument(
        "--average-with",
        type=Path,
        default=None,
        metavar="RUN",
        help="also `joint` with the shipped model's scores averaged with RUN's (e.g. make.sh's aligner: "
        "hwml train phoneme <built-in corpus>/libriphone --preset medium --max-seconds 180)",
    )
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if not (args.data / SPLIT["dev"][0]).is_dir():
        print(json.dumps({"bench": "alignment_human", "skipped": f"{args.data} is absent"}))
        return
    from hwml.align.acoustic import shipped_phoneme_model

    aligners = [(a, {}) for a in args.aligners.split(",")]
    if args.average_with:
        aligners.append(("joint", {"align_model": [shipped_phoneme_model(), args.average_with]}))
    with tempfile.TemporaryDirectory(prefix="hwml-bench-human-") as tmp:
        tmp = Path(tmp)
        for half in args.halves.split(","):
            truth = copy_half(args.data, SPLIT[half], tmp / half)
            if args.sweep and half == "dev":
                sweep(tmp / half, truth)
            base = None
            for k, (aligner, options) in enumerate(aligners):
                got, timing = run_aligner(tmp / half, tmp / f"out-{half}-{k}", aligner, **options)
                for convention in ("timit39", "closure_as_stop"):
                    s = score(got, truth, convention)
                    line = {"bench": "alignment_human", "half": half, "aligner": aligner, "convention": convention}
                    if options:
                        line["align_models"] = [str(m) for m in options["align_model"]]
                    line.update(s)
                    if convention == "timit39":
                        base = base or s
                        line["ratio_vs_hwml"] = round(s["frame_agreement"] / base["frame_agreement"], 3)
                    line.update(timing, speakers=list(SPLIT[half]), utterances=len(got))
                    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
