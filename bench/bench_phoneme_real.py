"""HW2 on real voices: a little real speech, speakers never heard in training as the test.

The issue's setting: a student has a dozen real speakers with frame labels and tests on four
others. From an aligned libriphone folder of real speech (`hwml import phoneme` on transcribed
audio, e.g. speechocean762; utterance ids `<speaker>_<utt>`), each seed draws `--train-speakers`
speakers to train on and `--test-speakers` others to test on; each preset then trains from random
weights for `--budget` CPU seconds (one torch thread, so other processes cannot skew it), and
each `--init RUN` is fine-tuned for the same budget (hwml.train.finetune's defaults). Scores are frame
accuracy on the test speakers. `--shipped RUN` also scores a model as it is, without training.
Prints one JSON line per run and a summary.

    python bench/bench_phoneme_real.py --data ALIGNED [--presets simple medium strong boss]
        [--init checkpoints/phoneme] [--shipped checkpoints/phoneme] [--budget 120] [--seeds 0 1 2]
    python bench/bench_phoneme_real.py --quick      # seconds, on the small built-in corpus

`--part test` draws all speakers from DATA's held-out test part: with the folder `checkpoints/make.sh`
aligned (KEEP=DIR keeps it), those are speakers the shipped model never heard, so fine-tuning it
(`--init checkpoints/phoneme`) and scoring it as it is (`--shipped`) stay honest.

Labels of forced-aligned speech come from the aligner, not from a human: they measure agreement
with the aligner's phones and times, a proxy for the hand-labelled test the issue describes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hwml import api  # noqa: E402
from hwml.data import load_dataset, write_libriphone  # noqa: E402
from hwml.phoneme.batches import subset  # noqa: E402
from hwml.phoneme.split import speaker_of


def speaker_split(data: Path, n_train: int, n_test: int, seed: int, out: Path, part: str = "train") -> dict:
    """A libriphone folder: n_train speakers' utterances to train on, n_test others' as the labelled test,
    all drawn from `part` of DATA (test: speakers a model trained on DATA's train part never heard)."""
    frames = getattr(load_dataset(data), part)
    speakers = sorted({speaker_of(u) for u in frames.utt_ids})
    if n_train + n_test > len(speakers):
        raise SystemExit(f"{data}: {len(speakers)} speakers, fewer than {n_train} + {n_test}")
    order = [speakers[i] for i in torch.randperm(len(speakers), generator=torch.Generator().manual_seed(seed))]
    train_spk, test_spk = set(order[:n_train]), set(order[n_train : n_train + n_test])
    pick = lambda chosen: [i for i, u in enumerate(frames.utt_ids) if speaker_of(u) in chosen]  # noqa: E731
    write_libriphone(out, subset(frames, utts=pick(train_spk)), subset(frames, utts=pick(test_spk)))
    return {"train_speakers": sorted(train_spk), "test_speakers": sorted(test_spk)}


def test_accuracy(run: Path, data: Path) -> float:
    return round(api.evaluate_run(run, data, split="test")["accuracy"], 4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, help="aligned libriphone folder of real speech")
    p.add_argument("--presets", nargs="*", default=["simple", "medium", "strong", "boss"])
    p.add_argument("--init", nargs="*", type=Path, default=[], help="runs to fine-tune from")
    p.add_argument("--shipped", nargs="*", type=Path, default=[], help="runs to score as they are")
    p.add_argument("--budget", type=float, default=120.0, help="CPU seconds of training per run")
    p.add_argument("--train-speakers", type=int, default=12)
    p.add_argument("--test-speakers", type=int, default=4)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override for every run")
    p.add_argument(
        "--part",
        choices=("train", "test"),
        default="train",
        help="draw the speakers from DATA's train or (labelled) test part",
    )
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    overrides = {
        k: json.loads(v) if v[:1] in "0123456789-[{tf" else v for k, v in (item.split("=", 1) for item in args.set)
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = args.data
        if args.quick:
            from hwml.corpus import ensure_corpus

            data = ensure_corpus(root=tmp / "corpus", size="small") / "libriphone"
            args.budget, args.train_speakers, args.test_speakers = 3.0, 8, 4
            args.presets = args.presets[:1]
        results = []
        for seed in args.seeds:
            folder = tmp / f"split{seed}"
            split = speaker_split(data, args.train_speakers, args.test_speakers, seed, folder, args.part)
            runs = [(f"scratch:{preset}", dict(preset=preset)) for preset in args.presets]
            runs += [(f"finetune:{init}", dict(init=init)) for init in args.init]
            for name, how in runs:
                out = tmp / f"{name.replace('/', '_').replace(':', '-')}-{seed}"
                end = api.train_run(
                    "phoneme",
                    folder,
                    out,
                    overrides={"clock": "cpu", **overrides},
                    max_seconds=args.budget,
                    seed=seed,
                    **how,
                )
                r = {
                    "bench": "phoneme_real",
                    "run": name,
                    "seed": seed,
                    "budget_cpu_s": args.budget,
                    "steps": end.get("step"),
                    "test_acc": test_accuracy(out, folder),
                }
                results.append(r)
                print(json.dumps(r), flush=True)
            for run in args.shipped:
                r = {
                    "bench": "phoneme_real",
                    "run": f"as-is:{run}",
                    "seed": seed,
                    "test_acc": test_accuracy(run, folder),
                }
                results.append(r)
                print(json.dumps(r), flush=True)
            print(json.dumps({"bench": "phoneme_real_split", "seed": seed, **split}), flush=True)
        summary = {
            "bench": "phoneme_real_summary",
            "data": str(data),
            "seeds": args.seeds,
            "train_speakers": args.train_speakers,
            "test_speakers": args.test_speakers,
        }
        for name in dict.fromkeys(r["run"] for r in results):
            accs = [r["test_acc"] for r in results if r["run"] == name]
            summary[name] = {
                "mean": round(sum(accs) / len(accs), 4),
                "min": min(accs),
                "max": max(accs),
                "runs": len(accs),
            }
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
