"""The resume state of a run: model, optimiser, generator, RNG and counters, as safetensors + JSON.

A checkpoint is four files, and a kill can land between any two writes. The resume state is
therefore self-contained: `resume.safetensors` carries its own counters in its safetensors
metadata, so resuming never pairs the tensors of one step with the counters of another;
`resume.json` is a readable copy that names the same checkpoint id and step.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import torch
from torch import Tensor, nn

from hwml.errors import HwmlError
from hwml.runs.checkpoint import read_tensors, save_tensors
from hwml.runs.folder import RESUME_JSON, RESUME_TENSORS
from hwml.safeio import write_json_atomic

RESUME_META = "hwml.resume"  # resume.safetensors metadata key: the JSON counters of these tensors


def save_resume(
    run_dir,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    gen: torch.Generator,
    meta: dict,
    best_state: dict[str, Tensor] | None,
) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if best_state is not None:
        tensors.update({f"best.{k}": v for k, v in best_state.items()})
    opt = optimizer.state_dict()
    scalars = {}
    for idx, state in opt["state"].items():
        for key, value in state.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    tensors["rng.generator"] = gen.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {
        **meta,
        "checkpoint": uuid.uuid4().hex,
        "optim_groups": opt["param_groups"],
        "optim_scalars": scalars,
        "has_best": best_state is not None,
    }
    save_tensors(
        Path(run_dir) / RESUME_TENSORS,
        tensors,
        {RESUME_META: json.dumps(meta), "checkpoint": meta["checkpoint"], "step": str(meta["step"])},
    )
    write_json_atomic(Path(run_dir) / RESUME_JSON, meta)


def read_resume_state(run_dir, tensors: bool = False) -> tuple[dict, dict[str, Tensor]]:
    """(counters, tensors) of the resume state: the counters stored inside resume.safetensors,
    so both always come from the same checkpoint whatever a kill left in resume.json (which is
    read only for states saved before the counters moved into the tensors file)."""
    run_dir = Path(run_dir)
    values, header = read_tensors(run_dir / RESUME_TENSORS, tensors=tensors)
    source = run_dir / RESUME_TENSORS
    try:
        if RESUME_META in header:
            meta = json.loads(header[RESUME_META])
        else:
            source = run_dir / RESUME_JSON
            meta = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HwmlError(f"{source}: unreadable resume state ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("step"), int):
        raise HwmlError(f"{source}: unreadable resume state (no step count)")
    return meta, values


def load_resume(run_dir, model: nn.Module, optimizer: torch.optim.Optimizer, gen: torch.Generator) -> dict:
    """Restore everything save_resume wrote into model, optimizer and gen (and torch's RNG);
    return the counters plus "best_state" (the best weights so far, or None)."""
    run_dir = Path(run_dir)
    meta, tensors = read_resume_state(run_dir, tensors=True)
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError:
        raise HwmlError(f"{run_dir}: resume state does not fit this model (settings changed?)") from None
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for key, value in meta["optim_scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["optim_groups"]})
    gen.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} if meta["has_best"] else None
    return {**meta, "best_state": best}
