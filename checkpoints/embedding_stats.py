"""Compute a speaker run's embedding statistics from the speakers it was trained on.

Writes RUN/embedding_stats.safetensors + RUN/embedding_stats.json (hwml.speaker.scoring): the mean
embedding of the training speakers, a shrunk whitening matrix, and every training speaker's mean
embedding as the cohort of score normalisation, tagged with the fingerprint of RUN's weights.
DATA is the HW4 folder RUN was trained on, or speaker audio in one folder per speaker (imported
into a temporary folder first); only the speakers RUN knows by name take part. Thresholds already
calibrated in an older embedding_stats.json of the same weights are kept.

    python checkpoints/embedding_stats.py checkpoints/speaker ../shared/data/speechocean762/wav
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hwml.data import load_dataset  # noqa: E402
from hwml.errors import HwmlError  # noqa: E402
from hwml.speaker.identify import open_model  # noqa: E402
from hwml.speaker.inference import per_utterance  # noqa: E402
from hwml.speaker.scoring import fit_stats, load_stats, save_stats  # noqa: E402


def training_utterances(data: Path, tmp: Path):
    """The labelled UtteranceSet of DATA: an HW4 folder as it is, audio imported first."""
    try:
        return load_dataset(data, need_train=True).train
    except HwmlError:
        from hwml.importers import import_speaker

        import_speaker(data, tmp / "hw4", progress=False)
        return load_dataset(tmp / "hw4", need_train=True).train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("data", type=Path)
    args = p.parse_args()
    started = time.perf_counter()
    sm = open_model(args.run)
    known = {n: i for i, n in enumerate(sm.config.get("class_names") or [])}
    with tempfile.TemporaryDirectory() as tmp:
        utts = training_utterances(args.data, Path(tmp))
    names = [utts.class_names[y] if y >= 0 else None for y in utts.labels.tolist()]
    keep = torch.tensor([i for i, n in enumerate(names) if n in known], dtype=torch.long)
    if len(keep) == 0:
        raise SystemExit(f"{args.data}: none of its speakers is one that {args.run} was trained on")
    labels = torch.tensor([known[names[i]] for i in keep.tolist()])
    emb = per_utterance(sm.model.embed, sm.model, utts, sm.config, sm.model.emb_dim, keep)
    old = load_stats(args.run) if (args.run / "embedding_stats.json").is_file() else None
    kept = {k: v for k, v in (old.meta if old else {}).items() if k.startswith("thresholds")}
    if old is not None and old.meta.get("model_id") != sm.fingerprint:
        kept = {}
    stats = fit_stats(
        emb,
        labels,
        meta={
            "model_id": sm.fingerprint,
            "source": "training speakers",
            "data": args.data.parent.name if args.data.name == "wav" else args.data.name,
            **kept,
        },
    )
    save_stats(args.run, stats)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "run": str(args.run),
                "speakers": stats.meta["n_speakers"],
                "utterances": stats.meta["n_utterances"],
                "model_id": sm.fingerprint,
                "wall_s": round(time.perf_counter() - started, 1),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
