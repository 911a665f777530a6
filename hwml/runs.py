"""Run folders: what a training run leaves behind, and how to read it back.

A run folder holds `config.json` (everything needed to rebuild the model: task, preset, model
spec, class names, feature parameters, data source, split, settings), `model.safetensors`
(the best weights), `metrics.jsonl` (the event stream), the resume state
(`resume.safetensors` + `resume.json`: tensors and JSON, never pickles) and, after evaluate,
`confusion.csv` / `confusion.png`. Every file is written atomically (temp file + rename), so
a crash or a cancel never leaves half a file.

A checkpoint is four files, and a kill can land between any two writes. The resume state is
therefore self-contained: `resume.safetensors` carries its own counters in its safetensors
metadata, so resuming never pairs the tensors of one step with the counters of another;
`resume.json` is a readable copy that names the same checkpoint id and step. Weights go before
their config.json, so a config always describes weights that exist.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from hwml.errors import HwmlError
from hwml.safeio import atomic_path, write_json_atomic

CONFIG, WEIGHTS, METRICS = "config.json", "model.safetensors", "metrics.jsonl"
RESUME_JSON, RESUME_TENSORS = "resume.json", "resume.safetensors"
CHECKPOINT_FILES = (WEIGHTS, CONFIG, RESUME_TENSORS, RESUME_JSON)  # in the order they are written
RESUME_META = "hwml.resume"  # resume.safetensors metadata key: the JSON counters of these tensors


def _save_tensors(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> None:
    try:
        with atomic_path(path) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    except SafetensorError as exc:  # a full disk surfaces here, not as OSError; the old file is kept
        reason = str(exc).rsplit("I/O error: ", 1)[-1].split(" (os error")[0]
        raise HwmlError(f"{path}: cannot write ({reason})") from None


def _read_tensors(path: Path, tensors: bool = True) -> tuple[dict[str, Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; tensors=False reads the header only."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return ({k: f.get_tensor(k) for k in f.keys()} if tensors else {}), (f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise HwmlError(f"{path}: unreadable weights ({exc})") from None


# safetensors (Rust's tempfile crate) writes `.tmp` + 6 letters/digits first, then renames it
_SAFETENSORS_TMP = re.compile(r"\.tmp[A-Za-z0-9]{6}")


def remove_partial_writes(run_dir) -> list[str]:
    """Delete the temp files of checkpoint writes that never finished (the writer was killed:
    `hwml.safeio.atomic_path` names them `.<name>.<random>.tmp<suffix>` beside the file, and
    safetensors writes its own `.tmpXXXXXX` before renaming it to that name).
    Only the training process writes in a run folder, so call it before a run (re)starts."""
    run_dir = Path(run_dir)
    found = [tmp for name in CHECKPOINT_FILES for tmp in run_dir.glob(f".{name}.*.tmp{Path(name).suffix}")]
    found += [tmp for tmp in run_dir.glob(".tmp*") if _SAFETENSORS_TMP.fullmatch(tmp.name) and tmp.is_file()]
    for tmp in found:
        tmp.unlink(missing_ok=True)
    return [tmp.name for tmp in found]


def save_checkpoint(run_dir, weights: dict[str, Tensor], config: dict) -> None:
    """Write the weights (already cloned: see engine.clone_state) and config.json atomically.

    Weights first, config second: a config.json always describes weights that exist.
    """
    run_dir = Path(run_dir)
    _save_tensors(run_dir / WEIGHTS, weights)
    write_json_atomic(run_dir / CONFIG, config)


def read_config(run_dir) -> dict:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise HwmlError(f"{run_dir}: not a run folder (no {CONFIG})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HwmlError(f"{path}: unreadable run config ({exc})") from None
    if not isinstance(config, dict):
        raise HwmlError(f"{path}: not a run config (expected a JSON object)")
    return config


def load_run(run_dir, device="cpu") -> tuple[nn.Module, dict]:
    """(model in eval mode with the best weights, config), rebuilt from the run folder alone."""
    from hwml.models import build_model

    config = read_config(run_dir)
    if not (Path(run_dir) / WEIGHTS).is_file():
        raise HwmlError(f"{run_dir}: no {WEIGHTS} (the run saved no weights yet)")
    spec = config.get("model")
    if not isinstance(spec, dict) or not isinstance(spec.get("kwargs", {}), dict):
        raise HwmlError(f'{Path(run_dir) / CONFIG}: no model spec ({{"name": ..., "kwargs": {{...}}}})')
    try:
        model = build_model(spec)
    except HwmlError as exc:
        raise HwmlError(f"{Path(run_dir) / CONFIG}: {exc}") from None
    except (ValueError, RuntimeError) as exc:  # e.g. negative or absurd sizes in a damaged config
        raise HwmlError(
            f"{Path(run_dir) / CONFIG}: cannot build the model ({str(exc).splitlines()[0][:160]})"
        ) from None
    try:
        model.load_state_dict(_read_tensors(Path(run_dir) / WEIGHTS)[0])
    except RuntimeError as exc:
        raise HwmlError(f"{run_dir}: weights do not fit the model in {CONFIG} ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval(), config


def read_metrics(run_dir) -> list[dict]:
    """Every event of metrics.jsonl; a torn last line (a run still writing, or killed) is skipped."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def is_run(path) -> bool:
    path = Path(path)
    return path.is_dir() and ((path / CONFIG).is_file() or (path / METRICS).is_file())


def list_runs(root) -> list[dict]:
    """One summary per run folder directly under root (newest first): path, name, task, preset,
    model, best_valid_acc, steps, finished, modified (unix seconds)."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for path in root.iterdir():
        if not is_run(path):
            continue
        try:
            config = read_config(path)
        except HwmlError:
            config = {}
        runs.append(
            {
                "path": str(path),
                "name": path.name,
                "task": config.get("task"),
                "preset": config.get("preset"),
                "model": (config.get("model") or {}).get("name"),
                "best_valid_acc": config.get("best_valid_acc"),
                "steps": config.get("steps"),
                "finished": config.get("finished", False),
                "modified": max(p.stat().st_mtime for p in path.iterdir()),
            }
        )
    return sorted(runs, key=lambda r: -r["modified"])


def delete_run(run_dir) -> None:
    """Remove a run folder; refuses anything that is not one (a typo must not delete a tree)."""
    run_dir = Path(run_dir)
    if not is_run(run_dir) or run_dir.is_symlink():
        raise HwmlError(f"{run_dir}: not a run folder, not deleting it")
    shutil.rmtree(run_dir)


# --- resume state: model + optimiser + generator + RNG + counters, as safetensors + JSON


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
    _save_tensors(
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
    values, header = _read_tensors(run_dir / RESUME_TENSORS, tensors=tensors)
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
