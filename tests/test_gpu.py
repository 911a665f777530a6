"""The CUDA path (marked `gpu`, skipped without CUDA; bench/gpu_check.sh runs them on a GPU machine):
training with bf16 autocast and in fp32, the run loading on the CPU, and DDP over NCCL on every
visible GPU."""

from __future__ import annotations

import json
import math
import os
import subprocess

import pytest
import torch
from test_distributed import REPO, data, free_port, torchrun_cmd  # noqa: F401  (data: the fixture)

from hwml.api import task_package
from hwml.data import load_dataset
from hwml.runs.checkpoint import load_run
from hwml.runs.folder import read_metrics
from hwml.train.engine import train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

SMALL = {
    "phoneme": ("medium", {"hidden": [64, 64]}),
    "speaker": ("boss", {"batch_size": 8, "segment_len": 32, "d_model": 32, "heads": 2, "ff_dim": 64}),
}


@pytest.mark.parametrize("kind", ["phoneme", "speaker"])
@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32", "auto"])
def test_training_on_cuda_learns_and_the_run_loads_on_the_cpu(data, kind, precision, tmp_path):
    preset, small = SMALL[kind]
    task = task_package(kind).task.make_task(load_dataset(data[kind]), preset, {**small, "valid_every": 20}, 0)
    end = train(task, {"max_steps": 40, "device": "cuda", "precision": precision, "log_every": 1}, tmp_path)
    events = read_metrics(tmp_path)
    assert events[0]["device"].startswith("cuda")
    losses = [e["loss"] for e in events if e["event"] == "step"]
    assert all(math.isfinite(x) for x in losses) and sum(losses[-5:]) < sum(losses[:5])
    model, config = load_run(tmp_path)  # weights saved from the GPU load on the CPU
    assert next(model.parameters()).device.type == "cpu" and end["best_valid_acc"] is not None
    native = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    assert config["precision"] == events[0]["precision"] == (native if precision == "auto" else precision)


def test_bf16_and_fp32_agree_on_the_first_losses(data, tmp_path):
    """bf16 autocast rounds matmul inputs to 8 bits of mantissa: the same seed's first losses
    agree to a few percent, not exactly (a guard against a broken cast, e.g. logits in bf16)."""
    preset, small = SMALL["phoneme"]
    dataset = load_dataset(data["phoneme"])
    curves = {}
    for precision in ("bf16", "fp32"):
        task = task_package("phoneme").task.make_task(dataset, preset, {**small, "valid_every": 100}, 0)
        train(task, {"max_steps": 10, "device": "cuda", "precision": precision, "log_every": 1}, tmp_path / precision)
        curves[precision] = [e["loss"] for e in read_metrics(tmp_path / precision) if e["event"] == "step"]
    assert curves["bf16"] != curves["fp32"]  # autocast really ran
    assert all(abs(a - b) < 0.05 * b for a, b in zip(curves["bf16"][:5], curves["fp32"][:5]))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP on GPUs needs 2 or more")
def test_ddp_on_every_visible_gpu_uses_nccl(data, tmp_path):
    n = torch.cuda.device_count()
    preset, small = SMALL["speaker"]
    sets = [a for k, v in {**small, "valid_every": 10}.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    out = subprocess.run(
        torchrun_cmd(
            n,
            "train",
            "speaker",
            str(data["speaker"]),
            "--out",
            str(tmp_path),
            "--preset",
            preset,
            "--max-steps",
            "20",
            "--device",
            "cuda",
            "--quiet",
            *sets,
        ),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    config = load_run(tmp_path)[1]
    assert config["world_size"] == n and "nccl" in config["distributed"]["backend"]
    assert config["distributed"]["global_batch"] == n * small["batch_size"]
