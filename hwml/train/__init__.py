"""Training: the one loop shared by both tasks (`hwml.train.engine.train`)."""

from hwml.train.engine import DEFAULTS, Task, train

__all__ = ["DEFAULTS", "Task", "train"]
