"""Fine-tuning: start a run from a trained run's weights (`train --init RUN`, the app's "Start from").

Someone who starts from a run wants that run's network, so the init run gives:
- its architecture: the model settings in its config.json (layer sizes, context frames, encoder,
  pooling, head, ...), unless the user `--set`s one of them;
- its input normalisation statistics (the weights were trained on inputs scaled by them);
- every weight whose name and shape still fit. Output rows (every tensor with one row per class)
  are matched by class NAME: a phone or speaker the init run knew keeps its row whatever its
  index in the new data, a class it never saw (a new speaker) gets a freshly initialised row.
Everything re-initialised is listed in config.json (`"init"`), in the start event and in the CLI's
output, so a silently half-loaded model cannot pass for a fine-tuned one.

Training settings come from the preset (by default the init run's), changed for fine-tuning
unless the user set them (see `finetune_settings`). Only a run of the same task, made with the
same feature parameters, can start another; `--init` starts a new run, `--resume` continues one
(a fine-tuned run resumes with `--resume` alone: its config.json names its init run).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from hwml.errors import HwmlError

# Fine-tuning defaults, applied unless the user sets the key. The weights are already good: a
# full-size peak learning rate throws much of that away in the first steps, so the peak is 0.3x
# the preset's (it beat 1x and 0.1x: README, `--init RUN`); a long warm-up (the course's speaker
# recipe: 1,000 steps) would spend a short budget below that peak, so it is capped. Weight decay,
# schedule and batch stay the preset's.
LR_FACTOR = 0.3
MAX_WARMUP_STEPS = 20

# Model kwargs fitted on the training data, and the tensors that hold them: taken from the init
# run when both runs use them; when only the new run does (the user turned input_norm on), the
# new data's statistics stay and the init run's placeholder buffers are not copied over them.
FITTED = {"input_mean": "input_norm.mean", "input_std": "input_norm.std"}


def finetune_settings(presets, preset: str) -> dict:
    """The preset's lr x LR_FACTOR and a warm-up of at most MAX_WARMUP_STEPS steps (`presets`:
    the task's presets module)."""
    from hwml.train.engine import DEFAULTS

    base = {**DEFAULTS, **getattr(presets, "SETTINGS", {}), **presets.PRESETS.get(preset, {})}
    return {
        "lr": float(f"{base['lr'] * LR_FACTOR:.3g}"),
        "warmup_steps": min(int(base["warmup_steps"]), MAX_WARMUP_STEPS),
    }


def _same_features(a, b) -> bool:
    from hwml.audio.params import FeatureParams

    try:
        return FeatureParams.from_dict(a) == FeatureParams.from_dict(b)
    except (HwmlError, TypeError):
        return a == b


