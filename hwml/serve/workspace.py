"""Where the app keeps its files: one folder per browser session, the shipped checkpoints beside.

Many browser sessions share one machine (a classroom Space), so every session gets its own
folder under one runs root (`HWML_RUNS_DIR`, default `./runs`): its run folders and its
uploads live there and nowhere else, and a session can list, open or delete only its own runs
plus the shipped ones (`checkpoints/<task>/`, read-only). Old runs and uploads are pruned,
oldest first, when the root grows past a disk budget (`HWML_RUNS_DISK_MB`); runs being written
are never touched. Where a run's data comes from is `hwml.serve.sources`.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hwml import settings
from hwml.api import TASK_KINDS
from hwml.errors import HwmlError
from hwml.runs.folder import is_run, read_config
from hwml.serve import disk
from hwml.serve.sources import BuiltinCorpus

log = logging.getLogger(__name__)


def session_folder_name(session_hash: str | None) -> str:
    """A folder name for a browser session: a hash, so no client string ever becomes a path."""
    if not session_hash:
        session_hash = "anonymous"
    return "s-" + hashlib.sha256(session_hash.encode("utf-8", "replace")).hexdigest()[:16]


@dataclass
class RunEntry:
    """One run a session may see: its own, or a shipped checkpoint."""

    key: str  # stable id for dropdowns: "shipped:<task>[/<name>]" or "run:<name>"
    path: Path
    task: str | None
    preset: str | None
    model: str | None
    data: str  # where its training data came from, in words
    best_valid_acc: float | None
    steps: int | None
    finished: bool
    shipped: bool
    modified: float

    @property
    def label(self) -> str:
        return self.label_for("en")

    def label_for(self, lang: str) -> str:
        """The run pickers' line for this run, in `lang` (hwml.i18n)."""
        from hwml.i18n import t

        acc = (
            f"{self.best_valid_acc:.1%}"
            if isinstance(self.best_valid_acc, (int, float))
            else t("run.no_accuracy", lang)
        )
        origin = t("run.shipped", lang) if self.shipped else self.path.name
        return f"{'★ ' if self.shipped else ''}{origin} · {self.preset or '?'} · {acc}"


def _describe_data(config: dict) -> str:
    for key in ("data", "data_source", "source"):
        value = config.get(key)
        if isinstance(value, dict):
            fmt = value.get("format") or value.get("kind") or ""
            root = value.get("root") or value.get("path") or ""
            name = Path(str(root)).name if root else ""
            return " · ".join(dict.fromkeys(part for part in (fmt, name) if part)) or "?"
        if isinstance(value, str) and value:
            return Path(value).name if "/" in value else value
    return "?"


def _listed(path: Path) -> bool:
    """A run folder the app lists (hwml.runs.folder.is_run), never through a symlink."""
    return is_run(path) and not path.is_symlink()


def _config(path: Path) -> dict:
    """config.json of a run for listing, {} while it is missing or unreadable (a run starting)."""
    try:
        return read_config(path)
    except (HwmlError, OSError):
        return {}


def _entry(path: Path, key: str, shipped: bool) -> RunEntry:
    config = _config(path)
    try:
        modified = max((p.stat().st_mtime for p in path.iterdir()), default=path.stat().st_mtime)
    except OSError:
        modified = 0.0
    return RunEntry(
        key=key,
        path=path,
        task=config.get("task"),
        preset=config.get("preset"),
        model=(config.get("model") or {}).get("name"),
        data=_describe_data(config),
        best_valid_acc=config.get("best_valid_acc"),
        steps=config.get("steps"),
        finished=bool(config.get("finished", False)),
        shipped=shipped,
        modified=modified,
    )


