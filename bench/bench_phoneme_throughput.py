"""HW2 training throughput: the course's loop against hwml's engine, and against bare matmuls.

One process, same data (random (N, 429) frames, 39 classes), same model (the course's
429-1024-512-128-39 MLP), same optimiser (Adam 1e-4):
  course  the notes' TIMITDataset + DataLoader(batch 64, shuffle) + per-step .item() calls
  hwml    hwml.train.engine.train with the `simple` preset (batch 64), then at batch 512
  bare    the same layer shapes as pure torch.mm: the forward and backward matmuls of a step
          (no input gradient), the machine's ceiling for this model; hwml's frames/s as a
          fraction of it is the goal (>= 60 %)
Prints one JSON line per measurement and a summary line with the ratios.

    python bench/bench_phoneme_throughput.py [--quick] [--seconds S]
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
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwml.data.types import Dataset, FrameSet  # noqa: E402
from hwml.models.phoneme import MLP  # noqa: E402
from hwml.phoneme.task import make_task
from hwml.runs.folder import read_metrics  # noqa: E402
from hwml.train.engine import train  # noqa: E402

SHAPES = [(429, 1024), (1024, 512), (512, 128), (128, 39)]


class TIMITDataset(TorchDataset):
    """The course notes' dataset, verbatim in behaviour: one Python call per frame."""

    def __init__(self, X, y=None):
        self.data = torch.from_numpy(X).float()
        self.label = torch.LongTensor(y.astype(int)) if y is not None else None

    def __getitem__(self, idx):
        return (self.data[idx], self.label[idx]) if self.label is not None else self.data[idx]

    def __len__(self):
        return len(self.data)


def course_loop(X, y, seconds: float, batch: int = 64) -> dict:
    torch.manual_seed(0)
    model = MLP(429, 39, hidden=[1024, 512, 128], norm="none", dropout=0.0, input_norm=False, init="torch")
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loader = DataLoader(TIMITDataset(X, y), batch_size=batch, shuffle=True)
    model.train()
    frames, steps, train_acc, train_loss = 0, 0, 0.0, 0.0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for inputs, labels in loader:
            optimizer.zero_grad()
            outputs = model(inputs)
            batch_loss = criterion(outputs, labels)
            _, train_pred = torch.max(outputs, 1)
            batch_loss.backward()
            optimizer.step()
            train_acc += (train_pred.cpu() == labels.cpu()).sum().item()
            train_loss += batch_loss.item()
            frames += len(labels)
            steps += 1
            if time.perf_counter() - t0 >= seconds:
                break
    return frames, time.perf_counter() - t0


def hwml_loop(dataset: Dataset, seconds: float, batch: int, run_dir: Path) -> tuple[int, float]:
    task = make_task(dataset, "simple", {"batch_size": batch, "valid_fraction": 0.0}, seed=0)
    train(task, {"max_seconds": seconds, "max_steps": 10**9, "valid_every": 10**9, "log_every_s": 0.25}, run_dir)
    steps = [e for e in read_metrics(run_dir) if e["event"] == "step"]
    # steady state: from the first logged step on (model building and the first steps excluded)
    frames = sum(e["units_per_s"] * (e["elapsed"] - p["elapsed"]) for p, e in zip(steps, steps[1:]))
    return round(frames), steps[-1]["elapsed"] - steps[0]["elapsed"]


def bare_matmul(seconds: float, batch: int) -> dict:
    """The matmuls a training step needs, as plain torch.mm: forward (x W^T) and backward
    (dW = g^T x, and dX = g W for every layer but the first: the input needs no gradient)."""
    torch.manual_seed(0)
    ws = [torch.randn(o, i) * 0.01 for i, o in SHAPES]
    xs = [torch.randn(batch, i) for i, _ in SHAPES]
    gs = [torch.randn(batch, o) for _, o in SHAPES]
    steps = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for k, (w, x, g) in enumerate(zip(ws, xs, gs)):
            torch.mm(x, w.t())
            if k:
                torch.mm(g, w)
            torch.mm(g.t(), x)
        steps += 1
    return steps * batch, time.perf_counter() - t0


def flops_per_frame() -> int:
    """Forward + backward matmul FLOPs of one frame (no input gradient for the first layer)."""
    return 2 * sum((2 if k == 0 else 3) * i * o for k, (i, o) in enumerate(SHAPES))


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny data and short timings (for the test suite)")
    ap.add_argument("--seconds", type=float, default=None, help="seconds per contender, in all")
    ap.add_argument("--rounds", type=int, default=None, help="alternating slices per contender")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seconds = args.seconds or (0.8 if args.quick else 30.0)
    args.rounds = args.rounds or (1 if args.quick else 6)
    n = args.frames or (2000 if args.quick else 200_000)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 429), dtype=np.float32)
    y = rng.integers(0, 39, n).astype("<U2")  # the course's label strings
    dataset = Dataset(
        "phoneme",
        "timit_11",
        "synthetic",
        FrameSet(X, torch.from_numpy(y.astype(np.int64)), None, None, [str(i) for i in range(39)], 11),
    )
    results = []
    emit = lambda r: (results.append(r), print(json.dumps(r), flush=True))  # noqa: E731
    # short alternating slices, so that other load on the machine hits every contender alike
    benches = [
        ("course_loop", 64, lambda t, _: course_loop(X, y, t)),
        ("hwml_engine", 64, lambda t, d: hwml_loop(dataset, t, 64, d)),
        ("bare_matmul", 64, lambda t, _: bare_matmul(t, 64)),
        ("hwml_engine", 512, lambda t, d: hwml_loop(dataset, t, 512, d)),
        ("bare_matmul", 512, lambda t, _: bare_matmul(t, 512)),
    ]
    totals = {(name, batch): [0, 0.0] for name, batch, _ in benches}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, batch, measure in benches:
                frames, secs = measure(seconds / args.rounds, Path(tmp) / f"{name}{batch}-{r}")
                totals[name, batch][0] += frames
                totals[name, batch][1] += secs
    for (name, batch), (frames, secs) in totals.items():
        emit(
            {
                "bench": name,
                "batch": batch,
                "frames": frames,
                "seconds": round(secs, 2),
                "frames_per_s": round(frames / secs, 1),
                "gflops": round(frames * flops_per_frame() / secs / 1e9, 2),
            }
        )
    by = {(r["bench"], r["batch"]): r["frames_per_s"] for r in results}
    summary = {
        "bench": "summary",
        "threads": torch.get_num_threads(),
        "data_frames": n,
        "rounds": args.rounds,
        "hwml_vs_course_batch64": round(by["hwml_engine", 64] / by["course_loop", 64], 2),
        "hwml512_vs_course": round(by["hwml_engine", 512] / by["course_loop", 64], 2),
        "fraction_of_bare_matmul_batch64": round(by["hwml_engine", 64] / by["bare_matmul", 64], 3),
        "fraction_of_bare_matmul_batch512": round(by["hwml_engine", 512] / by["bare_matmul", 512], 3),
        "goal_fraction": 0.6,
    }
    emit(summary)
    return results


if __name__ == "__main__":
    main()
