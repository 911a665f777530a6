"""Data-parallel training under `torchrun`: torch.distributed + DistributedDataParallel.

`torchrun --nproc-per-node N -m hwml train ...` starts N copies of the CLI with RANK,
LOCAL_RANK and WORLD_SIZE in their environment; `setup()` sees them and joins the process group
(gloo on CPU; on CUDA one GPU per local rank, NCCL for the gradients and gloo for the few CPU
control values). Without torchrun (or with one process) it returns `SINGLE` and the engine runs
exactly as before. What the engine does with a `Group` (hwml/DESIGN.md, "Several processes"):

- batches: every rank makes the draws of the *global* batch (world_size x batch_size) from the
  one seeded generator, identical on all ranks, and keeps every world_size-th row from its rank
  on (gathering only those where the task can), so the union over ranks is what one process
  draws with world_size x batch_size; DDP averages the gradients;
- the learning rate follows the global batch: lr x lr_scale (`lr_scaling`: sqrt, linear, none);
- decisions (stop, time limit, the clock the schedule reads, logging) are agreed each step with
  one small all-reduce, so every rank stops at the same step; validation is split and summed;
- only rank 0 writes (metrics.jsonl, checkpoints, config.json with world_size).
"""

from __future__ import annotations

import datetime
import inspect
import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from hwml.errors import HwmlError

LR_SCALINGS = ("sqrt", "linear", "none")
# A rank that dies is noticed by torchrun, which stops the others; this bounds any collective
# that waits for a peer that is alive but stuck.
TIMEOUT = datetime.timedelta(minutes=10)


@dataclass
class Group:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def part(self) -> slice:
        """This rank's rows of a global batch: every world-th row from its rank on, so each rank
        gets a spread of a sorted batch (the phoneme task sorts rows for memmap locality)."""
        return slice(self.rank, None, self.world)

    def agree(self, elapsed: float, stop: bool) -> tuple[float, bool]:
        """(the largest elapsed time, whether any rank wants to stop): one CPU all-reduce."""
        if not self.active:
            return elapsed, stop
        t = torch.tensor([elapsed, float(stop)], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t[0]), bool(t[1])

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over ranks (on the CPU: no GPU sync beyond reading the values)."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def sum_tensor(self, t: Tensor) -> Tensor:
        """A CPU tensor summed over ranks (each rank fills its rows, zeros elsewhere)."""
        if self.active:
            dist.all_reduce(t)
        return t

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


SINGLE = Group()


def world_size() -> int:
    """WORLD_SIZE as torchrun sets it; 1 outside torchrun."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise HwmlError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None


def setup(device: torch.device) -> Group:
    """Join torchrun's process group (once per process); SINGLE outside torchrun.

    The device picks the backend: CPU -> gloo; CUDA -> cuda:LOCAL_RANK with NCCL for CUDA
    tensors and gloo for CPU ones (the per-step control values), in one group."""
    world = world_size()
    if world == 1:
        return SINGLE
    rank_, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise HwmlError(
                f"rank {rank_}: local rank {local} has no GPU ({torch.cuda.device_count()} visible): "
                "use --nproc-per-node <= the number of GPUs"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(
            backend=backend, timeout=TIMEOUT, **({"device_id": device} if device.type == "cuda" else {})
        )
    return Group(rank_, world, local, device, owns)


def lr_scale(group: Group, how: str) -> float:
    """The global batch is world x batch_size: sqrt (the square-root rule for Adam-type
    optimisers, Malladi et al. 2022), linear (Goyal et al. 2017, for SGD) or none."""
    if how not in LR_SCALINGS:
        raise HwmlError(f"unknown lr_scaling {how!r}: use {', '.join(LR_SCALINGS)}")
    return {"sqrt": math.sqrt(group.world), "linear": float(group.world), "none": 1.0}[how]


class _DDP(nn.parallel.DistributedDataParallel):
    """DDP that passes other attributes (a speaker model's `margin`, `embed`) to the model."""

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def wrap(model: nn.Module, group: Group) -> nn.Module:
    """The model DDP-wrapped for training (gradients averaged over ranks); itself when alone.

    The weights start equal on every rank (same seed; DDP also broadcasts rank 0's)."""
    if not group.active or not any(p.requires_grad for p in model.parameters()):
        return model
    ids = [group.device.index] if group.device.type == "cuda" else None
    return _DDP(model, device_ids=ids)


def draw_global(task, gen: torch.Generator, device, group: Group, batch_size: int):
    """This rank's part of the global batch the task draws with world x batch_size (see above).

    A task whose train_batch takes `part=(rank, world)` (the phoneme task) gathers only those
    rows; from any other the whole global batch is made and sliced."""
    task.settings["batch_size"] = batch_size * group.world
    try:
        if "part" in inspect.signature(task.train_batch).parameters:
            return task.train_batch(gen, device, part=(group.rank, group.world))
        inputs, targets = task.train_batch(gen, torch.device("cpu"))
    finally:
        task.settings["batch_size"] = batch_size
    part = group.part()
    cut = lambda t: t[part].to(device) if isinstance(t, Tensor) and t.dim() and len(t) == len(targets) else t
    return tuple(cut(t) for t in inputs), cut(targets)
