"""Which module serves a task kind: hwml.phoneme or hwml.speaker (the same functions, see DESIGN.md).

Its own small module so that the modules that score runs (hwml.evaluate) can find a task module
without importing hwml.workflow, which sits above them: imports then run one way only,
workflow -> evaluate -> tasks -> phoneme | speaker.
"""

from __future__ import annotations

from types import ModuleType

from hwml.errors import HwmlError

KINDS = ("phoneme", "speaker")


def task_module(kind: str, source=None) -> ModuleType:
    """hwml.phoneme or hwml.speaker. `source`: the file that named the task (a run's
    config.json), for the error message."""
    if kind == "phoneme":
        from hwml import phoneme

        return phoneme
    if kind == "speaker":
        from hwml import speaker

        return speaker
    raise HwmlError(f"{source + ': ' if source else ''}unknown task {kind!r}: expected one of {', '.join(KINDS)}")
