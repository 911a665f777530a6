"""A harder, text-independent HW4 split of FSDD: train on some digits, test on the others.

A random split by recording makes FSDD (6 speakers x 10 digits x 50 takes) ~99.5 % easy for
every preset: test recordings repeat words the model has heard from the same speaker. Here a
speaker must be recognised saying digits never seen in training, from few training takes:
the training part holds `--per-digit` takes (seeded choice) of each `--train-digits` digit per
speaker, the labelled test part every take of the other digits. Both parts go through
`hwml.importers.import_speaker`, so features are exactly what `hwml import speaker` makes;
test labels are matched to training classes by speaker name. Prints one JSON line.

    python bench/fsdd_split.py OUT [--src ../shared/data/fsdd/recordings] [--train-digits 0 1 2 3 4]
                               [--per-digit 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hwml.data import load_dataset, write_hw4  # noqa: E402
from hwml.data.types import UtteranceSet  # noqa: E402
from hwml.errors import HwmlError  # noqa: E402
from hwml.importers import import_speaker  # noqa: E402
from hwml.importers.speakers import FSDD_NAME

DEFAULT_SRC = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "recordings"


def choose(src: Path, train_digits: set[str], per_digit: int, seed: int) -> tuple[list[Path], list[Path]]:
    """(train, test) recordings: per speaker and training digit `per_digit` seeded takes; test:
    every take of the other digits."""
    groups: dict[tuple[str, str], list[Path]] = {}
    for p in sorted(src.iterdir()):
        m = FSDD_NAME.match(p.stem)
        if m and p.suffix.lower() == ".wav":
            groups.setdefault((m[1], m[2]), []).append(p)
    if not groups:
        raise HwmlError(f"{src}: no FSDD recordings ({{digit}}_{{speaker}}_{{n}}.wav)")
    train, test = [], []
    for (digit, speaker), paths in sorted(groups.items()):
        if digit in train_digits:
            train += random.Random(f"{seed}:{speaker}:{digit}").sample(paths, min(per_digit, len(paths)))
        else:
            test += paths
    return train, test


def import_part(paths: list[Path], out: Path) -> UtteranceSet:
    """Import recordings through hwml's importer (symlinked into a flat FSDD-style folder)."""
    stage = out.parent / f"{out.name}-src"
    stage.mkdir(parents=True)
    for p in paths:
        os.symlink(p.resolve(), stage / p.name)
    import_speaker(stage, out, progress=False)
    return load_dataset(out).train


def relabel(utts: UtteranceSet, names: list[str]) -> UtteranceSet:
    """Labels of `utts` as indices into `names`, matched by speaker name."""
    index = {n: i for i, n in enumerate(names)}
    labels = torch.tensor([index.get(utts.class_names[y], -1) for y in utts.labels.tolist()])
    return UtteranceSet(utts.feats, utts.offsets, utts.utt_ids, labels, list(names))


def build(
    out: Path, src: Path = DEFAULT_SRC, train_digits=("0", "1", "2", "3", "4"), per_digit: int = 5, seed: int = 0
) -> dict:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise HwmlError(f"{out}: already exists and is not an empty folder")
    train_paths, test_paths = choose(Path(src), set(map(str, train_digits)), per_digit, seed)
    with tempfile.TemporaryDirectory() as tmp:
        train = import_part(train_paths, Path(tmp) / "train")
        test = relabel(import_part(test_paths, Path(tmp) / "test"), train.class_names)
        write_hw4(out, train, test)
    return {
        "bench": "fsdd_split",
        "out": str(out),
        "speakers": len(train.class_names),
        "train_digits": sorted(map(str, train_digits)),
        "per_digit": per_digit,
        "seed": seed,
        "train_utterances": len(train),
        "test_utterances": int((test.labels >= 0).sum()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="new HW4 folder (train + labelled test part)")
    p.add_argument("--src", type=Path, default=DEFAULT_SRC, help="FSDD recordings folder")
    p.add_argument("--train-digits", nargs="+", default=["0", "1", "2", "3", "4"])
    p.add_argument("--per-digit", type=int, default=5, help="training takes per speaker and digit")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    print(json.dumps(build(args.out, args.src, args.train_digits, args.per_digit, args.seed)))


if __name__ == "__main__":
    main()
