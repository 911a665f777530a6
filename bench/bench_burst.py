"""A whole class at once: N simultaneous Predict requests against a freshly started app.

Each client uploads a different real 2-20 s clip (real voices: the clips in `assets/clips`,
speechocean762 and FSDD, strung together into distinct recordings) to the shipped models'
Predict endpoints at the same moment, half phoneme and half speaker, as a class does when the
teacher says "now record yourselves". For every burst size it prints one JSON line: errors,
p50, p95, max (seconds, upload to answer, as `gradio_client` sees it) and the server's own
per-request breakdown (decode, features, model, figure, CSV, and the rest: framework and
queueing), read from the timings the app writes when `HWML_TIMINGS` is set.

Also measured on the same fresh server: the cold start (first HTTP 200), the first prediction
after start (after `--grace` seconds), and a request alone while a training run is in progress;
then bursts while that run trains. `--baseline REV` runs the same measurements against the app
as it was at git revision REV (checked out into a temp folder, same virtualenv), so the two
designs are compared in one run on one machine.

    python bench/bench_burst.py [--sizes 10 50 100] [--baseline REV] [--no-training] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_app import emit, free_port  # noqa: E402  (the app benchmark's JSON lines and ports)

CLIPS = REPO / "assets" / "clips"
# gradio_client gives up on an HTTP call after 5 s; a browser waits. Clients here wait up to 60 s per
# call, so a slow answer counts as slow, and only a refused or dropped request counts as an error.
BROWSER_LIKE = {"timeout": 60.0}
GOALS = {"p95_50_s": 5.0, "alone_during_training_s": 2.0, "first_after_start_s": 1.0, "cold_start_s": 8.0}


def make_clips(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """n distinct recordings of 2-20 s made of the real clips in assets/clips: each strings a
    random draw of them together with short pauses, until it reaches its drawn length."""
    import numpy as np
    import soundfile as sf

    sources = []
    for path in sorted(CLIPS.glob("*.flac")):
        wave, rate = sf.read(path, dtype="float32")
        sources.append((wave if wave.ndim == 1 else wave.mean(1), rate))
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        target = rng.uniform(2.0, 20.0)
        parts, seconds = [], 0.0
        while seconds < target:
            wave, rate = sources[rng.randrange(len(sources))]
            pause = np.zeros(int(rate * rng.uniform(0.1, 0.4)), dtype=np.float32)
            parts += [wave * rng.uniform(0.6, 1.0), pause]
            seconds += (len(wave) + len(pause)) / rate
        clip = np.concatenate(parts)[: int(target * 16000)]
        path = folder / f"clip{i:03d}.wav"
        sf.write(path, clip, 16000)
        out.append(path)
    return out


class App:
    """app.py of one source tree (this one, or a checked-out revision) on a free local port."""

    def __init__(self, source: Path, tmp: Path, name: str, corpus: Path | None):
        self.tmp = tmp / name
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.timings = self.tmp / "timings.jsonl"
        env = {
            **os.environ,
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(self.port),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HWML_RUNS_DIR": str(self.tmp / "runs"),
            "HWML_CHECKPOINTS_DIR": str(REPO / "checkpoints"),
            "GRADIO_TEMP_DIR": str(self.tmp / "gradio"),
            "HWML_TIMINGS": str(self.timings),
            "PYTHONPATH": str(source),
        }
        if corpus is not None:
            env.update(HWML_CORPUS_SIZE="small", HWML_CORPUS_DIR=str(corpus))
        self.log = open(self.tmp / "app.log", "wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, str(source / "app.py")], cwd=self.tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        while time.perf_counter() - t0 < 180:
            if self.proc.poll() is not None:
                raise SystemExit(f"app.py exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    if r.status == 200:
                        self.cold_start = time.perf_counter() - t0
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("app.py did not answer within 180 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (Linux /proc): what a
        request costs the machine, unlike its latency, does not depend on other load."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def read_timings(self) -> list[dict]:
        if not self.timings.is_file():
            return []
        rows = []
        for line in self.timings.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return rows


def predict_once(client, kind: str, clip: Path):
    from gradio_client import handle_file

    args = (f"shipped:{kind}", handle_file(str(clip))) + (("",) if kind == "phoneme" else ())
    return client.predict(*args, api_name=f"/{kind}_predict_audio")


def open_page(url: str, warm_session: bool = True):
    """A client with its session opened, as a browser's page load opens it (the load events run
    with the session: Gradio builds its per-session state then, not at the first Predict).
    gradio_client runs no load events, so a no-op call (Stop with nothing training) stands in."""
    from gradio_client import Client

    client = Client(url, verbose=False, httpx_kwargs=BROWSER_LIKE)
    if warm_session:
        client.predict(api_name="/phoneme_stop")
    return client


def burst(app: App, clips: list[Path], timeout: float, warm_session: bool = True) -> dict:
    """len(clips) clients, each with its own connection and session, press Predict together."""
    from concurrent.futures import ThreadPoolExecutor

    n, url = len(clips), app.url
    # connect first, a few at a time, as pages open over a minute: the burst is the Predict press
    with ThreadPoolExecutor(4) as pool:
        clients = list(pool.map(lambda _: open_page(url, warm_session), range(n)))
    gate = threading.Barrier(n)
    seconds: list = [None] * n
    errors: list = [None] * n

    def press(i):
        kind = "phoneme" if i % 2 == 0 else "speaker"
        gate.wait()
        t0 = time.perf_counter()
        try:
            predict_once(clients[i], kind, clips[i])
            seconds[i] = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - a failed request is what this counts
            errors[i] = f"{type(exc).__name__}: {str(exc)[:120]}"

    threads = [threading.Thread(target=press, args=(i,), daemon=True) for i in range(n)]
    cpu0 = app.cpu_seconds()
    t_start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, timeout - (time.perf_counter() - t_start)))
    server_cpu = app.cpu_seconds() - cpu0
    for i, t in enumerate(threads):
        if t.is_alive() and errors[i] is None and seconds[i] is None:
            errors[i] = f"no answer within {timeout:.0f} s"
    for c in clients:
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass
    done = sorted(s for s in seconds if s is not None)
    return {
        "clients": n,
        "errors": sum(e is not None for e in errors),
        "error_samples": [e for e in errors if e][:3],
        "p50_s": round(statistics.median(done), 3) if done else None,
        "p95_s": round(done[min(len(done) - 1, int(0.95 * len(done)))], 3) if done else None,
        "max_s": round(done[-1], 3) if done else None,
        "server_cpu_ms_per_request": round(1000 * server_cpu / n, 1),
    }


def breakdown(rows: list[dict]) -> dict:
    """Mean milliseconds per stage over the given server timing records."""
    if not rows:
        return {}
    stages = sorted({k for r in rows for k in r.get("stages", {})})
    out = {s: round(1000 * statistics.mean(r.get("stages", {}).get(s, 0.0) for r in rows), 1) for s in stages}
    out["server_total"] = round(1000 * statistics.mean(r["total"] for r in rows), 1)
    return out


def start_training(url: str):
    """A medium phoneme run on the built-in corpus, submitted through the app's own Train endpoint;
    returns (client, job) once its first curve point has arrived."""
    from gradio_client import Client

    client = Client(url, verbose=False, httpx_kwargs=BROWSER_LIKE)
    args = ("Built-in corpus", "libriphone", "", None, "medium", 100000, 300, 0, 0, 0, 20, "")
    job = client.submit(*args, api_name="/phoneme_train")
    t0 = time.perf_counter()
    for out in job:
        points = out[2]["data"] if out[2] else []
        if any(row[0] > 0 for row in points) or time.perf_counter() - t0 > 120:
            break
    return client, job


def measure(
    label: str,
    source: Path,
    tmp: Path,
    clips: list[Path],
    sizes: list[int],
    grace: float,
    training: bool,
    corpus: Path | None,
    timeout: float,
) -> None:
    from gradio_client import Client

    app = App(source, tmp, label, corpus if training else None)
    try:
        emit(bench="burst_cold_start", design=label, seconds=round(app.cold_start, 3), goal_s=GOALS["cold_start_s"])
        time.sleep(grace)
        client = Client(app.url, verbose=False, httpx_kwargs=BROWSER_LIKE)
        t0 = time.perf_counter()
        predict_once(client, "phoneme", clips[0])
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        predict_once(client, "speaker", clips[1])
        first_speaker = time.perf_counter() - t0
        alone = []
        for i in range(2, 6):
            t0 = time.perf_counter()
            predict_once(client, "phoneme" if i % 2 == 0 else "speaker", clips[i])
            alone.append(time.perf_counter() - t0)
        emit(
            bench="burst_first_prediction",
            design=label,
            grace_s=grace,
            phoneme_s=round(first, 3),
            speaker_s=round(first_speaker, 3),
            alone_warm_s=round(statistics.median(alone), 3),
            goal_s=GOALS["first_after_start_s"],
        )
        for n in sizes:
            before = len(app.read_timings())
            result = burst(app, clips[:n], timeout)
            emit(
                bench="burst",
                design=label,
                training=False,
                **result,
                breakdown_ms=breakdown(app.read_timings()[before:]),
            )
        if training:
            trainer, job = start_training(app.url)
            try:
                alone = []
                for i in range(4):
                    t0 = time.perf_counter()
                    predict_once(client, "phoneme" if i % 2 == 0 else "speaker", clips[i])
                    alone.append(time.perf_counter() - t0)
                emit(
                    bench="burst_alone_during_training",
                    design=label,
                    seconds_median=round(statistics.median(alone), 3),
                    seconds=[round(s, 3) for s in alone],
                    goal_s=GOALS["alone_during_training_s"],
                )
                for n in sizes:
                    before = len(app.read_timings())
                    result = burst(app, clips[:n], timeout)
                    emit(
                        bench="burst",
                        design=label,
                        training=True,
                        **result,
                        breakdown_ms=breakdown(app.read_timings()[before:]),
                    )
            finally:
                job.cancel()
                trainer.predict(api_name="/phoneme_stop")
        client.close()
    finally:
        app.stop()


def model_batching(clips: list[Path]) -> None:
    """Would sharing one model call between concurrent requests pay? For each shipped model:
    the clips' model time one by one vs in one batch (1 thread, in process), and how far the
    batched scores are from the same clips scored alone (float32 kernels block differently for
    different batch sizes, so a shared call changes the last digits of a served CSV)."""
    import torch

    from hwml.audio.params import FeatureParams
    from hwml.data.types import FrameSet
    from hwml.machine import single_thread
    from hwml.phoneme import predict as phoneme
    from hwml.runs.cache import loaded_run
    from hwml.speaker import predict as speaker

    def timed(fn, repeats=3):
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t0)
        return best, out

    with single_thread():
        model, config = loaded_run(REPO / "checkpoints" / "phoneme")
        params = FeatureParams.from_dict(config["features"])
        frames = [phoneme.file_frames(c, config, params) for c in clips]
        lengths = [len(f) for f in frames]
        offsets = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
        merged = FrameSet(
            torch.cat([f.feats for f in frames]), None, offsets, [c.stem for c in clips], frames[0].class_names, 1
        )
        alone_s, alone = timed(lambda: [phoneme.predict_logits(model, config, f) for f in frames])
        batch_s, batched = timed(lambda: phoneme.predict_logits(model, config, merged).split(lengths))
        diff = max(float((a - b).abs().max()) for a, b in zip(alone, batched))
        emit(
            bench="burst_model_batching",
            task="phoneme",
            clips=len(clips),
            alone_ms=round(1000 * alone_s, 1),
            batched_ms=round(1000 * batch_s, 1),
            speedup=round(alone_s / batch_s, 2),
            max_abs_logit_diff=diff,
        )

        model, config = loaded_run(REPO / "checkpoints" / "speaker")
        feats = [speaker.load_clip(c, config.get("features")) for c in clips]
        alone_s, alone = timed(lambda: [speaker.predict_logits(model, config, [x])[0] for x in feats])
        batch_s, batched = timed(lambda: speaker.predict_logits(model, config, feats))
        diff = max(float((a - b).abs().max()) for a, b in zip(alone, batched))
        emit(
            bench="burst_model_batching",
            task="speaker",
            clips=len(clips),
            alone_ms=round(1000 * alone_s, 1),
            batched_ms=round(1000 * batch_s, 1),
            speedup=round(alone_s / batch_s, 2),
            max_abs_logit_diff=diff,
        )


def checkout(rev: str, tmp: Path) -> Path:
    """The tree of git revision `rev` in a temp folder (git archive: no worktree bookkeeping)."""
    folder = tmp / f"rev-{rev[:12]}"
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--baseline", metavar="REV", help="also measure the app at this git revision")
    parser.add_argument("--no-training", action="store_true", help="skip the bursts during a training run")
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds between the first HTTP 200 and the first request"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="a burst's request unanswered after this is an error"
    )
    parser.add_argument("--quick", action="store_true", help="one burst of 4, no training, 2 s grace (a CI smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.no_training, args.grace = [4], True, 2.0

    with tempfile.TemporaryDirectory(prefix="hwml-bench-burst-") as tmp_name:
        tmp = Path(tmp_name)
        clips = make_clips(tmp / "clips", max(max(args.sizes), 6))
        corpus = None
        if not args.no_training:
            from hwml.corpus import ensure_corpus

            corpus = ensure_corpus(size="small")
        if not args.quick:
            model_batching(clips[:16])
        designs = [("current", REPO)]
        if args.baseline:
            designs.append((f"baseline@{args.baseline}", checkout(args.baseline, tmp)))
        for label, source in designs:
            measure(label, source, tmp, clips, args.sizes, args.grace, not args.no_training, corpus, args.timeout)


if __name__ == "__main__":
    main()
