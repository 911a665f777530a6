"""What one training step needs beside the loop: the device, the learning-rate schedule, the
optimiser, mixed precision, and a snapshot of the best weights."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from hwml.errors import HwmlError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise HwmlError("device 'cuda' was asked for but no CUDA GPU is available")
    if name not in ("cpu", "cuda"):
        raise HwmlError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


def lr_at(step: int, progress: float, s: dict) -> float:
    """Linear warmup over warmup_steps, then cosine from lr down to min_lr_ratio * lr.

    progress (0..1) is the larger of steps done / max_steps and seconds spent / max_seconds,
    so a run limited by time anneals fully too.
    """
    if step < s["warmup_steps"]:
        return s["lr"] * (step + 1) / s["warmup_steps"]
    if s["schedule"] == "constant":
        return s["lr"]
    floor = s["lr"] * s["min_lr_ratio"]
    return floor + (s["lr"] - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def make_optimizer(model: nn.Module, s: dict) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": s["weight_decay"]}, {"params": rest, "weight_decay": 0.0}]
    kind = s["optimizer"].lower()
    if kind not in ("adamw", "adam"):
        raise HwmlError(f"unknown optimizer {s['optimizer']!r}: use adamw or adam")
    if kind == "adam":  # the course's choice: no weight decay at all, so one group (one kernel call)
        groups = [{"params": params, "weight_decay": 0.0}]
    # fused: one kernel for the whole update (on CPU several times faster than the per-tensor loop, which
    # at the course's batch 64 costs as much as the forward and backward passes together)
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    try:
        return cls(groups, lr=s["lr"], betas=tuple(s["betas"]), fused=True)
    except (RuntimeError, TypeError):
        return cls(groups, lr=s["lr"], betas=tuple(s["betas"]))


def clone_state(model: nn.Module) -> dict[str, Tensor]:
    """A snapshot of the weights that later steps cannot change (pitfall 3: state_dict()
    alone returns references to the live tensors)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


PRECISIONS = ("auto", "bf16", "fp16", "fp32")  # what `precision` may be set to
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def choose_precision(device: torch.device, asked: str = "auto", bf16_supported: bool | None = None) -> str:
    """The precision a run trains in: 'bf16', 'fp16' or 'fp32'.

    auto on CUDA: bf16 autocast where the GPU has it natively (Ampere and later), else fp16 autocast
    with a GradScaler (Colab's T4, Kaggle's P100: without native bf16, bf16 is emulated and slow).
    On the CPU always fp32, as before: CPU runs stay bit-identical. bf16_supported stands for
    torch.cuda.is_bf16_supported() (the tests pass it to choose for a GPU this machine lacks).
    """
    if asked not in PRECISIONS:
        raise HwmlError(f"unknown precision {asked!r}: use {', '.join(PRECISIONS)}")
    if device.type != "cuda":
        return "fp32"
    if asked != "auto":
        return asked
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported(including_emulation=False)
    return "bf16" if bf16_supported else "fp16"


def autocast(device: torch.device, precision: str = "bf16"):
    """Mixed precision for a forward pass: precision as choose_precision returned it."""
    dtype = _AUTOCAST_DTYPES.get(precision)
    return torch.autocast(
        device.type, dtype=dtype or torch.bfloat16, enabled=device.type == "cuda" and dtype is not None
    )


def make_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """fp16 gradients underflow without loss scaling; for bf16 and fp32 a disabled scaler, whose
    scale/step/update are plain passes (the step is optimizer.step() itself)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def optimizer_step(loss: Tensor, model: nn.Module, optimizer, scaler: torch.amp.GradScaler, grad_clip: float) -> None:
    """Backward pass, optional clipping of the true (unscaled) gradients, the update.

    With fp16 a step whose gradients overflowed is skipped and the scale lowered (GradScaler).
    """
    scaler.scale(loss).backward()
    if grad_clip:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
