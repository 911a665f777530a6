"""Where a run's data comes from in the app: the built-in corpus (generated once in the
background, then cached), a course folder on this machine (only when running locally:
`HWML_ALLOW_LOCAL_PATHS`, off on a Space), a zip of a course folder, or an audio folder (zip or
path) that `hwml.importers` turns into course format. Each ends as a folder
`hwml.data.load_dataset` reads.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

from hwml import settings
from hwml.api import TASK_KINDS
from hwml.errors import HwmlError
from hwml.serve.redact import visitor_path, visitor_text

log = logging.getLogger(__name__)

SOURCE_BUILTIN = "Built-in corpus"
SOURCE_PATH = "Course folder on this machine"
SOURCE_ZIP = "Course folder (zip upload)"
SOURCE_AUDIO = "Your audio folder (zip or path)"
SOURCES = (SOURCE_BUILTIN, SOURCE_PATH, SOURCE_ZIP, SOURCE_AUDIO)
# the built-in corpus's sub-folder for each task (and, for phonemes, each course format)
BUILTIN_FOLDERS = {"phoneme": {"libriphone": "libriphone", "timit_11": "timit_11"}, "speaker": {"hw4": "speaker"}}


class BuiltinCorpus:
    """The built-in corpus, generated in a background thread on first use and then cached.

    `status()` says where it stands in words for the UI; `path()` waits for it.
    """

    def __init__(self, size: str = "default", root: Path | None = None, seed: int = 0):
        self.size, self.root, self.seed = size, root, seed
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._path: Path | None = None
        self._error: str | None = None
        self._fraction, self._message = 0.0, "not generated yet"

    @classmethod
    def from_env(cls) -> BuiltinCorpus:
        return cls(size=settings.corpus_size(), root=settings.corpus_dir())

    def start(self) -> None:
        """Begin generating (or finding the cached copy) in the background; idempotent."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._build, name="hwml-corpus", daemon=True)
            self._thread.start()

    def _progress(self, fraction: float, message: str) -> None:
        self._fraction, self._message = float(fraction), str(message)

    def _build(self) -> None:
        from hwml.corpus import ensure_corpus

        try:
            self._path = Path(ensure_corpus(root=self.root, size=self.size, seed=self.seed, progress=self._progress))
        except HwmlError as exc:
            self._error = str(exc)
        except Exception as exc:  # e.g. the speech synthesiser failed to load: say so, keep the app up
            log.exception("built-in corpus generation failed")
            self._error = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self._done.set()

    def status(self, lang: str = "en") -> str:
        """One line on the corpus, in `lang` (hwml.i18n; the generator's own progress note stays English)."""
        from hwml.i18n import t

        if self._path is not None:
            return t("corpus.ready", lang, size=self.size, path=visitor_path(str(self._path)))
        if self._error is not None:
            return t("corpus.failed", lang, error=visitor_text(self._error))
        if self._thread is None:
            return t("corpus.first_use", lang)
        return t("corpus.generating", lang, size=self.size, pct=f"{self._fraction:.0%}", message=self._message)

    @property
    def ready(self) -> bool:
        return self._path is not None

    def path(self, timeout: float | None = None, on_wait=lambda message: None) -> Path:
        """The corpus root, generating it first if need be (reporting progress to on_wait)."""
        self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.wait(0.5):
            on_wait(self.status())
            if deadline is not None and time.monotonic() > deadline:
                raise HwmlError("the built-in corpus is still being generated: try again in a moment")
        if self._error is not None:
            raise HwmlError(f"the built-in corpus is not available: {self._error}")
        return self._path


