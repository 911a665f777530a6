"""What this machine offers a process: the CPU cores it may run on."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (a container's share, not the host's count); the app's
    prediction workers and the big-folder loader size themselves from it."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
