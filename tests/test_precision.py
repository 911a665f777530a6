"""Precision by capability (issue 22, item 3): bf16 autocast where the GPU has it natively, else fp16
with a GradScaler (Colab's T4, Kaggle's P100), else fp32; fp32 always on the CPU."""

from __future__ import annotations

import json

import pytest
import torch
from test_engine import ToyTask
from torch import nn

from hwml.errors import HwmlError
from hwml.train.checks import check_overrides
from hwml.train.engine import train
from hwml.train.optim import PRECISIONS, choose_precision, make_scaler, optimizer_step

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("asked", PRECISIONS)
def test_the_cpu_always_trains_in_fp32(asked):
    assert choose_precision(CPU, asked) == "fp32"


def test_auto_on_cuda_picks_bf16_where_native_else_fp16():
    assert choose_precision(CUDA, "auto", bf16_supported=True) == "bf16"
    assert choose_precision(CUDA, "auto", bf16_supported=False) == "fp16"


@pytest.mark.parametrize("asked", ["bf16", "fp16", "fp32"])
def test_an_explicit_precision_on_cuda_is_kept(asked):
    assert choose_precision(CUDA, asked, bf16_supported=False) == asked


@pytest.mark.parametrize("device", [CPU, CUDA])
def test_an_unknown_precision_is_a_one_line_error(device):
    with pytest.raises(HwmlError, match="unknown precision 'fp8'") as err:
        choose_precision(device, "fp8", bf16_supported=True)
    assert "\n" not in str(err.value) and "fp16" in str(err.value)


def test_settings_checks_refuse_an_unknown_precision():
    class Presets:
        PRESETS = {"simple": {}}

    check_overrides(Presets, "simple", {"precision": "fp16"})
    with pytest.raises(HwmlError, match="precision='half'"):
        check_overrides(Presets, "simple", {"precision": "half"})


@pytest.mark.parametrize("precision, enabled", [("fp16", True), ("bf16", False), ("fp32", False)])
def test_only_fp16_scales_the_loss(precision, enabled):
    device = CUDA if torch.cuda.is_available() else CPU  # without CUDA a cuda GradScaler disables itself
    assert make_scaler(device, precision).is_enabled() is enabled


def _tiny_step(step_fn, clip: float) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        x, y = torch.randn(16, 4, generator=gen), torch.randint(0, 3, (16,), generator=gen)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        step_fn(loss, model, optimizer, clip)
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("clip", [0.0, 0.05])
def test_a_disabled_scaler_steps_exactly_like_a_plain_backward_clip_step(clip):
    def plain(loss, model, optimizer, clip):
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()

    def scaled(loss, model, optimizer, clip):
        optimizer_step(loss, model, optimizer, make_scaler(CPU, "fp32"), clip)

    expected, got = _tiny_step(plain, clip), _tiny_step(scaled, clip)
    assert all(torch.equal(a, b) for a, b in zip(expected, got))
    untouched = _tiny_step(lambda *a: None, clip)
    assert not all(torch.equal(a, b) for a, b in zip(expected, untouched))  # the steps really moved


def test_a_cpu_run_records_fp32_in_config_and_start_event(tmp_path):
    train(ToyTask(), {"max_steps": 5, "valid_every": 5, "device": "cpu"}, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["precision"] == "fp32"
    start = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert start["event"] == "start" and start["precision"] == "fp32"
