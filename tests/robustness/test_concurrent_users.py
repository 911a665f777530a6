"""Many users, one small machine: a local app server (`python app.py`, started by the
`app_server` fixture of tests/conftest.py) answers a burst of concurrent predictions correctly
while a training run is in progress; two sessions that start training at once get two separate,
correct runs (the second queued behind the first under the CPU concurrency limit); hostile
uploads come back as messages and the session goes on. Prints the load figures."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from hwml.api import predict_run  # noqa: E402

BUILTIN = "Built-in corpus"
N_REQUESTS = 24
CONCURRENCY = 24


def train_args(preset: str, max_steps: int, valid_every: int = 20, seed: int = 0, max_seconds: float = 60) -> tuple:
    """The Train panel's inputs, in order (see tests/test_app_api.py)."""
    return (BUILTIN, "libriphone", "", None, preset, max_steps, max_seconds, 0, 0, seed, valid_every, "")


def run_folder(server, name: str) -> Path:
    found = list(server.runs_dir.glob(f"sessions/*/runs/{name}"))
    assert len(found) == 1, name
    return found[0]


def events_of(run_dir: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]


def last_step(run_dir: Path) -> int:
    try:
        return max((e["step"] for e in events_of(run_dir)), default=0)
    except FileNotFoundError:
        return 0


def watch(job, views: list, stamps: dict) -> None:
    """Drain a streaming train job in a thread: every state it reports, with first-seen times."""
    for out in job:
        view = out[4]
        views.append(view)
        stamps.setdefault(view["state"], time.monotonic())


def wait_until(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def url(app_server):
    return app_server.url


def test_burst_of_predictions_while_training(app_server, url, tmp_path):
    # session A trains a quick model, then fires the burst; session B trains meanwhile
    a = Client(url, verbose=False)
    run = a.predict(*train_args("logreg", 40), api_name="/phoneme_train")[4]
    assert run["state"] == "finished", run
    run_dir = run_folder(app_server, run["run"])

    b = Client(url, verbose=False)
    b_views, b_stamps = [], {}
    b_job = b.submit(*train_args("medium", 100_000, valid_every=25, max_seconds=110), api_name="/phoneme_train")
    threading.Thread(target=watch, args=(b_job, b_views, b_stamps), daemon=True).start()
    wait_until(
        lambda: b_views and b_views[-1]["state"] == "running" and b_views[-1]["step"] > 0,
        90,
        "the training run to start",
    )
    b_dir = run_folder(app_server, b_views[-1]["run"])

    rng = np.random.default_rng(7)
    files, expected = [], []
    for i in range(N_REQUESTS):  # different lengths and values: a mixed-up answer cannot pass
        path = tmp_path / f"utt{i:02d}.npy"
        np.save(path, rng.standard_normal((20 + 7 * i, 39)).astype(np.float32))
        predict_run(run_dir, [path], tmp_path / f"expected{i:02d}.csv")
        files.append(path)
        expected.append((tmp_path / f"expected{i:02d}.csv").read_text())

    def one(i: int) -> tuple[float, bool, str]:
        t0 = time.perf_counter()
        try:
            summary, _, _, out_csv = a.predict(
                f"run:{run['run']}", [handle_file(str(files[i]))], api_name="/phoneme_predict_files"
            )
            ok = Path(out_csv).read_text() == expected[i] and f"{20 + 7 * i} frames" in summary
            return time.perf_counter() - t0, ok, ""
        except Exception as e:  # counted as an error, reported below
            return time.perf_counter() - t0, False, f"{type(e).__name__}: {e}"

    steps_before = last_step(b_dir)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(one, range(N_REQUESTS)))
    wall = time.perf_counter() - t0
    steps_after = last_step(b_dir)
    b_state = b_views[-1]["state"]

    b.predict(api_name="/phoneme_stop")
    wait_until(lambda: b_views and b_views[-1]["state"] in ("stopped", "finished", "failed"), 30, "the stop")

    latencies = sorted(r[0] for r in results)
    errors = [r[2] or "wrong answer" for r in results if not r[1]]
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
    figures = {
        "requests": N_REQUESTS,
        "concurrency": CONCURRENCY,
        "errors": len(errors),
        "p50_s": round(p50, 3),
        "p95_s": round(p95, 3),
        "max_s": round(latencies[-1], 3),
        "wall_s": round(wall, 2),
        "training_steps_during_burst": steps_after - steps_before,
    }
    print("\nLOAD TEST " + json.dumps(figures))
    assert not errors, errors[:3]
    assert b_state == "running" and steps_after > steps_before, "training did not progress during the burst"
    assert b_views[-1]["state"] == "stopped"


