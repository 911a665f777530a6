"""HW4 validation share: how much of a course-size run goes to validating, before and after spacing.

The tuned presets validate every 100 steps, which suits the built-in corpus (94 validation
utterances) but not the course's 56,666 (5,666 validated, whole): there most of the compute
would go to validation. `valid_share` (0.2 in the tuned presets) spaces validations out so they
take at most about that share (`hwml.speaker.task.validation_spacing`). For each preset this times
one training step and one whole validation on a course-shaped set (bench_speaker_throughput's
synthetic_set: course-like lengths, random features; speed does not depend on content) and
prints the validation share at the preset's `valid_every` and at the spaced interval, as JSON
lines.

    python bench/bench_speaker_validation.py [--utterances 56666] [--presets medium strong boss] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_speaker_throughput import synthetic_set  # noqa: E402

from hwml.data.types import Dataset, UtteranceSet  # noqa: E402
from hwml.models import build_model  # noqa: E402
from hwml.speaker.task import make_task  # noqa: E402
from hwml.train.engine import DEFAULTS
from hwml.train.optim import make_optimizer  # noqa: E402


def measure(utts: UtteranceSet, preset: str, steps: int) -> dict:
    data = Dataset("speaker", "hw4", ".", utts)
    task = make_task(data, preset, {}, seed=0)
    spaced = task.settings["valid_every"]
    asked = make_task(data, preset, {"valid_share": 0}, seed=0).settings["valid_every"]
    torch.manual_seed(0)
    model = build_model(task.model_spec())
    opt = make_optimizer(model, {**DEFAULTS, **task.settings})
    gen = torch.Generator().manual_seed(0)

    def step():
        loss, _ = task.loss(model, task.train_batch(gen, "cpu"))
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    step_s = (time.perf_counter() - t) / steps
    t = time.perf_counter()
    task.validate(model, torch.device("cpu"), lambda: False)
    valid_s = time.perf_counter() - t
    share = lambda every: valid_s / (valid_s + every * step_s)
    return {
        "bench": "speaker_validation",
        "preset": preset,
        "utterances": len(utts),
        "n_valid": len(task.valid_idx),
        "step_ms": round(step_s * 1000, 1),
        "validation_s": round(valid_s, 2),
        "valid_every_asked": asked,
        "valid_share_asked": round(share(asked), 3),
        "valid_every_spaced": spaced,
        "valid_share_spaced": round(share(spaced), 3),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--utterances", type=int, default=56_666, help="course: 56,666")
    p.add_argument("--speakers", type=int, default=600)
    p.add_argument("--presets", nargs="+", default=["medium", "strong", "boss"])
    p.add_argument("--steps", type=int, default=30, help="training steps timed per preset")
    p.add_argument("--quick", action="store_true", help="a small set, seconds (the test suite)")
    args = p.parse_args()
    if args.quick:
        args.utterances, args.speakers, args.steps = 400, 20, 3
    utts = synthetic_set(args.utterances, args.speakers)
    for preset in args.presets:
        print(json.dumps(measure(utts, preset, args.steps)), flush=True)


if __name__ == "__main__":
    main()
