"""What this machine offers a process: the CPU cores it may run on, and torch on one of them."""

from __future__ import annotations

import contextlib
import os
import threading


def usable_cores() -> int:
    """Cores this process may run on (a container's share, not the host's count); the app's
    prediction workers and the big-folder loader size themselves from it."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _SingleThread:
    """Run torch on one intra-op thread inside `with single_thread():` (the old count restored after).

    Features and small models are many small ops: with a second OpenMP thread each op waits for
    another core, which on a busy machine costs far more than it gains, so batch featurisation
    (imports) and per-request inference run in here. The thread count is process-wide: nested
    and concurrent users are counted, and the last one out restores it.
    """

    def __init__(self):
        self.lock, self.users, self.before = threading.Lock(), 0, 1

    @contextlib.contextmanager
    def __call__(self):
        import torch

        with self.lock:
            if self.users == 0:
                self.before = torch.get_num_threads()
                torch.set_num_threads(1)
            self.users += 1
        try:
            yield
        finally:
            with self.lock:
                self.users -= 1
                if self.users == 0:
                    torch.set_num_threads(self.before)


single_thread = _SingleThread()
