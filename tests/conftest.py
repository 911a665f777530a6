"""Fixtures shared by the test modules."""

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one; bench/gpu_check.sh runs them)")


@pytest.fixture
def one_torch_thread():
    """Tiny models: one intra-op thread is faster here and immune to other processes on the
    shared cores. Modules opt in with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """The built-in corpus at size "small" (seed 0), built once per test session; its root folder
    holds timit_11/, libriphone/ and speaker/."""
    from hwml.corpus import ensure_corpus

    return ensure_corpus(root=tmp_path_factory.mktemp("hwml-cache") / "corpus-small", size="small", seed=0)


# --- a running app server (helper F: tests/test_app_api.py, tests/test_browser.py) -----------------

import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@dataclass
class AppServer:
    url: str
    runs_dir: Path
    checkpoints: Path
    log: Path
    max_upload_mb: int  # HWML_MAX_UPLOAD_MB: small here, so a test can go past it cheaply


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_app(small_corpus, tmp: Path, **env_changes):
    """`python app.py` on 127.0.0.1 and a free port, on the small built-in corpus, with its runs
    in `tmp`; `checkpoints` starts empty (tests may put run folders there). A generator: yields
    the AppServer, stops the server when resumed. `env_changes`: variables to set (a value of
    None removes the variable), e.g. a Space's SPACE_ID."""
    port = _free_port()
    max_upload_mb = 20
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HWML_RUNS_DIR": str(tmp / "runs"),
        "HWML_CORPUS_SIZE": "small",
        "HWML_CORPUS_DIR": str(small_corpus),
        "HWML_CHECKPOINTS_DIR": str(tmp / "checkpoints"),
        "HWML_MAX_RUN_SECONDS": "120",
        "HWML_ALLOW_LOCAL_PATHS": "1",
        "HWML_PRIVATE_RUNS": "1",  # visitors kept apart, as on a Space (tests check it), though on loopback
        "GRADIO_TEMP_DIR": str(tmp / "gradio"),
        "HWML_MAX_UPLOAD_MB": str(max_upload_mb),
        "GRADIO_HEARTBEAT_INTERVAL": "2",
    }  # a closed tab is noticed in seconds, not 15 s
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    log = tmp / "app.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "app.py")], cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app.py did not answer within 180 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield AppServer(
            url=url, runs_dir=tmp / "runs", checkpoints=tmp / "checkpoints", log=log, max_upload_mb=max_upload_mb
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def app_server(small_corpus, tmp_path_factory):
    """The app as a local server (local paths on, visitors kept apart), for the whole test session."""
    yield from serve_app(small_corpus, tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="module")
def space_server(small_corpus, tmp_path_factory):
    """The app as on a Hugging Face Space: SPACE_ID set, local paths and private runs left to their
    Space defaults (off, on), at most 5 files a request. One per test module that asks for it
    (tests/test_space_mode.py)."""
    yield from serve_app(
        small_corpus,
        tmp_path_factory.mktemp("space"),
        SPACE_ID="hwml-tests/space",
        HWML_ALLOW_LOCAL_PATHS=None,
        HWML_PRIVATE_RUNS=None,
        HWML_MAX_REQUEST_FILES=5,  # small, so a test goes past it cheaply
    )


SHIPPED_PHONEME = Path(__file__).resolve().parents[1] / "checkpoints" / "phoneme"


@pytest.fixture(scope="module")
def shipped_phoneme(app_server):
    """The repository's phoneme checkpoint as the app's shipped phoneme run, for one module only."""
    import shutil

    folder = app_server.checkpoints / "phoneme"
    shutil.copytree(SHIPPED_PHONEME, folder, ignore=shutil.ignore_patterns("resume.*", "confusion.*", "metrics.jsonl"))
    yield folder
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def sentence_clip(tmp_path_factory) -> dict:
    """A built-in corpus sentence (seed 1, one the shipped model never heard) as a WAV with its text."""
    from hwml.corpus.transcribed import write_transcribed

    return write_transcribed(tmp_path_factory.mktemp("sentence"), "small", seed=1, per_speaker=1, n_speakers=2)[-1]
