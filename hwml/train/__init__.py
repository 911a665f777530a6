"""Training: the one loop both tasks share.

- `engine`: `train(task, settings, run_dir)`, the loop and its events; `DEFAULTS` (engine settings)
- `optim`: device, learning-rate schedule, optimiser, autocast, the best-weights snapshot
- `distributed`: torchrun data parallelism for that loop
- `finetune`: `train --init RUN`, starting from a trained run's weights
- `checks`: type and range checks of the settings a user gives
"""

from hwml.train.engine import DEFAULTS, Task, train

__all__ = ["DEFAULTS", "Task", "train"]
