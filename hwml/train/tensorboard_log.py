"""An optional TensorBoard event log beside a run's metrics.jsonl, for notebook users who look at
curves with `%tensorboard --logdir runs` (Colab, Kaggle). metrics.jsonl stays the record; this is a
copy of its numbers in the format TensorBoard reads, written only when asked for (setting
`tensorboard=1` or HWML_TENSORBOARD=1) and when the `tensorboard` package is installed."""

from __future__ import annotations

from pathlib import Path

from hwml.errors import HwmlError

# which numbers of which metrics.jsonl events become TensorBoard scalars (tag: event key)
SCALARS = {
    "step": {"train/loss": "loss", "train/acc": "acc", "train/lr": "lr", "train/units_per_s": "units_per_s"},
    "valid": {"valid/loss": "valid_loss", "valid/acc": "valid_acc"},
}


class EventLog:
    """A training callback: each step and valid event's numbers as scalars at its step; the end
    event closes the file."""

    def __init__(self, run_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise HwmlError(
                "tensorboard=1 needs the tensorboard package: pip install tensorboard (or hwml[tensorboard])"
            ) from None
        self.writer = SummaryWriter(log_dir=str(run_dir))

    def __call__(self, event: dict) -> None:
        for tag, key in SCALARS.get(event.get("event"), {}).items():
            value = event.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(tag, value, global_step=event["step"])
        if event.get("event") == "valid":
            self.writer.flush()
        elif event.get("event") == "end":
            self.writer.close()
