"""The model registry: every model is rebuilt from `{"name": ..., "kwargs": {...}}` alone.

A run's config.json stores that spec, so `hwml.runs.checkpoint.load_run` needs no code from the run that
trained it. Model modules register their classes with `@register("name")`; a name not yet registered
makes `build_model` import the modules in MODEL_MODULES in turn until one registers it (lazily:
the speaker models pull in the `conformer` package, which takes seconds to import).
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


def build_model(spec: dict) -> nn.Module:
    """A fresh model (initialised under the caller's torch seed) from its spec."""
    name = spec.get("name")
    for module in MODEL_MODULES:
        if name in MODELS:
            break
        importlib.import_module(module)
    if name not in MODELS:
        raise HwmlError(f"unknown model {name!r}: known models are {', '.join(sorted(MODELS))}")
    try:
        return MODELS[name](**spec.get("kwargs", {}))
    except TypeError as exc:
        raise HwmlError(f"model {name!r}: bad settings ({exc})") from None
