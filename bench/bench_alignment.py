"""Forced-alignment quality on the built-in corpus, whose eSpeak phone times are exact.

Writes built-in corpus utterances as a transcribed corpus (audio + `.lab` words, no phone
labels: `hwml.corpus.transcribed`), imports it with `import_phoneme` (words -> cmudict phones ->
Viterbi over the shipped model's posteriors, then `--rounds` of re-training and re-aligning) and
scores every round's alignment against eSpeak's own phone times:

- frame_agreement: share of frames whose aligned phone is eSpeak's (this also counts where
  cmudict's pronunciation differs from eSpeak's: a reduced vowel, a dropped or added phone);
- boundaries_within_20ms: share of eSpeak's phone boundaries with an aligned boundary within 20 ms;
- the same two for Viterbi given eSpeak's own phone sequence (`oracle_sequence`, round 0 model):
  the timing quality alone, without the dictionary's part.

The default seed (1) gives sentences and speaking styles the shipped model (trained on seed 0)
never heard. Prints one JSON line per round and one summary line.

    python bench/bench_alignment.py [--quick] [--size small|default] [--per-speaker N] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hwml.align import viterbi  # noqa: E402
from hwml.align.acoustic import load_align_model, log_posteriors, shipped_phoneme_model  # noqa: E402
from hwml.audio.decode import read_audio
from hwml.audio.features import featurize
from hwml.audio.frames import label_frames
from hwml.corpus.transcribed import write_transcribed  # noqa: E402
from hwml.data.phones import PHONES_39  # noqa: E402
from hwml.importers import import_phoneme, read_phn  # noqa: E402
from hwml.importers.transcribed import find_transcribed

TOLERANCE_S = 0.020


class Truth:
    """eSpeak's phone segments of one utterance: frame labels, boundary times, phone sequence."""

    def __init__(self, wav: Path, phn: Path):
        _, sr = read_audio(wav)
        self.feats = featurize(wav)
        starts, ends, labels = read_phn(phn)
        self.labels = label_frames(len(self.feats), starts, ends, labels, sr).numpy()
        change = [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
        self.boundaries = np.array([starts[i] / sr for i in change])
        self.sequence = [PHONES_39[labels[i]] for i in [0, *change]]


def boundary_hits(truth_s: np.ndarray, alignment: viterbi.Alignment) -> int:
    """How many true boundaries have an aligned phone boundary within TOLERANCE_S (frame edges
    lie halfway between frame centres)."""
    edges = np.array([(a - 0.5) * 0.01 + 0.0125 for a, _, _ in alignment.phones[1:]])
    if not len(truth_s) or not len(edges):
        return 0
    return int((np.abs(truth_s[:, None] - edges[None, :]).min(1) <= TOLERANCE_S + 1e-9).sum())


def score(alignments: dict, truths: dict) -> dict:
    agree = frames = hits = bounds = 0
    for utt, a in alignments.items():
        t = truths[utt]
        agree += int((a.labels == t.labels).sum())
        frames += len(t.labels)
        hits += boundary_hits(t.boundaries, a)
        bounds += len(t.boundaries)
    return {
        "frame_agreement": round(agree / frames, 4),
        "boundaries_within_20ms": round(hits / bounds, 4),
        "utterances": len(alignments),
        "frames": frames,
    }


def oracle(truths: dict, model_dir: Path) -> dict:
    """Viterbi given eSpeak's own phone sequence: timing alone."""
    model, config = load_align_model(model_dir)
    utts = sorted(truths)
    logps = log_posteriors(model, config, [truths[u].feats for u in utts])
    out = {}
    started = time.perf_counter()
    for u, logp in zip(utts, logps):
        graph = viterbi.build_graph(
            [[tuple((p,) for p in truths[u].sequence)]], config["class_names"], optional_sil=False, closures=False
        )
        out[u] = viterbi.align(logp, graph, source=u)
    result = score(out, truths)
    result["viterbi_utterances_per_s"] = round(len(utts) / (time.perf_counter() - started), 1)
    argmax = np.concatenate([lp.argmax(1) for lp in logps]) == np.concatenate([truths[u].labels for u in utts])
    result["model_frame_accuracy"] = round(float(argmax.mean()), 4)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 speakers x 1 utterance, 1 round of 3 s")
    ap.add_argument("--size", choices=("small", "default"), default="default")
    ap.add_argument("--per-speaker", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--round-seconds", type=float, default=None)
    ap.add_argument("--align-model", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--aligner", default=None, help="joint (default), pocketsphinx or hwml (hwml.align.aligners)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.size, args.per_speaker, args.rounds, args.round_seconds = "small", 1, 1, 3.0
    n_speakers = 4 if args.quick else None
    model_dir = args.align_model or shipped_phoneme_model()
    results = []
    with tempfile.TemporaryDirectory(prefix="hwml-bench-align-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        write_transcribed(tmp / "corpus", args.size, args.seed, per_speaker=args.per_speaker, n_speakers=n_speakers)
        synth_s = time.perf_counter() - t0
        src = tmp / "corpus" / "audio"
        utts, _ = find_transcribed(src)
        truths = {
            u.utt_id: Truth(u.audio, tmp / "corpus" / "truth" / u.audio.parent.name / (u.audio.stem + ".phn"))
            for u in utts
        }
        started = time.perf_counter()

        def on_round(r: int, alignments: dict) -> None:
            line = {
                "bench": "alignment",
                "round": r,
                **score(alignments, truths),
                "elapsed_s": round(time.perf_counter() - started, 1),
            }
            results.append(line)
            print(json.dumps(line), flush=True)

        summary = import_phoneme(
            src,
            tmp / "out",
            lexicon_file=tmp / "corpus" / "lexicon.txt",
            align_model=model_dir,
            aligner=args.aligner,
            rounds=args.rounds,
            round_seconds=args.round_seconds,
            progress=False,
            on_round=on_round,
        )
        line = {"bench": "alignment", "oracle_sequence": True, "round": 0, **oracle(truths, model_dir)}
        print(json.dumps(line), flush=True)
    print(
        json.dumps(
            {
                "bench": "alignment",
                "summary": True,
                "corpus": f"{args.size} seed {args.seed}",
                "utterances": len(utts),
                "audio_seconds": summary["audio_seconds"],
                "align_model": str(model_dir),
                "round_seconds": summary["alignment"]["rounds"][-1].get("seconds"),
                "threads": args.threads,
                "frame_agreement_by_round": [r["frame_agreement"] for r in results],
                "boundaries_within_20ms_by_round": [r["boundaries_within_20ms"] for r in results],
                "oracle_sequence": {k: line[k] for k in ("frame_agreement", "boundaries_within_20ms")},
                "model_frame_accuracy": line["model_frame_accuracy"],
                "align_utterances_per_s": summary["align_utterances_per_s"],
                "viterbi_utterances_per_s": line["viterbi_utterances_per_s"],
                "synthesis_s": round(synth_s, 1),
                "import_s": summary["seconds"],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
