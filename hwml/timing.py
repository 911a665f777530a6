"""Where a prediction's time goes: named stages (decode, features, model, figure, CSV) timed
inside one request, written as a JSON line per request when `HWML_TIMINGS` names a file.

`bench/bench_burst.py` reads those lines to split a burst's latency into the stages and the
rest (the framework: upload, queueing, pre- and post-processing). Outside a `request()` block
`stage()` only costs a context-variable lookup, so the CLI and tests pay nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
import time
from collections import defaultdict

from hwml import settings

_current: contextvars.ContextVar[dict | None] = contextvars.ContextVar("hwml_timing", default=None)
_write = threading.Lock()


@contextlib.contextmanager
def stage(name: str):
    """Add the block's wall time to stage `name` of the request being timed, if any."""
    stages = _current.get()
    if stages is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        stages[name] += time.perf_counter() - t0


@contextlib.contextmanager
def request(endpoint: str):
    """Time one request's stages; on exit append {"endpoint", "total", "stages"} to
    $HWML_TIMINGS (one JSON line; nothing when unset)."""
    path = settings.timings_file()
    if not path or _current.get() is not None:
        yield
        return
    stages: dict[str, float] = defaultdict(float)
    token = _current.set(stages)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        total = time.perf_counter() - t0
        _current.reset(token)
        line = json.dumps(
            {"endpoint": endpoint, "total": round(total, 6), "stages": {k: round(v, 6) for k, v in stages.items()}}
        )
        with _write, open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
