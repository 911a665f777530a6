"""What the importers share: folders walked in a fixed order, many files featurised at once,
bad files failed on or skipped, utterance ids, splits from TRAIN/TEST folder names."""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from tqdm import tqdm

from hwml import settings
from hwml.data.common import offsets_from_lengths
from hwml.data.phones import PHONES_39
from hwml.data.types import FrameSet
from hwml.errors import HwmlError
from hwml.machine import single_thread


class BadFiles:
    """Fail on the first bad file, or (skip_bad) print it, remember it and go on."""

    def __init__(self, skip_bad: bool):
        self.skip_bad, self.skipped = skip_bad, []

    def __call__(self, file: Path, err: HwmlError) -> None:
        msg = str(err) if str(file.parent) in str(err) else f"{file}: {err}"
        if not self.skip_bad:
            raise HwmlError(f"{msg} (use --skip-bad to skip unreadable files)")
        self.skipped.append({"file": str(file), "error": msg})
        tqdm.write(f"skipped {msg}", file=sys.stderr)


_STOP: contextvars.ContextVar = contextvars.ContextVar("hwml_import_stop", default=None)


@contextlib.contextmanager
def stop_imports_on(event):
    """Imports run in this thread end (HwmlError "stopped") at the next file once `event` is set:
    the app's Stop and its time share reach an import of 100,000 files within seconds."""
    token = _STOP.set(event)
    try:
        yield
    finally:
        _STOP.reset(token)


def featurise_all(items: list, featurise, desc: str, progress: bool):
    """Yield (item, featurise(item) or the HwmlError it raised), in order, several files at once.

    Decoding (libsndfile) and torch ops release the GIL, so threads keep every core busy, each
    running torch on one intra-op thread (`audio.single_thread`). Only 2 x threads files are in
    flight, so a bad file stops the import without featurising the rest first (`pool.map`
    would queue them all). HWML_IMPORT_THREADS overrides the thread count.
    """

    def attempt(item):
        try:
            return featurise(item)
        except HwmlError as e:
            return e

    workers = settings.import_threads()
    with (
        single_thread(),
        ThreadPoolExecutor(workers) as pool,
        tqdm(total=len(items), desc=desc, unit="file", disable=not progress) as bar,
    ):
        todo, running = iter(items), []
        for item in itertools.islice(todo, 2 * workers):
            running.append((item, pool.submit(attempt, item)))
        stop = _STOP.get()
        while running:
            if stop is not None and stop.is_set():
                for _item, pending in running:
                    pending.cancel()
                raise HwmlError("import stopped before it finished")
            item, future = running.pop(0)
            result = future.result()
            nxt = next(todo, None)
            if nxt is not None:
                running.append((nxt, pool.submit(attempt, nxt)))
            bar.update()
            yield item, result


def walk(root: Path):
    """(folder, sorted file names) for every folder below root; hidden files and __MACOSX left out."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        yield Path(folder), sorted(f for f in files if not f.startswith("."))


def check_paths(src: Path, out: Path) -> None:
    if not src.is_dir():
        raise HwmlError(f"{src}: not a folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HwmlError(f"{out}: already exists and is not an empty folder")


def safe_id(*parts: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", "_".join(p for p in parts if p).lower()).strip("-") or "utt"


def split_of(rel_dirs: tuple[str, ...]) -> str | None:
    return next((d.lower() for d in rel_dirs if d.lower() in ("train", "test")), None)


def frameset(utts: list[tuple[str, torch.Tensor, torch.Tensor]]) -> FrameSet:
    return FrameSet(
        feats=torch.cat([f for _, f, _ in utts]),
        labels=torch.cat([y for _, _, y in utts]),
        offsets=offsets_from_lengths([len(f) for _, f, _ in utts]),
        utt_ids=[u for u, _, _ in utts],
        class_names=list(PHONES_39),
        stacked=1,
    )
