"""Type and range checks of the settings a user gives (`--set key=value`, the app's fields)."""

from __future__ import annotations

from hwml.errors import HwmlError
from hwml.train.engine import DEFAULTS
from hwml.train.optim import PRECISIONS

# settings that must be > 0, and fractions that must lie in [0, 1] (everything numeric must be >= 0)
_POSITIVE = {
    "lr",
    "batch_size",
    "concat_nframes",
    "valid_every",
    "log_every",
    "max_epochs",
    "max_steps",
    "max_seconds",
    "hidden",
    "layers",
    "channels",
    "kernel",
    "chunk_frames",
    "eval_frames",
    "eval_batch",
    "segment_len",
    "d_model",
    "depth",
    "heads",
    "ff_dim",
    "conv_kernel",
    "infer_window",
    "infer_frames",
    "s",
}


_FRACTIONS = {"dropout", "valid_fraction", "valid_share", "label_smoothing", "min_lr_ratio", "betas", "m", "noise_prob"}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_overrides(presets, preset: str, overrides: dict) -> None:
    """Type and range checks of user settings (`--set key=value`, the app's fields) against the
    types the presets use, so a typo is a clear HwmlError and never a crash deep in training.
    Unknown keys and choices among names are left to the task and the engine."""
    examples: dict[str, list] = {}
    for table in (DEFAULTS, getattr(presets, "SETTINGS", {}), *presets.PRESETS.values()):
        for key, value in table.items():
            examples.setdefault(key, []).append(value)
    for key, value in overrides.items():
        chosen = presets.PRESETS.get(preset, {})
        seen = [chosen[key], *([DEFAULTS[key]] if key in DEFAULTS else [])] if key in chosen else examples.get(key)
        if seen is None or value is None:
            continue
        where = f"setting {key}={value!r}"
        if key == "precision" and value not in PRECISIONS:
            raise HwmlError(f"{where}: use one of {', '.join(PRECISIONS)}")
        if isinstance(value, bool) or isinstance(value, str):
            if not any(type(v) is type(value) for v in seen):
                raise HwmlError(f"{where}: expected {_describe(seen)}")
            continue
        if isinstance(value, list):  # hidden=[] is a valid MLP (no hidden layer), no other list is empty
            fits = any(isinstance(v, list) for v in seen) and (value or key == "hidden")
        else:
            fits = _is_number(value) and any(_is_number(v) or v is None for v in seen)
        items = value if isinstance(value, list) else [value]
        if not fits or not all(_is_number(x) for x in items):
            raise HwmlError(f"{where}: expected {_describe(seen)}")
        if key == "betas" and len(items) != 2:
            raise HwmlError(f"{where}: expected two numbers, like [0.9, 0.999]")
        whole = (
            all(isinstance(v, int) and not isinstance(v, bool) for v in seen if _is_number(v))
            and any(_is_number(v) for v in seen)
            or key == "hidden"
        )
        for x in items:
            if x != x or x in (float("inf"), float("-inf")):
                raise HwmlError(f"{where}: must be a finite number")
            if whole and not float(x).is_integer():
                raise HwmlError(f"{where}: must be a whole number")
            if key != "seed" and (x < 0 or key in _POSITIVE and x <= 0 or key in _FRACTIONS and x > 1):
                rule = "between 0 and 1" if key in _FRACTIONS else "positive" if key in _POSITIVE else "at least 0"
                raise HwmlError(f"{where}: must be {rule}")


def _describe(examples: list) -> str:
    kinds = []
    for v in examples:
        name = (
            "true/false"
            if isinstance(v, bool)
            else "a list of numbers"
            if isinstance(v, list)
            else "a name"
            if isinstance(v, str)
            else "a number"
            if _is_number(v)
            else None
        )
        if name and name not in kinds:
            kinds.append(name)
    return " or ".join(kinds) or "a value"
