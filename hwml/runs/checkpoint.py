"""The best weights of a run and the config.json that describes them, written and read back.

Weights go before their config.json, so a config always describes weights that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from hwml.errors import HwmlError
from hwml.runs.folder import CHECKPOINT_FILES, CONFIG, WEIGHTS, read_config
from hwml.safeio import atomic_path, write_json_atomic


def save_tensors(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> None:
    try:
        with atomic_path(path) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    except SafetensorError as exc:  # a full disk surfaces here, not as OSError; the old file is kept
        reason = str(exc).rsplit("I/O error: ", 1)[-1].split(" (os error")[0]
        raise HwmlError(f"{path}: cannot write ({reason})") from None


def read_tensors(path: Path, tensors: bool = True) -> tuple[dict[str, Tensor], dict[str, str]]:
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
    save_tensors(run_dir / WEIGHTS, weights)
    write_json_atomic(run_dir / CONFIG, config)


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
        model.load_state_dict(read_tensors(Path(run_dir) / WEIGHTS)[0])
    except RuntimeError as exc:
        raise HwmlError(f"{run_dir}: weights do not fit the model in {CONFIG} ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval(), config
