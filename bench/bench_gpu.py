"""GPU training throughput: both tasks with mixed precision (precision=auto) against fp32, and DDP on all visible GPUs.

Writes course-shaped synthetic data (a libriphone folder, an HW4 folder) to a temp dir, trains
each (task, preset) for --steps steps with `precision` fp32 and auto (bf16, or fp16 + GradScaler without
native bf16; the one used is printed, read from config.json) on one GPU, then with
`torchrun --nproc-per-node <GPUs>` (NCCL, the same per-process batch), and prints JSON lines:
training units/s (the median of the engine's step events after the first 20%: frames for HW2,
utterances for HW4) and the ratios mixed/fp32 and N GPUs / 1 GPU (scaling efficiency = that / N).

    python bench/bench_gpu.py [--steps 300] [--quick]        # needs CUDA (bench/gpu_check.sh)
    python bench/bench_gpu.py --device cpu --quick           # a dry run of the same code on CPU
                                                             # (2 gloo processes; no ratio worth reading)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CASES = [("phoneme", "medium"), ("phoneme", "boss"), ("speaker", "medium"), ("speaker", "boss")]
DDP_CASES = [("phoneme", "medium"), ("speaker", "boss")]


def write_data(root: Path, quick: bool) -> dict:
    """A libriphone folder (41 classes) and an HW4 folder (course-like lengths)."""
    from bench_speaker_throughput import course_lengths

    from hwml.data import write_hw4, write_libriphone
    from hwml.data.types import FrameSet, UtteranceSet

    gen = torch.Generator().manual_seed(0)
    n_utts = 200 if quick else 2000
    lengths = torch.randint(200, 1200, (n_utts,), generator=gen)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)])
    labels = torch.randint(41, (int(offsets[-1]),), generator=gen)
    means = torch.randn(41, 39, generator=gen)
    frames = FrameSet(
        means[labels] + torch.randn(len(labels), 39, generator=gen),
        labels,
        offsets,
        [f"{u % 50}-0-{u:05d}" for u in range(n_utts)],
        [str(i) for i in range(41)],
        1,
    )
    write_libriphone(root / "hw2", frames)
    n_spk, per = (20, 10) if quick else (100, 20)
    lengths = course_lengths(n_spk * per, gen)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)])
    spk = torch.arange(n_spk * per) % n_spk
    profiles = torch.randn(n_spk, 40, generator=gen) * 2
    feats = profiles[torch.repeat_interleave(spk, lengths)] + torch.randn(int(offsets[-1]), 40, generator=gen) - 8
    write_hw4(
        root / "hw4",
        UtteranceSet(feats, offsets, [f"u{i}" for i in range(len(spk))], spk, [f"id{10000 + i}" for i in range(n_spk)]),
    )
    return {"phoneme": root / "hw2", "speaker": root / "hw4"}


def units_per_s(run_dir: Path) -> float:
    from hwml.runs.folder import read_metrics

    speeds = [e["units_per_s"] for e in read_metrics(run_dir) if e["event"] == "step"]
    return statistics.median(speeds[len(speeds) // 5 :] or speeds)


def settings(steps: int, precision: str) -> list[str]:
    pairs = {
        "precision": precision,
        "log_every": max(1, steps // 20),
        "log_every_s": 0,
        "valid_every": 10 * steps,
        "valid_fraction": 0.02,
        "patience": 0,
    }
    return [a for k, v in pairs.items() for a in ("--set", f"{k}={json.dumps(v)}")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(
    kind: str, preset: str, data: Path, out: Path, steps: int, precision: str, device: str, nproc: int = 1
) -> float:
    args = [
        "train",
        kind,
        str(data),
        "--out",
        str(out),
        "--preset",
        preset,
        "--max-steps",
        str(steps),
        "--device",
        device,
        "--quiet",
        *settings(steps, precision),
    ]
    if nproc > 1:
        cmd = [
            str(Path(sys.executable).with_name("torchrun")),
            "--nnodes",
            "1",
            "--nproc-per-node",
            str(nproc),
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(free_port()),
            "-m",
            "hwml",
            *args,
        ]
    else:
        cmd = [sys.executable, "-m", "hwml", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), **({"OMP_NUM_THREADS": "1"} if device == "cpu" else {})}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"bench_gpu: {' '.join(cmd[:6])} ... failed:\n{done.stderr[-3000:]}")
    return units_per_s(out)


def used_precision(run: Path) -> str:
    """The precision a run trained in, as the engine recorded it in config.json (precision=auto
    picks bf16 where the GPU has it natively, else fp16 with a GradScaler)."""
    return json.loads((run / "config.json").read_text(encoding="utf-8")).get("precision", "unrecorded")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="small data and 40 steps")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    args = ap.parse_args()
    steps = 40 if args.quick else args.steps
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "bench_gpu: no CUDA GPU visible (torch.cuda.is_available() is False); "
            "--device cpu runs the same code on the CPU as a dry run"
        )
    n_gpus = torch.cuda.device_count() if args.device == "cuda" else 2
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu (dry run)"
    with tempfile.TemporaryDirectory(prefix="hwml-gpu-") as tmp:
        data = write_data(Path(tmp), args.quick)
        one = {}
        for kind, preset in CASES:
            speed = {
                p: train(kind, preset, data[kind], Path(tmp) / f"{kind}-{preset}-{p}", steps, p, args.device)
                for p in ("fp32", "auto")
            }
            used = used_precision(Path(tmp) / f"{kind}-{preset}-auto")  # bf16, or fp16 + GradScaler (T4, P100)
            one[kind, preset] = speed["auto"]
            print(
                json.dumps(
                    {
                        "bench": "gpu",
                        "device": gpu,
                        "task": kind,
                        "preset": preset,
                        "steps": steps,
                        "precision": used,
                        "fp32_units_per_s": round(speed["fp32"]),
                        f"{used}_units_per_s": round(speed["auto"]),
                        f"{used}_over_fp32": round(speed["auto"] / speed["fp32"], 2),
                    }
                ),
                flush=True,
            )
        for kind, preset in DDP_CASES:
            if n_gpus < 2:
                print(
                    json.dumps(
                        {
                            "bench": "gpu_ddp",
                            "task": kind,
                            "preset": preset,
                            "skipped": f"{n_gpus} GPU visible: DDP needs 2 or more",
                        }
                    ),
                    flush=True,
                )
                continue
            speed = train(
                kind, preset, data[kind], Path(tmp) / f"{kind}-{preset}-ddp", steps, "auto", args.device, nproc=n_gpus
            )
            ratio = speed / one[kind, preset]
            print(
                json.dumps(
                    {
                        "bench": "gpu_ddp",
                        "device": gpu,
                        "task": kind,
                        "preset": preset,
                        "processes": n_gpus,
                        "units_per_s": round(speed),
                        "one_process_units_per_s": round(one[kind, preset]),
                        "speedup": round(ratio, 2),
                        "scaling_efficiency": round(ratio / n_gpus, 2),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
