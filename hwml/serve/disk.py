"""The app's disk budget (`HWML_RUNS_DISK_MB`) over everything a visitor causes, and who pays first.

Counted: the runs root (every visitor's runs, uploads and their extractions, HW4 feature caches of
uploads, evaluation copies, per-request outputs; `scratch/` of the Learn tab; `tmp/`, where the
app's process keeps its temporary folders) and Gradio's cache of uploaded and returned files
(`GRADIO_TEMP_DIR`) when it lies outside the root. Past the budget, in this order:

1. Gradio's cached files older than `CACHE_MIN_AGE` (copies: each visitor has theirs);
2. the finished runs, uploads and outputs of the visitor whose action caused the overflow, their
   oldest first (one visitor's big upload must not delete the work of the class);
3. everyone else's, oldest first.

Never touched: anything in use (a running job's run folder, the upload its data comes from, the
run it fine-tunes from) or kept by the caller. Everything here is plain file walking: no torch.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

GROUPS = ("runs", "uploads", "evaluations", "outputs")  # a visitor's folders under sessions/<s>/
CACHE_MIN_AGE = 120.0  # seconds: a younger cached upload may be the one a request is reading now
WATCH_SECONDS = 10.0  # the app checks the budget this often (between the prunes its events make)


def folder_bytes(path: Path) -> int:
    """Bytes of the files under path (links not followed; a vanishing file counts 0)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _inside(path: Path, others: Iterable[Path]) -> bool:
    """True when path is one of others, holds one of them, or lies inside one."""
    for other in others:
        if path == other or path in other.parents or other in path.parents:
            return True
    return False


def _items(session: Path, protected: set[Path]) -> list[tuple[float, Path]]:
    """(mtime, folder) of a visitor's prunable folders: each run, upload, evaluation and output."""
    items = []
    for group in GROUPS:
        folder = session / group
        if not folder.is_dir():
            continue
        for item in folder.iterdir():
            if item.is_symlink() or not item.is_dir() or _inside(item.resolve(), protected):
                continue
            try:
                items.append((item.stat().st_mtime, item))
            except OSError:
                continue
    return sorted(items, key=lambda t: t[0])


def _cache_files(cache: Path | None, now: float, protected: set[Path]) -> list[tuple[float, Path]]:
    """Gradio's cached files old enough to go, oldest first; protected ones (the page's examples
    and default values, Gradio's own `keep_in_cache`) stay."""
    if cache is None or not cache.is_dir():
        return []
    files = []
    for root, _dirs, names in os.walk(cache):
        for name in names:
            path = Path(root, name)
            try:
                mtime = path.lstat().st_mtime
            except OSError:
                continue
            if now - mtime > CACHE_MIN_AGE and path.resolve() not in protected:
                files.append((mtime, path))
    return sorted(files, key=lambda t: t[0])


def used_bytes(root: Path, gradio_cache: Path | None) -> int:
    """What the budget counts: the runs root, plus Gradio's cache when it lies outside it."""
    total = folder_bytes(root) if root.is_dir() else 0
    if gradio_cache is not None and gradio_cache.is_dir() and not _inside(gradio_cache.resolve(), {root.resolve()}):
        total += folder_bytes(gradio_cache)
    return total


def prune(
    root: Path,
    budget: int,
    *,
    owner_session: Path | None = None,
    protected: set[Path] = frozenset(),
    gradio_cache: Path | None = None,
) -> list[Path]:
    """Free the disk down to `budget` bytes in the module docstring's order; returns what went."""
    total = used_bytes(root, gradio_cache)
    if total <= budget:
        return []
    protected = {Path(p).resolve() for p in protected}
    removed: list[Path] = []
    for _mtime, path in _cache_files(gradio_cache, time.time(), protected):
        if total <= budget:
            return removed
        try:
            size = path.lstat().st_size
            path.unlink()
        except OSError:
            continue
        total -= size
        removed.append(path)
    sessions = root / "sessions"
    own = _items(owner_session, protected) if owner_session is not None and owner_session.is_dir() else []
    others = []
    if sessions.is_dir():
        for session in sessions.iterdir():
            if owner_session is None or session.resolve() != owner_session.resolve():
                others += _items(session, protected)
    for _mtime, item in own + sorted(others, key=lambda t: t[0]):
        if total <= budget:
            break
        size = folder_bytes(item)
        shutil.rmtree(item, ignore_errors=True)
        total -= size
        removed.append(item)
        log.info("pruned %s (%d bytes) to stay within the disk budget", item, size)
    return removed


def clear_folder(folder: Path) -> None:
    """Empty a folder of leftovers (a killed process's temporary files), keeping the folder."""
    if not folder.is_dir():
        return
    for item in folder.iterdir():
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)


def keep_newest(folder: Path, count: int) -> None:
    """Delete all but the `count` newest sub-folders of folder (a visitor's per-request outputs:
    Gradio has copied each into its cache by the time the next request comes)."""
    if not folder.is_dir():
        return
    subs = sorted((p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()), key=lambda p: p.stat().st_mtime)
    for old in subs[: max(0, len(subs) - count)]:
        shutil.rmtree(old, ignore_errors=True)