class Workspace:
    """The runs root with one folder per browser session, and the shipped checkpoints."""

    def __init__(self, root: Path, checkpoints: Path, disk_budget_bytes: int, corpus: BuiltinCorpus | None = None):
        self.root = Path(root).resolve()
        self.checkpoints = Path(checkpoints).resolve()
        self.disk_budget_bytes = int(disk_budget_bytes)
        self.corpus = corpus or BuiltinCorpus()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        # set by the app: paths in use now (hwml.serve.jobs.JobRegistry.in_use_paths, the page's
        # cached examples), never pruned; and Gradio's cache folder, counted in the budget
        self.in_use: Callable[[], set[Path]] = set
        self.gradio_cache: Path | None = None

    @classmethod
    def from_env(cls) -> Workspace:
        return cls(
            settings.runs_dir(), settings.checkpoints_dir(), settings.runs_disk_bytes(), BuiltinCorpus.from_env()
        )

    # --- folders ------------------------------------------------------------------------------
    def session_dir(self, session_hash: str | None) -> Path:
        return self.root / "sessions" / session_folder_name(session_hash)

    def _new_dir(self, parent: Path, prefix: str) -> Path:
        """A fresh, empty folder `<prefix><time>-<n>` under parent: unique across threads and
        restarts (a name taken by an earlier process is skipped)."""
        parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            while True:
                path = parent / f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}-{next(self._counter)}"
                try:
                    path.mkdir()
                    return path
                except FileExistsError:
                    continue

    def new_run_dir(self, session_hash: str | None, kind: str, preset: str) -> Path:
        """A fresh, unique run folder for this session (created empty)."""
        safe_preset = re.sub(r"[^A-Za-z0-9_-]", "", preset)[:24] or "run"
        return self._new_dir(self.session_dir(session_hash) / "runs", f"{kind}-{safe_preset}-")

    def new_upload_dir(self, session_hash: str | None) -> Path:
        return self._new_dir(self.session_dir(session_hash) / "uploads", "u")

    OUTPUTS_KEPT = 8  # a visitor's newest per-request outputs kept (Gradio has copies of older ones)

    def new_output_dir(self, session_hash: str | None) -> Path:
        """A fresh folder for one request's files (a predictions CSV, a saved roster): the
        visitor's older ones past OUTPUTS_KEPT go, so a burst of requests cannot fill the disk."""
        folder = self.session_dir(session_hash) / "outputs"
        disk.keep_newest(folder, self.OUTPUTS_KEPT - 1)
        return self._new_dir(folder, "o")

    def scratch_dir(self) -> Path:
        """The Learn tab's scratch folder (counted in the budget; emptied at start)."""
        return self.root / "scratch"

    def temp_dir(self) -> Path:
        """The app process's temporary folders (counted in the budget; emptied at start)."""
        return self.root / "tmp"

    def clear_leftovers(self) -> None:
        """At start: what a killed process left in scratch/ and tmp/ (nothing can be using it yet)."""
        for folder in (self.scratch_dir(), self.temp_dir()):
            disk.clear_folder(folder)
            folder.mkdir(parents=True, exist_ok=True)

    def used_bytes(self) -> int:
        return disk.used_bytes(self.root, self.gradio_cache)

    # --- runs a session may see ---------------------------------------------------------------
    def shipped_runs(self, kind: str | None = None) -> list[RunEntry]:
        entries = []
        for task in TASK_KINDS:
            if kind is not None and task != kind:
                continue
            folder = self.checkpoints / task
            if (folder / "config.json").is_file():
                entries.append(_entry(folder, f"shipped:{task}", shipped=True))
            elif folder.is_dir():
                for sub in sorted(folder.iterdir()):
                    if _listed(sub) and (sub / "config.json").is_file():
                        entries.append(_entry(sub, f"shipped:{task}/{sub.name}", shipped=True))
        for entry in entries:
            entry.task = entry.task or entry.key.split(":")[1].split("/")[0]
        return entries

    def session_runs(self, session_hash: str | None, kind: str | None = None) -> list[RunEntry]:
        folder = self.session_dir(session_hash) / "runs"
        if not folder.is_dir():
            return []
        entries = [_entry(p, f"run:{p.name}", shipped=False) for p in folder.iterdir() if _listed(p)]
        entries = [
            e for e in entries if kind is None or e.task == kind or (e.task is None and e.path.name.startswith(kind))
        ]
        return sorted(entries, key=lambda e: -e.modified)

    def visible_runs(self, session_hash: str | None, kind: str | None = None) -> list[RunEntry]:
        """This session's runs (newest first), then the shipped ones."""
        return self.session_runs(session_hash, kind) + self.shipped_runs(kind)

    def find_run(self, session_hash: str | None, key: str | None) -> RunEntry:
        """The run behind a dropdown key, looked up among the runs this session may see only."""
        if not key:
            raise HwmlError("choose a run first")
        for entry in self.visible_runs(session_hash):
            if entry.key == key:
                return entry
        raise HwmlError(f"run {key!r} is not one of your runs (deleted or pruned?)")

    START_FROM_NONE = "none"

    def start_from_choices(self, session_hash: str | None, kind: str, lang: str = "en") -> list[tuple[str, str]]:
        """(label, key) for the Train panel's "Start from": nothing (train from scratch), then
        every run of this task that has weights (the session's own, newest first, then shipped)."""
        from hwml.i18n import t

        runs = [
            e
            for e in self.visible_runs(session_hash, kind)
            if e.task == kind and (e.path / "model.safetensors").is_file()
        ]
        return [(t("run.start_from_none", lang), self.START_FROM_NONE)] + [(e.label_for(lang), e.key) for e in runs]

    def start_from_path(self, session_hash: str | None, kind: str, key: str | None) -> Path | None:
        """The run folder to fine-tune from (None: from scratch), only among the runs this session may see."""
        if not key or key == self.START_FROM_NONE:
            return None
        entry = self.find_run(session_hash, key)
        if entry.task != kind:
            raise HwmlError(f"start from: {entry.path.name} is a {entry.task} run, not a {kind} run")
        return entry.path

    def delete_run(self, session_hash: str | None, key: str, active: set[Path] = frozenset()) -> str:
        from hwml.runs.folder import delete_run

        entry = self.find_run(session_hash, key)
        if entry.shipped:
            raise HwmlError("shipped checkpoints cannot be deleted from the app")
        if entry.path.resolve() in active:
            raise HwmlError(f"{entry.path.name} is still training: stop it first")
        delete_run(entry.path)
        return entry.path.name

    # --- disk budget --------------------------------------------------------------------------
    def prune(
        self, active: set[Path] = frozenset(), keep: set[Path] = frozenset(), owner: str | None = None
    ) -> list[Path]:
        """Free the disk down to the budget (hwml.serve.disk: Gradio's old cached copies first,
        then the finished runs, uploads and outputs of `owner` (who caused the overflow), then
        everyone else's, oldest first). What is in use (`in_use()`, `active`) or in `keep` is never
        touched. Returns what went."""
        return disk.prune(
            self.root,
            self.disk_budget_bytes,
            owner_session=None if owner is None else self.session_dir(owner),
            protected={*self.in_use(), *active, *keep},
            gradio_cache=self.gradio_cache,
        )

    def watch_disk(self, interval: float = disk.WATCH_SECONDS) -> threading.Thread:
        """Prune every `interval` seconds in a daemon thread: growth no event prunes for (Gradio's
        cache of uploads, a run's checkpoints) is brought back under the budget within seconds."""

        def loop():
            while True:
                time.sleep(interval)
                try:
                    self.prune()
                except Exception:  # a vanished folder mid-walk, a full disk: try again next round
                    log.exception("disk budget check failed")

        thread = threading.Thread(target=loop, name="hwml-disk-watch", daemon=True)
        thread.start()
        return thread

    def make_room(self, owner: str | None, new: Path) -> None:
        """After `owner` added `new` (an extracted upload): prune for it; when it alone does not
        fit, it goes again and the visitor is told (HwmlError)."""
        self.prune(owner=owner, keep={new})
        used = self.used_bytes()
        if used > self.disk_budget_bytes:
            size = disk.folder_bytes(new)
            disk.clear_folder(new)
            new.rmdir()
            raise HwmlError(
                f"your upload unpacks to {size / 2**20:,.1f} MB: the server's disk budget "
                f"({self.disk_budget_bytes / 2**20:,.0f} MB, in use by running jobs and caches) has no room for it"
            )
