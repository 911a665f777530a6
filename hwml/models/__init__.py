"""The model registry: every model is rebuilt from `{"name": ..., "kwargs": {...}}` alone.

A run's config.json stores that spec, so `hwml.runs.load_run` needs no code from the run that
trained it. Model modules register their classes with `@register("name")`; the modules listed
in MODEL_MODULES are imported on first use so the registry is complete before any lookup.
"""

from __future__ import annotations

import importlib

from torch import nn

from hwml.errors import HwmlError

MODELS: dict[str, type[nn.Module]] = {}
MODEL_MODULES = ("hwml.models.phoneme", "hwml.models.speaker")


def register(name: str):
    """Class decorator: make the model buildable as {"name": name, "kwargs": {...}}."""
    def add(cls):
        if MODELS.get(name, cls) is not cls:
            raise ValueError(f"model name {name!r} registered twice")
        MODELS[name] = cls
        return cls
    return add


def _load_all() -> None:
    for module in MODEL_MODULES:
        importlib.import_module(module)


def build_model(spec: dict) -> nn.Module:
    """A fresh model (initialised under the caller's torch seed) from its spec."""
    _load_all()
    name = spec.get("name")
    if name not in MODELS:
        raise HwmlError(f"unknown model {name!r}: known models are {', '.join(sorted(MODELS))}")
    try:
        return MODELS[name](**spec.get("kwargs", {}))
    except TypeError as exc:
        raise HwmlError(f"model {name!r}: bad settings ({exc})") from None