def resolve_source(
    workspace,
    session_hash: str | None,
    kind: str,
    source: str,
    *,
    builtin_format: str | None = None,
    path: str | None = None,
    upload: str | None = None,
):
    """Check a Train or Evaluate panel's data choice now (fast; errors as HwmlError) and return a
    `prepare(report) -> Path` for the training thread, which does the slow part (generating
    the corpus, importing audio) and reports progress through `report(message)`."""
    if kind not in TASK_KINDS:
        raise HwmlError(f"unknown task {kind!r}")
    if source == SOURCE_BUILTIN:
        formats = BUILTIN_FOLDERS[kind]
        fmt = builtin_format if builtin_format in formats else next(iter(formats))
        sub = formats[fmt]
        corpus = workspace.corpus

        def prepare_builtin(report) -> Path:
            return corpus.path(on_wait=report) / sub

        return prepare_builtin
    if source == SOURCE_PATH:
        folder = _local_path(path)
        _check_course_folder(folder, kind)
        return lambda report: folder
    if source == SOURCE_ZIP:
        folder = _extract(workspace, session_hash, upload, "a zip of a course folder")
        try:
            _check_course_folder(folder, kind)
        except HwmlError:
            discard_upload(workspace, folder)  # an extraction that is no course folder goes at once
            raise

        def prepare_zip(report) -> Path:
            return folder

        prepare_zip.upload_dir = upload_folder(workspace, folder)
        return prepare_zip
    if source == SOURCE_AUDIO:
        if upload:
            src = _extract(workspace, session_hash, upload, "a zip of an audio folder")
            out = upload_folder(workspace, src) / "imported"
        else:
            src = _local_path(path)
            out = workspace.new_upload_dir(session_hash) / "imported"

        def prepare_import(report) -> Path:
            from hwml import importers

            report(f"importing audio from {src.name} into course format (this can take a while)")
            if kind == "phoneme":
                importers.import_phoneme(src, out)
            else:
                importers.import_speaker(src, out, test_fraction=0.2)
            if upload:  # the unpacked audio is done with: only the course folder made from it stays
                shutil.rmtree(out.parent / "src", ignore_errors=True)
            return out

        prepare_import.upload_dir = out.parent
        return prepare_import
    raise HwmlError(f"unknown data source {source!r}: choose one of {', '.join(SOURCES)}")


def _local_path(path: str | None) -> Path:
    if not settings.allow_local_paths():
        raise HwmlError("folder paths on the server are turned off here: upload a zip instead")
    if not path or not path.strip():
        raise HwmlError("type the path of a folder on this machine")
    folder = Path(path.strip()).expanduser()
    if not folder.is_dir():
        raise HwmlError(f"{folder}: no such folder")
    return folder.resolve()


def _extract(workspace, session_hash: str | None, upload: str | None, what: str) -> Path:
    from hwml.safeio import safe_extract_zip

    if not upload:
        raise HwmlError(f"upload {what} first")
    upload = Path(upload)
    if upload.suffix.lower() != ".zip":
        raise HwmlError(f"{upload.name}: expected {what} (.zip)")
    upload_dir = workspace.new_upload_dir(session_hash)
    try:  # refused before unpacking when it could never fit the disk budget
        folder = safe_extract_zip(
            upload, upload_dir / "src", max_bytes=min(settings.max_zip_bytes(), workspace.disk_budget_bytes)
        )
    except HwmlError:
        shutil.rmtree(upload_dir, ignore_errors=True)
        raise
    workspace.make_room(session_hash, upload_dir)  # prunes for it; refuses it when it alone does not fit
    return folder


def upload_folder(workspace, path: Path) -> Path | None:
    """The upload folder (`sessions/<s>/uploads/u...`) that path lies in, None when it lies in none."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        if folder.parent.name == "uploads" and workspace.root in folder.parents:
            return folder
    return None


def discard_upload(workspace, path: Path | None) -> None:
    """Delete the upload folder path lies in (an extraction done with or of no use); nothing
    outside the visitor's uploads is ever touched."""
    folder = upload_folder(workspace, path) if path is not None else None
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def discard_prepared(workspace, prepare) -> None:
    """Delete what resolving a data source unpacked (its `upload_dir`), when the run that was to
    use it never starts (refused) or the evaluation that used it is done."""
    discard_upload(workspace, getattr(prepare, "upload_dir", None))


def _check_course_folder(folder: Path, kind: str) -> None:
    from hwml.data import detect_format

    detect_format(folder, kind=kind)  # HwmlError naming the folder when it holds no `kind` data
