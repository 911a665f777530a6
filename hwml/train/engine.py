"""The one training loop shared by the phoneme and speaker tasks: settings in, events out.

A task (hwml.phoneme.task.PhonemeTask, hwml.speaker.task.SpeakerTask) knows its data and model; this
loop knows optimisation, time, stopping, checkpoints and logging. Every event goes to
`RUN/metrics.jsonl` (one JSON object a line, flushed) and to each callback, so the CLI's
progress bar and the app's live plots read the same stream.

Determinism: one seed. `torch.manual_seed(seed)` before the model is built (initialisation,
dropout) and one `torch.Generator` seeded from it draws every training batch. Both states are
saved for resume, so a resumed run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor, nn

from hwml import settings as hwml_settings
from hwml.errors import HwmlError
from hwml.models import build_model
from hwml.runs.checkpoint import remove_partial_writes, save_checkpoint
from hwml.runs.folder import RESUME_JSON, RESUME_TENSORS
from hwml.runs.resume import load_resume, save_resume
from hwml.train import distributed as ddp
from hwml.train.optim import (
    autocast,
    choose_precision,
    clone_state,
    lr_at,
    make_optimizer,
    make_scaler,
    optimizer_step,
    resolve_device,
)
from hwml.train.tensorboard_log import EventLog

Batch = tuple[tuple[Tensor, ...], Tensor]  # (model inputs, targets); targets < 0 are ignored


class Task(Protocol):
    kind: str  # "phoneme" | "speaker"
    unit: str  # "frames" | "utterances": what units_per_s counts
    settings: dict  # the preset merged with the user's overrides (engine keys too)
    steps_per_epoch: int  # one pass over the training split, in batches

    def model_spec(self) -> dict: ...  # for build_model
    def train_batch(self, gen: torch.Generator, device) -> Batch: ...
    def valid_batches(self, device) -> Iterable[Batch]: ...  # unless the task has `validate`
    def loss(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor]: ...  # (loss, logits)
    def run_config(self) -> dict: ...  # into config.json

    # Optional: `fit(model, device)` fits a closed-form model (the Gaussian classifier) in one
    # pass instead of gradient steps; validation, checkpoint and events stay the same.
    # Optional: `validate(model, device, stop)` -> (loss, acc, n) | None replaces the engine's
    # loop over valid_batches (the speaker task scores whole utterances on parallel threads).
    # Optional: `best_info(model)` -> dict is called right after a validation made the current
    # weights the best (the model is still the one just validated); its keys are added to
    # config.json from then on and kept in the resume state (the speaker task: its verification
    # threshold, calibrated on that validation's embeddings).


DEFAULTS = {
    "seed": 0,
    "device": "auto",  # auto | cpu | cuda (mixed precision on cuda: see precision)
    "precision": "auto",  # cuda: auto (bf16 where native, else fp16 + GradScaler) | bf16 | fp16 | fp32; cpu: fp32
    "tensorboard": 0,  # 1: also a TensorBoard event log beside metrics.jsonl (or HWML_TENSORBOARD=1)
    "optimizer": "adamw",  # adamw | adam
    "lr": 1e-3,
    "weight_decay": 0.01,  # on weight matrices only, never on biases or norms
    "betas": [0.9, 0.999],
    "schedule": "cosine",  # cosine | constant
    "warmup_steps": 0,
    "min_lr_ratio": 0.05,  # cosine floor, as a fraction of lr
    "grad_clip": 0.0,  # max global grad norm; 0 = off
    "max_steps": None,  # None: max_epochs * task.steps_per_epoch
    "max_epochs": 10,
    "max_seconds": None,
    "clock": "wall",  # wall | cpu: what max_seconds and elapsed measure. cpu = this
    # process's CPU seconds (all threads): fair budgets on a busy machine
    "valid_every": 500,  # steps; and always once at the end
    "patience": 10,  # validations without improvement before stopping; 0 = off
    "log_every": 100,  # a step event at least every N steps ...
    "log_every_s": 0.5,  # ... and at least every S seconds (0 = step count only)
    "lr_scaling": "sqrt",  # torchrun: lr x sqrt|linear|none of world_size (hwml/train/distributed.py)
}


@torch.no_grad()
def validate(
    task: Task, model: nn.Module, device, stop=lambda: False, group: ddp.Group = ddp.SINGLE, precision: str = "bf16"
) -> tuple[float, float, int] | None:
    """(mean loss, accuracy, units) over the validation split, or None without one.

    Under torchrun each rank scores every world_size-th batch (`valid_batches(device, part=
    (rank, world))` when the task takes `part`) and the sums are added up over the ranks."""
    model.eval()
    loss_sum, correct, count = torch.zeros((), device=device), torch.zeros((), device=device), 0
    batches = task.valid_batches(device)
    if group.active:
        if "part" in inspect.signature(task.valid_batches).parameters:
            batches = task.valid_batches(device, part=(group.rank, group.world))
        else:
            batches = (b for i, b in enumerate(batches) if i % group.world == group.rank)
    for batch in batches:
        if stop():
            break
        with autocast(device, precision):
            loss, logits = task.loss(model, batch)
        targets = batch[1].reshape(-1)
        keep = targets >= 0
        n = int(keep.sum())
        loss_sum += loss.float() * n
        correct += (logits.reshape(targets.numel(), -1).argmax(-1)[keep] == targets[keep]).sum()
        count += n
    model.train()
    if group.active:
        loss_sum, correct, count = group.sum([float(loss_sum), float(correct), float(count)])
        count = int(count)
    if count == 0:
        return None
    return float(loss_sum) / count, float(correct) / count, count


def train(
    task: Task,
    settings: dict,
    run_dir,
    callbacks: Iterable[Callable[[dict], None]] = (),
    stop_event=None,
    resume: bool = False,
    init=None,
) -> dict:
    """Train task's model into run_dir and return the summary (the last event).

    Stops at max_steps, max_seconds, early stopping, or when stop_event is set (checked every
    step and every validation batch, so within a second). The best weights by validation
    accuracy are saved as `model.safetensors` with `config.json`; the full training state as
    `resume.safetensors` + `resume.json`, from which `resume=True` continues. `init` (a
    hwml.train.finetune.InitFrom) starts from a trained run: `init.model_spec(spec)` adjusts the model
    spec, `init.load(model, config)` copies its weights and returns the record kept in config.json.
    """
    settings = {k: v for k, v in settings.items() if v is not None}  # None: keep the preset's
    unknown = set(settings) - set(DEFAULTS) - set(task.settings)
    if unknown:
        raise HwmlError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    s = {**DEFAULTS, **task.settings, **settings}
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(s["device"])
    group = ddp.setup(device)  # torchrun: this process's rank (SINGLE without torchrun)
    device = group.device if group.active else device
    precision = choose_precision(device, s["precision"])  # recorded in config.json and the start event
    main = group.main  # only rank 0 writes the run folder and calls the callbacks
    steps_per_epoch = max(1, math.ceil(task.steps_per_epoch / group.world))  # a step is world x batch_size
    batch_size = task.settings.get("batch_size")
    lr_scale = ddp.lr_scale(group, s["lr_scaling"])
    scaled = {**s, "lr": s["lr"] * lr_scale} if group.active else s
    max_steps = s["max_steps"] or int(s["max_epochs"] * steps_per_epoch)
    max_seconds = s["max_seconds"]
    stopped = stop_event.is_set if stop_event is not None else (lambda: False)

    # --- model, optimiser, randomness: all from the one seed (or from the resume state)
    torch.manual_seed(s["seed"])
    spec = task.model_spec() if init is None else init.model_spec(task.model_spec())
    model = build_model(spec).to(device)
    config = {
        "task": task.kind,
        **task.run_config(),
        "model": spec,
        "settings": s,
        "n_params": sum(p.numel() for p in model.parameters()),
        "world_size": group.world,
        "precision": precision,
    }
    if group.active:
        config["distributed"] = {
            "world_size": group.world,
            "backend": dist_backend(),
            "batch_size_per_process": batch_size,
            "global_batch": batch_size and batch_size * group.world,
            "lr_scaling": s["lr_scaling"],
            "lr_effective": scaled["lr"],
        }
    if main:
        remove_partial_writes(run_dir)  # temp files of a killed predecessor's checkpoint writes
    if init is not None:  # before the optimiser's first step; a resume then overwrites the weights
        config["init"] = init.load(model, config)
    optimizer = make_optimizer(model, s)
    scaler = make_scaler(device, precision)
    gen = torch.Generator().manual_seed(s["seed"])
    step, spent, best_acc, best_step, bad_valids, last_valid = 0, 0.0, -1.0, 0, 0, -1
    best_loss, best_state, best_info = math.inf, None, {}
    if resume:
        if not (run_dir / RESUME_TENSORS).exists():
            raise HwmlError(f"{run_dir}: no resume state to continue from")
        state = load_resume(run_dir, model, optimizer, gen)
        step, spent, best_acc, best_step, bad_valids, last_valid = (
            state[k] for k in ("step", "elapsed", "best_valid_acc", "best_step", "bad_valids", "last_valid")
        )
        best_state = state["best_state"]
        best_loss = state.get("best_valid_loss")  # None before the first validation (or in older states)
        best_loss = math.inf if best_loss is None else best_loss
        best_info = state.get("best_info") or {}
        if scaler.is_enabled() and state.get("grad_scaler"):  # fp16: the loss scale it had reached
            scaler.load_state_dict(state["grad_scaler"])
    elif main:
        for name in ("metrics.jsonl", RESUME_JSON, RESUME_TENSORS):
            (run_dir / name).unlink(missing_ok=True)
    if group.rank > 0:  # other dropout masks than rank 0's (whose stream is the single-process one)
        torch.manual_seed(s["seed"] * 1_000_003 + group.rank * 7_919 + step)
    net = ddp.wrap(model, group)  # what the training steps run; validation and checkpoints use model

    metrics = run_dir / "metrics.jsonl"
    if (
        main and resume and metrics.exists()
    ):  # a kill mid-write leaves half a line: drop it, or the next event is glued on
        with open(metrics, "r+b") as f:
            tail = f.read()
            if tail and not tail.endswith(b"\n"):
                f.truncate(tail.rfind(b"\n") + 1)
    log = open(metrics, "a", encoding="utf-8") if main else None
    if main and (s["tensorboard"] or hwml_settings.tensorboard()):
        callbacks = [*callbacks, EventLog(run_dir)]

    def emit(event: dict) -> dict:
        if not main:
            return event
        log.write(json.dumps(event) + "\n")
        log.flush()
        for cb in callbacks:
            cb(event)
        return event

    def checkpoint(final: bool = False) -> None:
        if not main:
            return
        weights = best_state if best_state is not None else clone_state(model)
        save_checkpoint(
            run_dir,
            weights,
            {
                **config,
                **best_info,
                "best_valid_acc": best_acc if best_acc >= 0 else None,
                "best_step": best_step,
                "steps": step,
                "finished": final,
            },
        )
        meta = {
            "step": step,
            "elapsed": elapsed(),
            "best_valid_acc": best_acc,
            "best_step": best_step,
            "best_valid_loss": None if math.isinf(best_loss) else best_loss,
            "bad_valids": bad_valids,
            "last_valid": last_valid,
            "best_info": best_info,
            "grad_scaler": scaler.state_dict() if scaler.is_enabled() else None,
        }
        save_resume(run_dir, model, optimizer, gen, meta, best_state)

    if s["clock"] not in ("wall", "cpu"):
        raise HwmlError(f"unknown clock {s['clock']!r}: use wall or cpu")
    clock = time.perf_counter if s["clock"] == "wall" else time.process_time
    t0 = clock() - spent
    elapsed = lambda: clock() - t0
    progress = lambda now=None: max(
        step / max_steps, (elapsed() if now is None else now) / max_seconds if max_seconds else 0.0
    )
    never = lambda: False
    valid_stop = never if group.active else stopped  # several ranks: stops are agreed at a step

    def run_validation() -> bool:
        """Validate, keep the best weights; True when patience is used up.

        Better = higher accuracy, or the same accuracy at a lower loss: a small validation set
        (a few utterances per speaker) hits its ceiling early, and accuracy alone would then keep
        those early weights and stop training while the model is still improving.
        """
        nonlocal best_acc, best_loss, best_step, best_state, best_info, bad_valids, last_valid
        if not hasattr(task, "validate"):
            result = validate(task, model, device, valid_stop, group, precision)
        elif group.active and "shard" in inspect.signature(task.validate).parameters:
            result = task.validate(model, device, valid_stop, shard=group)
        else:
            result = task.validate(model, device, valid_stop)
        if valid_stop():  # cancelled half-way: no partial result, no checkpoint from it
            return False
        last_valid = step
        if result is None:
            return False
        vloss, vacc, n = result
        improved = vacc > best_acc or (vacc == best_acc and vloss < best_loss)
        if improved:
            best_acc, best_loss, best_step, best_state, bad_valids = vacc, vloss, step, clone_state(model), 0
            if hasattr(task, "best_info") and main:
                best_info = dict(task.best_info(model) or {})
        else:
            bad_valids += 1
        emit(
            {
                "event": "valid",
                "step": step,
                "elapsed": round(elapsed(), 3),
                "valid_loss": vloss,
                "valid_acc": vacc,
                "valid_n": n,
                "best_valid_acc": best_acc,
                "best_step": best_step,
                "improved": improved,
                "max_steps": max_steps,
            }
        )
        checkpoint()
        return bool(s["patience"]) and bad_valids >= s["patience"]

    emit(
        {
            "event": "start",
            "step": step,
            "max_steps": max_steps,
            "max_seconds": max_seconds,
            "device": str(device),
            "precision": precision,
            "task": task.kind,
            "world_size": group.world,
            "preset": config.get("preset"),
            "unit": task.unit,
            "n_params": config["n_params"],
            "resumed": resume,
            "elapsed": round(spent, 3),
            **({"init": config["init"]} if "init" in config else {}),
        }
    )

    # --- closed-form models (the Gaussian classifier): one fitting pass, then as usual
    if hasattr(task, "fit"):
        if step == 0:
            task.fit(model, device)
            step = 1
            run_validation()
        max_steps = step

    # --- the loop
    model.train()
    reason = "max_steps"
    loss_sum, correct, count, last_log_t = 0.0, 0, 0, elapsed()
    while step < max_steps:
        if group.active:  # one all-reduce: every rank stops at the same step and reads one clock
            now, stop_now = group.agree(elapsed(), stopped())
        else:
            now, stop_now = None, stopped()
        if stop_now:
            reason = "stopped"
            break
        if max_seconds and (elapsed() if now is None else now) >= max_seconds:
            reason = "max_seconds"
            break
        lr = lr_at(step, progress(now), scaled)
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr
        batch = ddp.draw_global(task, gen, device, group, batch_size) if group.active else task.train_batch(gen, device)
        with autocast(device, precision):
            loss, logits = task.loss(net, batch)
        optimizer.zero_grad(set_to_none=True)
        optimizer_step(loss, model, optimizer, scaler, s["grad_clip"])
        step += 1

        # running sums stay on the device: one sync per logged event, not per step
        targets = batch[1].reshape(-1)
        keep = targets >= 0
        n = keep.sum()
        loss_sum = loss_sum + loss.detach().float() * n
        correct = correct + (logits.detach().reshape(targets.numel(), -1).argmax(-1)[keep] == targets[keep]).sum()
        count = count + n
        now = elapsed() if now is None else now
        if (
            step % s["log_every"] == 0
            or (s["log_every_s"] and now - last_log_t >= s["log_every_s"])
            or step == max_steps
        ):
            if group.active:  # the global batch's loss and accuracy
                loss_sum, correct, count = group.sum([float(loss_sum), float(correct), float(count)])
            n_units = int(count)
            emit(
                {
                    "event": "step",
                    "step": step,
                    "epoch": round(step / steps_per_epoch, 4),
                    "elapsed": round(now, 3),
                    "loss": float(loss_sum) / max(n_units, 1),
                    "acc": float(correct) / max(n_units, 1),
                    "lr": lr,
                    "units_per_s": n_units / max(now - last_log_t, 1e-9),
                    "max_steps": max_steps,
                    "progress": round(min(progress(), 1.0), 4),
                }
            )
            loss_sum, correct, count, last_log_t = 0.0, 0, 0, now
        if step % s["valid_every"] == 0 and step < max_steps:
            if run_validation():
                reason = "early_stop"
                break
    spent = elapsed()

    # --- the end: one last validation unless this step was just validated or we were cancelled
    if reason not in ("early_stop", "stopped") and last_valid != step and not valid_stop():
        run_validation()
    spent = elapsed()
    checkpoint(final=reason != "stopped")
    log_end = {
        "event": "end",
        "step": step,
        "elapsed": round(spent, 3),
        "reason": reason,
        "best_valid_acc": best_acc if best_acc >= 0 else None,
        "best_step": best_step,
        "max_steps": max_steps,
        "run_dir": str(run_dir),
        **({"init": config["init"]} if "init" in config else {}),
    }
    emit(log_end)
    if log is not None:
        log.close()
    group.close()
    return log_end


def dist_backend() -> str | None:
    import torch.distributed as dist

    return dist.get_backend() if dist.is_initialized() else None