def test_two_sessions_start_training_at_once(app_server, url):
    """Same settings and seed in two sessions at the same moment: two run folders, each complete
    and uncorrupted, and (training being deterministic) the very same weights."""
    clients = [Client(url, verbose=False) for _ in range(2)]
    views, stamps = [[], []], [{}, {}]
    jobs = [c.submit(*train_args("logreg", 60, valid_every=20, seed=3), api_name="/phoneme_train") for c in clients]
    threads = [threading.Thread(target=watch, args=(j, v, s), daemon=True) for j, v, s in zip(jobs, views, stamps)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert all(v and v[-1]["state"] == "finished" for v in views), [v[-1] if v else None for v in views]
    names = [v[-1]["run"] for v in views]
    dirs = [run_folder(app_server, n) for n in names]
    assert dirs[0] != dirs[1] and dirs[0].parent.parent != dirs[1].parent.parent  # two sessions' folders

    for d in dirs:
        events = events_of(d)
        assert [e["event"] for e in events].count("start") == 1 and events[-1]["event"] == "end"
        steps = [e["step"] for e in events if e["event"] == "step"]
        assert steps == sorted(set(steps)) and steps[-1] == 60
        config = json.loads((d / "config.json").read_text())
        assert config["finished"] and config["steps"] == 60
    w0, w1 = (load_file(str(d / "model.safetensors")) for d in dirs)
    assert w0.keys() == w1.keys() and all(torch.allclose(w0[k], w1[k], atol=1e-5) for k in w0)

    # one training slot on a CPU machine: the second run waited for the first (no overlap)
    first, second = sorted(range(2), key=lambda i: stamps[i]["running"])
    limit = int(os.environ.get("HWML_MAX_TRAINING", "1"))
    if limit == 1:
        assert stamps[second]["running"] >= stamps[first]["finished"] - 1.0, (stamps, "runs overlapped")


def test_hostile_uploads_are_messages_and_the_session_goes_on(app_server, url, tmp_path):
    import zipfile

    marker = tmp_path / "PAYLOAD_RAN"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch '{marker}'",))

    client = Client(url, verbose=False)
    run = client.predict(*train_args("logreg", 20), api_name="/phoneme_train")[4]["run"]
    evil = tmp_path / "evil.pt"
    torch.save({"x": torch.zeros(3, 39), "p": Payload()}, evil)
    bomb = tmp_path / "course.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("timit_11/train_11.npy", b"\x93NUMPY")
        zf.writestr("../../escape.txt", b"pwned")
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros((5, 41), np.float32))
    for path, words in ((evil, "not a plain tensor"), (bomb, "outside the folder"), (wide, "41 columns")):
        with pytest.raises(AppError, match=words) as e:
            client.predict(f"run:{run}", [handle_file(str(path))], api_name="/phoneme_predict_files")
        assert "Traceback" not in str(e.value)
    with pytest.raises(AppError, match="outside the folder"):
        client.predict(
            "Course folder (zip upload)",
            "libriphone",
            "",
            handle_file(str(bomb)),
            "logreg",
            5,
            10,
            0,
            0,
            0,
            0,
            "",
            api_name="/phoneme_train",
        )
    not_audio = tmp_path / "speech.wav"
    not_audio.write_text("this is not audio\n" * 40)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    for path, words in ((not_audio, "not a readable audio file"), (empty, "empty")):
        with pytest.raises(AppError, match=words):
            client.predict(f"run:{run}", handle_file(str(path)), api_name="/phoneme_predict_audio")
    assert not marker.exists()
    assert not list(app_server.runs_dir.parent.rglob("escape.txt"))
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((9, 39), np.float32))
    summary = client.predict(f"run:{run}", [handle_file(str(good))], api_name="/phoneme_predict_files")[0]
    assert "9 frames" in summary
