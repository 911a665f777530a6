"""App latency benchmark: prints one JSON line per measurement.

1. cold start: `python app.py` to its first HTTP 200 (goal <= 8 s on 2 cores);
2. Start to first curve point: a training request to the first streamed update that carries a
   training step, i.e. the first point of the live curve (goal <= 2 s);
3. Stop to the training thread's end (the engine's stop flag; goal <= 1 s, best weights kept);
4. audio upload to prediction: a 5 s WAV uploaded and predicted, phonemes (phone strip +
   segments) and speakers (top-5), as the Predict panels do (goal <= 1 s).

2 and 4 are measured through gradio_client against a real server on 127.0.0.1 (the browser's
own drawing time is not included), 3 in process with hwml.serve.jobs. Uses the small built-in corpus and
a temp runs folder; a run is trained for a few steps first so Predict has a model.

    python bench/bench_app.py [--quick] [--repeats N] [--url URL] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def emit(**record) -> None:
    print(json.dumps(record), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(tmp: Path, corpus: Path) -> tuple[subprocess.Popen, str, float]:
    """Launch app.py; return (process, url, seconds to the first HTTP 200)."""
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HWML_RUNS_DIR": str(tmp / "runs"),
        "HWML_CORPUS_SIZE": "small",
        "HWML_CORPUS_DIR": str(corpus),
        "GRADIO_TEMP_DIR": str(tmp / "gradio"),
    }
    log = open(tmp / f"app-{port}.log", "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "app.py")], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/"
    while time.perf_counter() - t0 < 180:
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited with {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return proc, url, time.perf_counter() - t0
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("app.py did not answer within 180 s")


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def train_args(kind: str, preset: str, max_steps: int) -> tuple:
    return (
        "Built-in corpus",
        "libriphone" if kind == "phoneme" else "hw4",
        "",
        None,
        preset,
        max_steps,
        60,
        0,
        0,
        0,
        20,
        "",
    )


def first_curve_point(client, kind: str, preset: str) -> float:
    """Seconds from submitting a run to the first update carrying a training step; then cancel."""
    t0 = time.perf_counter()
    job = client.submit(*train_args(kind, preset, 100000), api_name=f"/{kind}_train")
    seconds = None
    for out in job:
        points = out[2]["data"] if out[2] else []
        if any(row[0] > 0 for row in points):  # a real point (the NaN placeholders sit at step 0)
            seconds = time.perf_counter() - t0
            break
    job.cancel()
    client.predict(api_name=f"/{kind}_stop")
    return seconds


def stop_latency(kind: str, preset: str, corpus: Path, runs: Path) -> float:
    """Seconds from Stop to the end of a running training thread (real engine, in process)."""
    from hwml.serve.jobs import JobLimits, JobRegistry

    registry = JobRegistry(JobLimits(max_training=1))
    data = corpus / ("libriphone" if kind == "phoneme" else "speaker")
    job = registry.submit(
        "bench",
        kind,
        run_dir=runs / f"stop-{kind}",
        prepare=lambda report: data,
        preset=preset,
        overrides={},
        max_steps=100000,
        max_seconds=120,
        seed=0,
    )
    for view in job.stream(interval=0.1):
        if view.step >= 3:
            break
    t0 = time.perf_counter()
    job.stop()
    job.join(timeout=60)
    return time.perf_counter() - t0


def five_second_wav(path: Path) -> Path:
    import numpy as np
    import soundfile as sf

    from hwml.corpus.espeak import synthesize

    syn = synthesize(
        "Five seconds of speech: the quick brown fox jumps over the lazy dog, "
        "and the dog keeps sleeping in the warm sun.",
        "en-us",
    )
    wave = np.asarray(syn.wave, dtype=np.float32)
    n = 5 * syn.sample_rate
    wave = np.pad(wave, (0, max(0, n - len(wave))))[:n]
    sf.write(path, wave, syn.sample_rate)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one repeat of each, no warm-up calls (a CI smoke run: figures not comparable)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--url", help="measure 2 and 3 against this running app instead of a fresh one")
    parser.add_argument("--corpus", type=Path, help="the small built-in corpus folder (default: the cached one)")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats

    from gradio_client import Client, handle_file

    from hwml.corpus import ensure_corpus

    with tempfile.TemporaryDirectory(prefix="hwml-bench-app-") as tmp_name:
        tmp = Path(tmp_name)
        corpus = args.corpus or ensure_corpus(size="small")
        starts = []
        for _ in range(repeats):
            proc, url, seconds = start_app(tmp, corpus)
            starts.append(seconds)
            stop_app(proc)
        emit(
            bench="app_cold_start",
            seconds_median=round(statistics.median(starts), 3),
            seconds=[round(s, 3) for s in starts],
            goal_s=8.0,
            ok=statistics.median(starts) <= 8.0,
        )

        for kind in ("phoneme", "speaker"):
            times = [stop_latency(kind, "medium", corpus, tmp / "runs") for _ in range(repeats)]
            emit(
                bench="app_stop_to_run_ended",
                task=kind,
                preset="medium",
                seconds_median=round(statistics.median(times), 3),
                seconds=[round(t, 3) for t in times],
                goal_s=1.0,
                ok=statistics.median(times) <= 1.0,
            )

        proc, url = (None, args.url) if args.url else start_app(tmp, corpus)[:2]
        try:
            client = Client(url, verbose=False)
            for kind, preset in (("phoneme", "medium"), ("speaker", "medium")):
                if not args.quick:
                    first_curve_point(client, kind, preset)  # warm: data loaded, modules imported
                times = [first_curve_point(client, kind, preset) for _ in range(repeats)]
                times = [t for t in times if t is not None]
                emit(
                    bench="app_start_to_first_curve_point",
                    task=kind,
                    preset=preset,
                    seconds_median=round(statistics.median(times), 3),
                    seconds=[round(t, 3) for t in times],
                    goal_s=2.0,
                    ok=statistics.median(times) <= 2.0,
                )

            wav = five_second_wav(tmp / "five_seconds.wav")
            for kind, preset in (("phoneme", "logreg"), ("speaker", "simple")):
                run = client.predict(*train_args(kind, preset, 5 if args.quick else 20), api_name=f"/{kind}_train")[4][
                    "run"
                ]
                if not args.quick:
                    client.predict(f"run:{run}", handle_file(str(wav)), api_name=f"/{kind}_predict_audio")  # warm
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    client.predict(f"run:{run}", handle_file(str(wav)), api_name=f"/{kind}_predict_audio")
                    times.append(time.perf_counter() - t0)
                emit(
                    bench="app_audio_upload_to_prediction",
                    task=kind,
                    clip_s=5.0,
                    seconds_median=round(statistics.median(times), 3),
                    seconds=[round(t, 3) for t in times],
                    goal_s=1.0,
                    ok=statistics.median(times) <= 1.0,
                )
        finally:
            if proc is not None:
                stop_app(proc)


if __name__ == "__main__":
    main()
