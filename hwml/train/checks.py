"""Type and range checks of the settings a user gives (`--set key=value`, the app's fields)."""

from __future__ import annotations

from hwml.errors import HwmlError
from hwml.settings import max_step_gflop, max_train_bytes
from hwml.train.budget import estimate
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


# (lowest, highest) of every numeric setting, both tasks (README: Safety lists them). Sizes are
# capped so that no single setting alone can exhaust memory; their product is priced by
# hwml.train.budget. A list setting (hidden=[...]) is checked item by item.
BOUNDS = {
    # model size
    "d_model": (8, 1024),
    "depth": (1, 24),
    "heads": (1, 32),
    "ff_dim": (8, 8192),
    "conv_kernel": (1, 255),
    "head_hidden": (0, 4096),
    "emb_dim": (0, 4096),
    "subsample": (1, 16),
    "hidden": (1, 8192),
    "layers": (1, 8),
    "channels": (1, 1024),
    "kernel": (1, 63),
    # data per step
    "concat_nframes": (1, 101),
    "batch_size": (1, 65536),
    "segment_len": (8, 4096),
    "chunk_frames": (8, 10_000),
    "eval_batch": (64, 262_144),
    "eval_frames": (1000, 1_000_000),
    "infer_window": (16, 8192),
    "infer_frames": (16, 1_048_576),
    "freq_mask": (0, 40),
    "time_mask": (0, 4096),
    # length, validation and logging
    "max_steps": (1, 100_000_000),
    "max_epochs": (1, 100_000),
    "max_seconds": (0, 1_000_000),
    "warmup_steps": (0, 1_000_000),
    "valid_every": (1, 10_000_000),
    "patience": (0, 10_000),
    "log_every": (1, 1_000_000),
    "log_every_s": (0, 3600),
    # optimisation and augmentation
    "lr": (0, 10),
    "weight_decay": (0, 10),
    "grad_clip": (0, 1_000_000),
    "s": (0, 100),
    "level_db": (0, 40),
    "noise_snr_min": (0, 60),
    "noise_snr_max": (0, 60),
    "shrinkage": (0, 1),
}
MAX_HIDDEN_LAYERS = 16  # items of an MLP's hidden=[...]
MIN_LOG_SECONDS = 0.05  # log_every_s: 0 (step count only) or at least this
# a visitor of the app (not the command line) shares the server: at most one step event in this many
# steps, so a run cannot flood every page with events
VISITOR_MIN_LOG_EVERY = 20


def check_budget(presets, preset: str, overrides: dict) -> None:
    """Refuse settings whose estimated memory or compute per step is over the machine's budget
    (hwml.train.budget), before any model or batch exists."""
    settings = {**DEFAULTS, **getattr(presets, "SETTINGS", {}), **presets.PRESETS.get(preset, {}), **overrides}
    try:
        cost = estimate(settings)
    except (TypeError, ValueError):  # a malformed value: check_overrides and the task name it
        return
    limit_bytes, limit_flops = max_train_bytes(), max_step_gflop() * 1e9
    if cost.bytes > limit_bytes or cost.flops > limit_flops:
        raise HwmlError(
            f"settings too big for this machine: {cost.describe()}, over the budget of "
            f"{limit_bytes / 2**20:,.0f} MiB and {limit_flops / 1e9:,.0f} GFLOP a step "
            "(HWML_MAX_TRAIN_MB, HWML_MAX_STEP_GFLOP): make the model or batch smaller"
        )


def _check_bounds(key: str, items: list, where: str, visitor: bool) -> None:
    if key == "hidden" and len(items) > MAX_HIDDEN_LAYERS:
        raise HwmlError(f"{where}: at most {MAX_HIDDEN_LAYERS} hidden layers")
    if key not in BOUNDS:
        return
    lo, hi = BOUNDS[key]
    if key == "log_every" and visitor:
        lo = VISITOR_MIN_LOG_EVERY
    for x in items:
        if not lo <= x <= hi:
            raise HwmlError(f"{where}: must be between {lo:g} and {hi:g}")
        if key == "log_every_s" and 0 < x < MIN_LOG_SECONDS:
            raise HwmlError(f"{where}: must be 0 (step count only) or at least {MIN_LOG_SECONDS:g}")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_overrides(presets, preset: str, overrides: dict, visitor: bool = False) -> None:
    """Type and range checks of user settings (`--set key=value`, the app's fields) against the
    types the presets use, so a typo is a clear HwmlError and never a crash deep in training;
    then each setting's BOUNDS and the run's estimated cost (`check_budget`). `visitor`: the
    request comes from the app, where logging is rate-limited too. Unknown keys and choices
    among names are left to the task and the engine."""
    _check_types(presets, preset, overrides, visitor)
    if "d_model" in overrides or "heads" in overrides:
        merged = {**getattr(presets, "SETTINGS", {}), **presets.PRESETS.get(preset, {}), **overrides}
        if "encoder" in merged and _is_number(merged.get("heads")) and merged["d_model"] % merged["heads"]:
            raise HwmlError(f"d_model={merged['d_model']} must be a multiple of heads={merged['heads']}")
    check_budget(presets, preset, {k: v for k, v in overrides.items() if v is not None})


def _check_types(presets, preset: str, overrides: dict, visitor: bool) -> None:
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
        _check_bounds(key, items, where, visitor)


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