class InitFrom:
    """A trained run to start from; the engine calls `model_spec` and then `load` (see
    hwml.train.engine.train's `init`)."""

    def __init__(self, run_dir, kind: str):
        from hwml.runs.checkpoint import load_run
        from hwml.runs.folder import CONFIG

        self.run_dir = Path(run_dir)
        model, config = load_run(self.run_dir)
        task = config.get("task")
        if task != kind:
            raise HwmlError(
                f"{self.run_dir / CONFIG}: a {task or 'unknown-task'} run cannot start {kind} training "
                f"(--init needs a {kind} run)"
            )
        self.kind, self.config = kind, config
        self.spec = config["model"]
        self.state = model.state_dict()
        self.classes = [str(c) for c in config.get("class_names") or []]
        self.applied: dict = {}

    @property
    def preset(self) -> str | None:
        return self.config.get("preset")

    def overrides(self, presets, preset: str, user: dict) -> dict:
        """The init run's architecture <- fine-tuning settings <- the user's own overrides
        (`presets`: the task's presets module, hwml.phoneme.presets or hwml.speaker.presets)."""
        arch = presets.architecture(self.config.get("settings") or {})
        self.applied = {k: v for k, v in finetune_settings(presets, preset).items() if k not in user}
        return {**arch, **self.applied, **user}

    def check_task(self, task) -> None:
        """Same features, and a model that is trained (not fitted in closed form)."""
        if hasattr(task, "fit"):
            raise HwmlError(
                "the gaussian classifier is fitted in closed form, there is nothing to fine-tune: "
                "leave model unset (the init run's) or use --preset logreg"
            )
        config = task.run_config()
        old, new = self.config.get("features"), config.get("features")
        if not _same_features(old, new):
            diff = sorted(k for k in {**(old or {}), **(new or {})} if (old or {}).get(k) != (new or {}).get(k))
            shown = ", ".join(f"{k} {(old or {}).get(k)!r} vs {(new or {}).get(k)!r}" for k in diff[:4])
            raise HwmlError(
                f"{config.get('data', {}).get('root', 'the data')}: its feature parameters differ from the "
                f"init run's ({self.run_dir / 'config.json'}): {shown or 'different'}; fine-tuning needs "
                "the same features"
            )

    def model_spec(self, spec: dict) -> dict:
        """The new run's spec with the init run's data-fitted kwargs (input statistics)."""
        kwargs, old = dict(spec.get("kwargs", {})), self.spec.get("kwargs", {})
        for key in FITTED:
            if key in kwargs and key in old:
                kwargs[key] = old[key]
        return {**spec, "kwargs": kwargs}

    @torch.no_grad()
    def load(self, model: nn.Module, config: dict) -> dict:
        """Copy the init run's weights into the freshly built `model` (config: the new run's
        config.json: its model spec and class names); returns the record for config.json."""
        spec, names = config["model"], [str(c) for c in config.get("class_names") or []]
        state = model.state_dict()
        class_dims = _class_dims(spec, state)
        skip = {
            tensor
            for key, tensor in FITTED.items()
            if key in spec.get("kwargs", {}) and key not in self.spec.get("kwargs", {})
        }
        where = {name: i for i, name in enumerate(self.classes)}
        matched = [(i, where[n]) for i, n in enumerate(names) if n in where]
        copied, fresh = 0, []
        for key, target in state.items():
            source = self.state.get(key)
            if source is None or key in skip:
                fresh.append(key)
                continue
            dim = class_dims.get(key)
            if (
                dim is not None
                and _same_except(source.shape, target.shape, dim)
                and source.shape[dim] == len(self.classes)
            ):
                if not matched:
                    fresh.append(key)
                    continue
                new_idx = torch.tensor([i for i, _ in matched], device=target.device)
                old_idx = torch.tensor([j for _, j in matched])
                target.index_copy_(dim, new_idx, source.index_select(dim, old_idx).to(target.device, target.dtype))
            elif source.shape == target.shape:
                target.copy_(source.to(target.device, target.dtype))
            else:
                fresh.append(key)
                continue
            copied += 1
        return {
            "from": str(self.run_dir),
            "copied": copied,
            "reinitialised": fresh,
            "classes_matched": len(matched),
            "new_classes": [n for n in names if n not in where],
            "finetune_settings": self.applied,
        }


def _class_dims(spec: dict, base: dict) -> dict[str, int]:
    """Which tensors of the model built from spec (its state `base`) have one entry per class,
    and along which dimension: the same model with one class more shows them (built on a forked
    RNG, so the caller's random draws stay as they were)."""
    from hwml.models import build_model

    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs.get("n_classes"), int):
        return {}
    with torch.random.fork_rng(devices=[]):
        probe = build_model({**spec, "kwargs": {**kwargs, "n_classes": kwargs["n_classes"] + 1}}).state_dict()
    dims = {}
    for key, tensor in base.items():
        other = probe[key].shape
        diff = [d for d in range(tensor.dim()) if tensor.shape[d] != other[d]] if tensor.dim() == len(other) else []
        if len(diff) == 1 and other[diff[0]] == tensor.shape[diff[0]] + 1:
            dims[key] = diff[0]
    return dims


def _same_except(a, b, dim: int) -> bool:
    return len(a) == len(b) and all(x == y for d, (x, y) in enumerate(zip(a, b)) if d != dim)


def describe(info: dict) -> str:
    """One line for the CLI: where the weights came from and what was not copied."""
    fresh = info.get("reinitialised") or []
    new = info.get("new_classes") or []
    parts = [
        f"fine-tuning from {info['from']}: {info['copied']} tensors copied",
        f"{info['classes_matched']} classes matched by name",
    ]
    parts.append(f"re-initialised: {', '.join(fresh)}" if fresh else "nothing re-initialised")
    if new:
        parts.append(f"new classes ({len(new)}): {', '.join(new[:10])}{' ...' if len(new) > 10 else ''}")
    if info.get("finetune_settings"):
        parts.append("settings " + ", ".join(f"{k}={v}" for k, v in info["finetune_settings"].items()))
    return "; ".join(parts)


def resumed_init(run_dir) -> Path | None:
    """The init run a fine-tuned run in run_dir started from (resume rebuilds the same model)."""
    config_path = Path(run_dir) / "config.json"
    if not config_path.is_file():
        return None
    from hwml.runs.folder import read_config

    init = read_config(run_dir).get("init")
    if not isinstance(init, dict) or not init.get("from"):
        return None
    if not Path(init["from"]).is_dir():
        raise HwmlError(
            f"{config_path}: this fine-tuned run started from {init['from']}, which is gone; "
            "resuming needs it (it gives the architecture)"
        )
    return Path(init["from"])
