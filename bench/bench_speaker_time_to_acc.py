"""HW4 time to accuracy: the four presets at one equal training budget, scored on held-out data.

Each preset trains through hwml's engine for the same budget of CPU seconds (process CPU time,
one torch thread: on a shared machine other processes then cannot skew the comparison; on an
idle 2-core box it is wall-clock time), its schedule annealing over that budget. At every
validation the current weights are also scored on the labelled test split (that scoring is not
charged to the budget), which gives each preset's accuracy-over-time curve. Each preset keeps
its own settings except that the budget alone ends training (no epoch cap, no early stopping)
and validations are spaced to about `--valid-points` per budget. Prints one JSON line
per preset (final held-out accuracy of the best weights, steps, curve) and a summary line: the
seconds `boss` needs to reach the accuracy `simple` ends with.

    python bench/bench_speaker_time_to_acc.py [--quick] [--budget S] [--data HW4_DIR] [--seeds 0 1]

DATA: an HW4 folder with a labelled test part (test_labels.csv), e.g. an `hwml import speaker
--test-fraction` output or the text-independent FSDD split of `bench/fsdd_split.py`; default:
the built-in corpus's `speaker/`. `test_acc` scores the best-validation weights (what a run
saves), `last_test_acc` the weights at the end of the budget.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hwml.data import load_dataset, write_hw4  # noqa: E402
from hwml.data.types import UtteranceSet  # noqa: E402
from hwml.models import build_model  # noqa: E402
from hwml.runs.checkpoint import load_run  # noqa: E402
from hwml.speaker.predict import predict_logits  # noqa: E402
from hwml.speaker.presets import PRESETS
from hwml.speaker.task import make_task
from hwml.train import engine  # noqa: E402


class CpuClock:
    """Stands in for the engine's `time` module: perf_counter() = this process's CPU seconds,
    minus the seconds the benchmark spends scoring the test split."""

    def __init__(self):
        self.excluded = 0.0

    def perf_counter(self) -> float:
        return time.process_time() - self.excluded


def accuracy(model, config, split: UtteranceSet) -> float:
    pred = predict_logits(model, config, split).argmax(-1)
    keep = split.labels >= 0
    return float((pred[keep] == split.labels[keep]).float().mean())


def run_preset(
    data: Path, preset: str, budget: float, seed: int, out: Path, clock: CpuClock, valid_points: int, overrides: dict
) -> dict:
    ds = load_dataset(data)
    task = make_task(ds, preset, dict(overrides), seed=seed)
    seen = {}
    loss = task.loss

    def loss_keeping_model(model, batch):  # the engine hands the model to the task: keep it
        seen["model"] = model
        return loss(model, batch)

    task.loss = loss_keeping_model
    # calibrate validation spacing: about `valid_points` validations per budget for every preset
    probe = make_task(ds, preset, dict(overrides), seed=seed)
    torch.manual_seed(seed)
    model = build_model(probe.model_spec())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(seed)
    start = time.process_time()
    n_probe = 0
    while time.process_time() - start < min(3.0, budget / 20) or n_probe < 2:
        loss_value, _ = probe.loss(model, probe.train_batch(gen, "cpu"))
        opt.zero_grad()
        loss_value.backward()
        opt.step()
        n_probe += 1
    steps_per_s = n_probe / (time.process_time() - start)
    valid_every = max(5, int(steps_per_s * budget / valid_points))
    task.settings["valid_every"] = valid_every
    curve = []

    def on_event(event):
        if event["event"] == "valid" and "model" in seen:
            t0 = time.process_time()
            curve.append([event["elapsed"], round(accuracy(seen["model"], {"settings": task.settings}, ds.test), 4)])
            clock.excluded += time.process_time() - t0

    run_dir = out / f"{preset}-s{seed}"
    end = engine.train(
        task, {"max_seconds": budget, "seed": seed, "patience": 0, "max_epochs": 10**6}, run_dir, callbacks=[on_event]
    )
    model, config = load_run(run_dir)
    return {
        "bench": "speaker_time_to_acc",
        "preset": preset,
        "seed": seed,
        "budget_s": budget,
        "clock": "process_cpu_1_thread",
        "steps": end["step"],
        "steps_per_s": round(end["step"] / budget, 2),
        "valid_every": valid_every,
        "n_params": sum(p.numel() for p in model.parameters()),
        "best_valid_acc": end["best_valid_acc"],
        "test_acc": round(accuracy(model, config, ds.test), 4),
        "last_test_acc": curve[-1][1] if curve else None,
        "n_test": int((ds.test.labels >= 0).sum()),
        "curve": curve,
    }


def seconds_to(curve: list, target: float) -> float | None:
    return next((t for t, acc in curve if acc >= target), None)


def synthetic_folder(root: Path) -> Path:
    """A small learnable HW4 folder (speaker = spectral profile + noise) for --quick."""
    gen = torch.Generator().manual_seed(0)
    profiles = torch.randn(6, 40, generator=gen) * 2

    def part(per):
        feats, lengths, labels = [], [], []
        for s in range(6):
            for _ in range(per):
                n = int(torch.randint(40, 160, (1,), generator=gen))
                feats.append(profiles[s] + torch.randn(n, 40, generator=gen) * 2 - 8)
                lengths.append(n)
                labels.append(s)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(torch.tensor(lengths), 0)])
        return UtteranceSet(torch.cat(feats), offsets, None, torch.tensor(labels), [f"s{i}" for i in range(6)])

    return write_hw4(root, part(12), part(4))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="seconds, on a tiny synthetic set (the test suite)")
    p.add_argument("--budget", type=float, default=240.0, help="CPU seconds of training per preset")
    p.add_argument("--data", type=Path, default=None, help="HW4 folder with a labelled test part")
    p.add_argument("--corpus-size", default="default", help="built-in corpus size when --data is not given")
    p.add_argument("--presets", nargs="+", default=list(PRESETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--valid-points", type=int, default=20)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override for every preset")
    p.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    args = p.parse_args()
    torch.set_num_threads(1)
    clock = CpuClock()
    engine.time = clock  # budgets in CPU seconds (see CpuClock)
    overrides = {
        k: json.loads(v) if v[:1] in "0123456789-[{tf" else v for k, v in (item.split("=", 1) for item in args.set)
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        if args.quick:
            data, budget = synthetic_folder(Path(tmp) / "quick"), 0.5
            overrides = {"d_model": 32, "heads": 2, "ff_dim": 64, "emb_dim": 0, **overrides}
        else:
            from hwml.corpus import ensure_corpus

            data = args.data or ensure_corpus(size=args.corpus_size) / "speaker"
            budget = args.budget
        results = []
        for seed in args.seeds:
            for preset in args.presets:
                r = run_preset(data, preset, budget, seed, out, clock, args.valid_points, overrides)
                r["data"] = str(data)
                results.append(r)
                print(json.dumps(r), flush=True)
        summary = {"bench": "speaker_time_to_acc_summary", "data": str(data), "budget_s": budget, "seeds": args.seeds}
        for preset in args.presets:
            for key in ("test_acc", "last_test_acc"):
                accs = [r[key] for r in results if r["preset"] == preset and r[key] is not None]
                summary[f"{preset}_{key}"] = round(sum(accs) / len(accs), 4) if accs else None
        if {"simple", "boss"} <= set(args.presets):
            times = []
            for seed in args.seeds:
                by = {r["preset"]: r for r in results if r["seed"] == seed}
                times.append(seconds_to(by["boss"]["curve"], by["simple"]["test_acc"]))
            summary["boss_seconds_to_simple_final"] = times
            summary["simple_seconds"] = budget
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
