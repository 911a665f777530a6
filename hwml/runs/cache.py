"""The one cache of loaded models: every run's model is loaded once and kept, so no request pays
for reading a weights file and building a model (`hwml.api.preload_runs` loads and warms the
shipped ones in the background as soon as the app serves its page).

`loaded_run` is what prediction of both tasks calls, in the app and the CLI alike, and what
speaker enrolment uses (`hwml.speaker.identify.open_model` keeps its weights' fingerprint in
`derived`). A run is reloaded when its weights or config change on disk (a run still training
saves better weights as it goes); the few most recently used stay in memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from hwml.runs.checkpoint import load_run
from hwml.runs.folder import CONFIG, WEIGHTS

KEEP = 6  # models kept in memory (each a few MB; a class uses the shipped two and a few runs)


@dataclass
class LoadedRun:
    """A run folder's model (eval mode, read only: one copy serves every thread) and config.json,
    and what callers computed once from this version of it (`derived`, e.g. a fingerprint)."""

    model: object
    config: dict
    derived: dict = field(default_factory=dict)

    def __post_init__(self):
        self.pair = (self.model, self.config)  # what loaded_run returns: the same tuple every time


_models: OrderedDict = OrderedDict()
_lock = threading.Lock()
_loading: dict = {}


def _key(run_dir: Path) -> tuple:
    """The folder and the change stamps of its weights and config (stat only: microseconds)."""
    stamps = []
    for name in (WEIGHTS, CONFIG):
        try:
            st = (run_dir / name).stat()
            stamps.append((st.st_mtime_ns, st.st_size))
        except OSError:
            stamps.append(None)
    return (str(run_dir.resolve()), *stamps)


def cached_run(run_dir) -> LoadedRun:
    """The LoadedRun of a run folder, loaded once per version of its files."""
    run_dir = Path(run_dir)
    key = _key(run_dir)
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        gate = _loading.setdefault(key, threading.Lock())
    with gate:  # one thread loads a given version; the others wait for it instead of loading it again
        with _lock:
            if key in _models:
                return _models[key]
        try:
            loaded = LoadedRun(*load_run(run_dir))
        finally:  # loaded or not (a damaged run is its caller's error), this version's gate is done
            with _lock:
                _loading.pop(key, None)
        with _lock:
            _models[key] = loaded
            for old in [k for k in _models if k[0] == key[0] and k != key]:
                del _models[old]  # an older version of the same run
            while len(_models) > KEEP:
                _models.popitem(last=False)
        return loaded


def loaded_run(run_dir) -> tuple:
    """(model in eval mode, config) of a run folder, loaded once per version of its files.
    Callers only read the model (inference under no_grad): one copy serves every thread."""
    return cached_run(run_dir).pair
