"""HW2 time to accuracy: how fast hwml's default preset reaches what the course recipe reaches.

`simple` (the course sample: batch 64, Adam 1e-4) trains 10 epochs on the built-in corpus's
timit_11 folder (the 2021 format the sample was written for), validating once an epoch; its
best validation accuracy is the target and the time it first got there is its time. Then the
default preset (`medium`) trains on the same split, validating every `--valid-every` steps,
and stops the moment it reaches the target. Goal: >= 5x faster. Both times include their
validations. Prints JSON lines (one per run, then a summary).

    python bench/bench_phoneme_time_to_acc.py [--quick] [--data DIR] [--preset medium]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwml.audio.frames import stack_context  # noqa: E402
from hwml.data import load_dataset  # noqa: E402
from hwml.data.types import Dataset, FrameSet  # noqa: E402
from hwml.phoneme.task import make_task
from hwml.train.engine import train  # noqa: E402


def synthetic_timit(n_utts: int = 120, seed: int = 0) -> Dataset:
    """Stand-in data for --quick: phone segments of noisy class means, stacked 11 frames."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(39, 39, generator=g)
    rows, labels = [], []
    for _ in range(n_utts):
        phones = torch.randint(39, (int(torch.randint(5, 12, (1,), generator=g)),), generator=g)
        y = torch.repeat_interleave(phones, torch.randint(3, 10, (len(phones),), generator=g))
        rows.append(stack_context(means[y] * 0.6 + torch.randn(len(y), 39, generator=g), 11))
        labels.append(y)
    return Dataset(
        "phoneme",
        "timit_11",
        "synthetic",
        FrameSet(torch.cat(rows).numpy(), torch.cat(labels), None, None, [str(i) for i in range(39)], 11),
    )


def run(dataset, preset, overrides, run_dir, target=None, max_seconds=None, clock="wall") -> dict:
    """Train; with a target, stop at the first validation that reaches it."""
    stop, valids = threading.Event(), []

    def watch(event):
        if event["event"] == "valid":
            valids.append(event)
            if target is not None and event["valid_acc"] >= target:
                stop.set()

    task = make_task(dataset, preset, overrides, seed=0)
    out = train(task, {"max_seconds": max_seconds, "clock": clock}, run_dir, callbacks=[watch], stop_event=stop)
    best = max(valids, key=lambda v: v["valid_acc"])
    goal = target if target is not None else best["valid_acc"]
    hit = next((v for v in valids if v["valid_acc"] >= goal), None)
    return {
        "bench": "time_to_acc",
        "preset": preset,
        "steps": out["step"],
        "epochs": round(out["step"] / task.steps_per_epoch, 2),
        "best_valid_acc": round(best["valid_acc"], 4),
        "target": round(goal, 4),
        "reached": hit is not None,
        "seconds_to_target": hit["elapsed"] if hit else None,
        "seconds_total": out["elapsed"],
        "threads": torch.get_num_threads(),
    }


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="synthetic data, 2 epochs (for the test suite)")
    ap.add_argument("--data", help="a timit_11 or libriphone folder (default: the built-in corpus's timit_11)")
    ap.add_argument("--size", default="default", help="built-in corpus size")
    ap.add_argument("--preset", default="medium", help="the preset raced against simple")
    ap.add_argument("--epochs", type=int, default=None, help="simple's epochs (default 10; 2 with --quick)")
    ap.add_argument("--valid-every", type=int, default=50)
    ap.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "cpu"],
        help="seconds of wall clock, or of this process's CPU time (fairer on a busy machine)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    epochs = args.epochs or (2 if args.quick else 10)
    if args.quick:
        dataset = synthetic_timit(n_utts=50)
    elif args.data:
        dataset = load_dataset(args.data)
    else:
        from hwml.corpus import ensure_corpus

        dataset = load_dataset(Path(ensure_corpus(size=args.size)) / "timit_11")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        simple = run(dataset, "simple", {"max_epochs": epochs, "patience": 0}, Path(tmp) / "simple", clock=args.clock)
        simple["data"] = str(dataset.root)
        results.append(simple)
        print(json.dumps(simple), flush=True)
        race = {"valid_every": args.valid_every, "patience": 0}
        if args.quick:  # a smoke test of the procedure, not a measurement: a small model
            race.update(hidden=[64, 64], warmup_steps=10, valid_every=10)
        fast = run(
            dataset,
            args.preset,
            race,
            Path(tmp) / args.preset,
            target=simple["best_valid_acc"],
            max_seconds=simple["seconds_to_target"] * 2,
            clock=args.clock,
        )
        results.append(fast)
        print(json.dumps(fast), flush=True)
    speedup = simple["seconds_to_target"] / fast["seconds_to_target"] if fast["reached"] else None
    summary = {
        "bench": "summary",
        "data": str(dataset.root),
        "simple_epochs": epochs,
        "target_acc": simple["best_valid_acc"],
        "simple_seconds": simple["seconds_to_target"],
        f"{args.preset}_seconds": fast["seconds_to_target"],
        "speedup": round(speedup, 2) if speedup else None,
        "goal_speedup": 5.0,
        "clock": args.clock,
        "threads": torch.get_num_threads(),
    }
    results.append(summary)
    print(json.dumps(summary), flush=True)
    return results


if __name__ == "__main__":
    main()
