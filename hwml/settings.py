"""Every `HWML_*` environment variable, typed and documented once; and where the repository's files lie.

All are optional. Each is read when its function is called (a few modules keep a value read at
import: `hwml.audio.decode.MAX_SECONDS`, the `hwml.safeio` limits). A value that is not a number
where one is expected is a one-line HwmlError naming the variable. The README's "Settings" table
lists the same variables (tests/test_layout.py checks that it does). No Gradio and no torch here:
the app reads its settings before it imports either.
"""

from __future__ import annotations

import os
from pathlib import Path

from hwml.errors import HwmlError
from hwml.machine import usable_cores

PACKAGE = Path(__file__).resolve().parent
REPO = PACKAGE.parent  # in a clone, the repository: app.py, checkpoints/, assets/
SHIPPED = PACKAGE / "shipped"  # in an installed wheel, setup.py's copies of checkpoints/ and assets/


def shipped_folder(name: str) -> Path:
    """`checkpoints` or `assets`: the installed package's copy when there is one, else the clone's
    (an installed wheel has no repository around it; a clone has no hwml/shipped/)."""
    return SHIPPED / name if (SHIPPED / name).is_dir() else REPO / name


ASSETS = shipped_folder("assets")

# (variable, default in words, what it sets): the README's table
VARIABLES = (
    ("HWML_RUNS_DIR", "`./runs`", "where the app keeps each session's runs and uploads"),
    (
        "HWML_RUNS_DISK_MB",
        "1000",
        "disk budget of everything visitors cause (runs, uploads, extractions, caches, Gradio's cache)",
    ),
    (
        "HWML_CHECKPOINTS_DIR",
        "the clone's `checkpoints/` (installed: the package's)",
        "shipped models (read-only; also the default alignment model)",
    ),
    ("HWML_CACHE", "`~/.cache/hwml`", "built-in corpus and HW4 feature caches"),
    ("HWML_LOAD_WORKERS", "usable cores - 1 (1 to 8)", "processes that read a folder of 2,000+ feature files"),
    ("HWML_IMPORT_THREADS", "the cores, at most 8", "threads that featurise audio files during an import"),
    ("HWML_CORPUS_SIZE", "`default`", "which built-in corpus the app builds (`default` or `small`)"),
    ("HWML_CORPUS_DIR", "the cache", "an already built built-in corpus for the app"),
    ("HWML_MAX_TRAINING", "1", "training runs at once in the app (others queue, position shown)"),
    ("HWML_MAX_RUN_SECONDS", "600", "cap on one app training run"),
    ("HWML_ORPHAN_SECONDS", "30", "a queued run whose page stopped polling loses its place after this"),
    ("HWML_CONCURRENCY", "2", "other events served at once, each (Evaluate, Learn examples, ...)"),
    ("HWML_PREDICT_WORKERS", "the usable cores, at most 8", "predictions computed at once, both tasks together"),
    ("HWML_TIMINGS", "unset", "a file: each prediction appends its stage timings as a JSON line"),
    ("HWML_MAX_UPLOAD_MB", "200", "largest uploaded file"),
    (
        "HWML_ALLOW_LOCAL_PATHS",
        "on on loopback, off on a Space or the network",
        "typing a server folder path as a data source",
    ),
    ("HWML_MAX_AUDIO_SECONDS", "600", "longest audio file accepted"),
    ("HWML_MAX_FEATURE_FILE_BYTES", "512 MiB", "largest single `.pt`/`.npy` feature file"),
    ("HWML_MAX_ZIP_FILES", "100,000", "most files in an unpacked zip"),
    ("HWML_MAX_ZIP_BYTES", "8 GiB", "most bytes in an unpacked zip"),
    ("HWML_TENSORBOARD", "off", "`1`: every training run also writes a TensorBoard event log (needs `tensorboard`)"),
    ("HWML_MAX_TRAIN_MB", "4096", "estimated memory of one training run (weights, AdamW state, activations)"),
    ("HWML_MAX_STEP_GFLOP", "200", "estimated compute of one training step (about 5-10 s on 2 CPU cores)"),
    ("HWML_PRIVATE_RUNS", "on on a Space or the network, off on loopback", "each browser sees only its own runs"),
    (
        "HWML_UPLOAD_CACHE_SECONDS",
        "3600",
        "Gradio's cached uploads and returned files are deleted this long after they were made",
    ),
    ("HWML_MAX_REQUEST_FILES", "100", "most files in one request (Predict's feature files, enrolment clips)"),
    ("HWML_MAX_JSON_MB", "64", "largest JSON file read (a dataset's index, an enrolment file), refused unread"),
    ("HWML_RUNS_PER_ADDRESS", "3", "queued or running trainings per client address (where the Space passes one)"),
)


def _raw(name: str) -> str | None:
    """The variable's value, None when unset or blank."""
    raw = os.environ.get(name)
    return None if raw is None or not raw.strip() else raw.strip()


def _number(name: str, default, cast=float, minimum: float | None = None, positive: bool = False):
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = cast(raw)
    except ValueError:
        kind = "a whole number" if cast is int else "a number"
        raise HwmlError(f"environment variable {name}={raw!r}: expected {kind}") from None
    if positive and value <= 0:
        raise HwmlError(f"environment variable {name}={raw!r}: must be positive")
    if minimum is not None and value < minimum:
        raise HwmlError(f"environment variable {name}={raw!r}: must be at least {minimum:g}")
    return value


# --- where files live


def runs_dir() -> Path:
    return Path(_raw("HWML_RUNS_DIR") or Path.cwd() / "runs")


