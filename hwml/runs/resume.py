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
from hwml.runs.folder import METRICS, RESUME_JSON, RESUME_TENSORS
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


# --- runs a restart cut short (the app lists them as interrupted and offers to resume them) ------
RESTART_KEYS = ("seed", "device", "max_steps", "max_seconds")  # given to train_run itself, not as overrides


def is_interrupted(run_dir, active=frozenset()) -> bool:
    """A run folder that began training but never logged its end (an "end" event in
    metrics.jsonl: finished, stopped or cut by its time share all log one) and is not being
    written now (`active`: resolved folders of live jobs): a server restart or a kill cut it."""
    run_dir = Path(run_dir)
    metrics = run_dir / METRICS
    if run_dir.resolve() in active or not metrics.is_file():
        return False
    try:
        with metrics.open("rb") as f:
            f.seek(max(0, metrics.stat().st_size - 4096))
            tail = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return False
    for line in reversed(tail):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        return not (isinstance(event, dict) and event.get("event") == "end")
    return True


def resume_arguments(run_dir) -> dict:
    """What `hwml.api.train_run(..., resume=True)` needs to continue an interrupted run, read from
    its config.json: kind, data folder, preset, overrides (its settings), seed and step limit."""
    run_dir = Path(run_dir)
    if not (run_dir / RESUME_TENSORS).is_file():
        raise HwmlError(f"{run_dir.name}: it was cut before its first checkpoint; nothing to resume from")
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HwmlError(f"{run_dir.name}: unreadable config.json ({type(exc).__name__})") from None
    if config.get("finished"):
        raise HwmlError(f"{run_dir.name}: this run finished; start a new one (or fine-tune from it)")
    data = (config.get("data") or {}).get("root")
    if not data or not Path(data).is_dir():
        raise HwmlError(f"{run_dir.name}: its training data is gone (deleted or pruned): cannot resume it")
    settings = dict(config.get("settings") or {})
    return {
        "kind": config.get("task"),
        "data": Path(data),
        "preset": config.get("preset"),
        "overrides": {k: v for k, v in settings.items() if k not in RESTART_KEYS and k != "max_epochs"},
        "seed": int(settings.get("seed") or 0),
        "max_steps": settings.get("max_steps"),
        "max_seconds": settings.get("max_seconds"),
    }