def runs_disk_bytes() -> int:
    return int(_number("HWML_RUNS_DISK_MB", 1000.0, minimum=0) * 2**20)


def upload_cache_seconds() -> int:
    """Age after which Gradio deletes its cached files (gr.Blocks(delete_cache)); also counted in
    the disk budget and pruned first past it (hwml.serve.disk)."""
    return int(_number("HWML_UPLOAD_CACHE_SECONDS", 3600, int, positive=True))


def gradio_cache_dir() -> Path:
    """Gradio's cache of uploaded and returned files: GRADIO_TEMP_DIR, else <temp>/gradio (Gradio's rule)."""
    import tempfile

    raw = os.environ.get("GRADIO_TEMP_DIR")
    return Path(raw) if raw and raw.strip() else Path(tempfile.gettempdir()) / "gradio"


def checkpoints_dir() -> Path:
    """The shipped models: `<dir>/phoneme`, `<dir>/speaker`."""
    return Path(_raw("HWML_CHECKPOINTS_DIR") or shipped_folder("checkpoints"))


def cache_dir() -> Path:
    return Path(_raw("HWML_CACHE") or Path.home() / ".cache" / "hwml")


def corpus_size() -> str:
    return _raw("HWML_CORPUS_SIZE") or "default"


def corpus_dir() -> Path | None:
    raw = _raw("HWML_CORPUS_DIR")
    return Path(raw) if raw else None


# --- how much runs at once


def load_workers() -> int:
    """Processes that load a big folder: one less than the usable cores (this process copies
    the chunks in), at most 8; on 2 cores that is this process alone (README: Benchmarks)."""
    return max(1, _number("HWML_LOAD_WORKERS", min(8, usable_cores() - 1), int))


def import_threads() -> int:
    return max(1, _number("HWML_IMPORT_THREADS", min(os.cpu_count() or 1, 8), int))


def max_training() -> int:
    return _number("HWML_MAX_TRAINING", 1, int, positive=True)


def max_run_seconds() -> float:
    return _number("HWML_MAX_RUN_SECONDS", 600.0, positive=True)


def orphan_seconds() -> float:
    return _number("HWML_ORPHAN_SECONDS", 30.0, positive=True)


def concurrency() -> int:
    return _number("HWML_CONCURRENCY", 2, int, positive=True)


def predict_workers() -> int:
    """One prediction worker per usable core, at most 8: each prediction runs torch on one
    thread, so that keeps every core busy without two predictions fighting over one."""
    return _number("HWML_PREDICT_WORKERS", min(8, usable_cores()), int, positive=True)


def timings_file() -> str | None:
    return _raw("HWML_TIMINGS")


# --- limits on what strangers send


def max_upload_bytes() -> int:
    return int(_number("HWML_MAX_UPLOAD_MB", 200.0, positive=True) * 2**20)


def allow_local_paths() -> bool:
    """Typing a server path is fine on your own machine, not on a shared server: off on a Space
    and off when Gradio listens on the network (a classroom LAN, where any visitor could probe
    the server's folders); on only on loopback off a Space, or when turned on explicitly."""
    raw = os.environ.get("HWML_ALLOW_LOCAL_PATHS")
    if raw is not None and raw.strip():
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return not on_space() and server_on_loopback()


def on_space() -> bool:
    """A Hugging Face Space sets SPACE_ID: many strangers share this server."""
    return "SPACE_ID" in os.environ


def server_on_loopback() -> bool:
    """Gradio listens on GRADIO_SERVER_NAME (default 127.0.0.1): loopback means only this machine."""
    name = (os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1").strip().lower()
    return name in ("127.0.0.1", "localhost", "::1") or name.startswith("127.")


def private_runs() -> bool:
    """Keep each browser's runs to itself: on by default on a Space or when the server listens
    on the network; off (one owner, every run on the machine visible) on a laptop's loopback."""
    raw = os.environ.get("HWML_PRIVATE_RUNS")
    if raw is not None and raw.strip():
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return on_space() or not server_on_loopback()


def runs_per_address() -> int:
    return _number("HWML_RUNS_PER_ADDRESS", 3, int, positive=True)


def max_audio_seconds() -> float:
    return _number("HWML_MAX_AUDIO_SECONDS", 600.0, positive=True)


def max_feature_file_bytes() -> int:
    return _number("HWML_MAX_FEATURE_FILE_BYTES", 512 * 2**20, int, positive=True)


def max_zip_files() -> int:
    return _number("HWML_MAX_ZIP_FILES", 100_000, int, positive=True)


def max_zip_bytes() -> int:
    return _number("HWML_MAX_ZIP_BYTES", 8 * 2**30, int, positive=True)


def tensorboard() -> bool:
    """Every run also writes a TensorBoard event log (as the setting tensorboard=1 asks one run)."""
    return (_raw("HWML_TENSORBOARD") or "").strip().lower() in ("1", "true", "yes", "on")


def max_train_bytes() -> int:
    """Budget of hwml.train.budget's memory estimate of one run: well under a 16 GB Space's memory."""
    return int(_number("HWML_MAX_TRAIN_MB", 4096.0, positive=True) * 2**20)


def max_step_gflop() -> float:
    """Budget of one training step's estimated compute: Stop and the time cap act between steps."""
    return _number("HWML_MAX_STEP_GFLOP", 200.0, positive=True)


def max_request_files() -> int:
    """Files one request may carry (each up to HWML_MAX_UPLOAD_MB): bounds a request's disk and memory."""
    return _number("HWML_MAX_REQUEST_FILES", 100, int, positive=True)


def max_json_bytes() -> int:
    return int(_number("HWML_MAX_JSON_MB", 64.0, positive=True) * 2**20)
