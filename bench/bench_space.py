"""A soak of a public Space: honest and hostile visitors against a fresh server in Space mode.

The bench starts `python app.py` on 127.0.0.1 as a Hugging Face Space runs it (`SPACE_ID` set, so
local paths are off and visitors are kept apart; each visitor's client address comes in
`X-Forwarded-For`, as the Space's proxy sends it), then plays for `--minutes`:

- `--visitors` honest visitors (default 30), each its own session and address: Predict (an uploaded
  real clip to a shipped model, phoneme or speaker, every few seconds), one training run (the
  built-in corpus, logistic regression: seconds of work, queued behind the app's one slot), one
  Evaluate (a shipped model on the built-in corpus), one enrolment (Who is speaking?) and a reload
  every minute or so (the page and its config again, then the visitor's runs listed: an API
  visitor's identity is its session; the browser's lasting token is tests/test_browser_identity.py's);
- 3 hostile ones: a queue flooder (40 sessions behind one address, each starting the longest run the
  settings allow, again and again), a maximal-settings one (every bound at its top, past them, and the
  biggest run the price allows) and an uploader (files over the upload cap, a zip bomb, a zip that
  escapes its folder, a pickle that runs code, too many files in one request, junk audio).

All in one process: asyncio and Gradio's HTTP API (`/gradio_api/call/<name>`), no browser, no
gradio_client threads, so the load is the server's, not the bench's. Printed (JSON lines, then a
summary): honest errors (each with its message), Predict p50/p95 (upload to answer), each honest
training's wait for its slot against the wait the page showed it (the queue's estimate, documented
as an upper bound), peak disk (runs root + Gradio's cache) against `HWML_RUNS_DISK_MB`, peak RSS of
the server against a stated ceiling, and the server's CPU seconds beside the wall clock.

    python bench/bench_space.py [--visitors 30] [--minutes 10] [--quick]   # --quick: 8 visitors, 2 min
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import pickle
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_app import emit, free_port  # noqa: E402  (the app benchmark's JSON lines and ports)

from hwml.serve.disk import folder_bytes  # noqa: E402

CLIPS = sorted((REPO / "assets" / "clips").glob("*.flac"))
BUILTIN = "Built-in corpus"
DISK_MB = 300  # the bench server's HWML_RUNS_DISK_MB
UPLOAD_MB = 20  # its HWML_MAX_UPLOAD_MB
REQUEST_FILES = 20  # its HWML_MAX_REQUEST_FILES
TRAIN_MB = 4096  # HWML_MAX_TRAIN_MB (the default): one run's priced memory
RSS_CEILING_MB = TRAIN_MB + 2048  # one run at its budget + the app, both shipped models and Gradio
WAIT_SLACK_S = 5.0  # a poll interval and the stream's latency on top of the queue's estimate
GOALS = {"honest_errors": 0, "predict_p95_s": 5.0}


class Api:
    """Gradio's HTTP API for one visitor: its session and its client address."""

    def __init__(self, http, url: str, address: str, info: dict):
        self.http, self.url, self.info = http, url, info
        self.session = uuid.uuid4().hex[:12]
        self.headers = {"X-Forwarded-For": address}

    def fit(self, api: str, values: list) -> list:
        """The values for an endpoint's parameters (the API leaves out State inputs): pad with defaults."""
        params = self.info.get("named_endpoints", {}).get(f"/{api}", {}).get("parameters", [])
        values = list(values)[: len(params)] if params else list(values)
        for param in params[len(values) :]:
            values.append(param.get("parameter_default"))
        return values

    async def upload(self, name: str, data: bytes) -> dict:
        """Upload a file as the page does; returns the FileData to pass, or raises RuntimeError."""
        r = await self.http.post(
            f"{self.url}gradio_api/upload", files=[("files", (name, data))], headers=self.headers, timeout=120
        )
        if r.status_code != 200:
            raise RuntimeError(f"upload refused: HTTP {r.status_code} {r.text[:120]}")
        return {"path": r.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}

    async def call(self, api: str, values: list, on_update=None, timeout: float = 900) -> list:
        """Call an endpoint and wait for its answer (streamed updates to on_update); RuntimeError
        carrying the app's message when it answers with an error."""
        r = await self.http.post(
            f"{self.url}gradio_api/call/{api}",
            json={"data": self.fit(api, values), "session_hash": self.session},
            headers=self.headers,
            timeout=60,
        )
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        event_id = r.json()["event_id"]
        event = None
        async with self.http.stream(
            "GET", f"{self.url}gradio_api/call/{api}/{event_id}", headers=self.headers, timeout=timeout
        ) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    payload = json.loads(line[5:].strip() or "null")
                    if event == "generating" and on_update is not None:
                        on_update(payload)
                    elif event == "complete":
                        return payload
                    elif event == "error":
                        raise RuntimeError(str(payload))
        raise RuntimeError("the stream ended without an answer")


def train_values(preset="logreg", steps=40, seconds=30, extra="", source=BUILTIN, upload=None) -> list:
    return [source, "libriphone", "", upload, preset, steps, seconds, 0, 0, 0, 20, extra, "none"]


def wait_estimate(message: str) -> float | None:
    """The "about M:SS" (or "about N s") the queue showed, in seconds."""
    m = re.search(r"about (\d+):(\d\d)", message or "")
    if m:
        return int(m.group(1)) * 60 + int(m.group(2))
    m = re.search(r"about (\d+(?:\.\d+)?) ?s", message or "")
    return float(m.group(1)) if m else None


class Soak:
    def __init__(self, url: str, info: dict, deadline: float, clips: list[bytes], max_run: float):
        self.url, self.info, self.deadline, self.clips, self.max_run = url, info, deadline, clips, max_run
        self.honest_errors: list[str] = []
        self.predict_s: list[float] = []
        self.trainings: list[dict] = []
        self.counts = {k: 0 for k in ("predict", "train", "evaluate", "enrol", "reload")}
        self.hostile = {"refused": 0, "accepted": 0, "notes": []}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    async def honest(self, http, i: int) -> None:
        address = f"10.1.{i // 200}.{i % 200 + 1}"
        # Gradio's HTTP API streams one session's messages on one stream, so calls at the same time
        # need sessions of their own: the visitor's training streams in a second one (a second tab)
        api, trainer = Api(http, self.url, address, self.info), Api(http, self.url, address, self.info)
        rng = random.Random(i)
        await asyncio.sleep(rng.uniform(0, min(20.0, self.left() / 4)))
        duration = self.left()
        plan = {  # seconds from now at which each once-only action is due
            "train": rng.uniform(0.05, 0.5) * duration,
            "evaluate": rng.uniform(0.1, 0.8) * duration,
            "enrol": rng.uniform(0.1, 0.8) * duration,
        }
        start, next_reload, tasks = time.monotonic(), time.monotonic() + rng.uniform(30, 75), []
        while self.left() > 5:
            now = time.monotonic()
            due = [k for k, t in plan.items() if now - start >= t]
            try:
                if "train" in due:
                    plan.pop("train")
                    tasks.append(asyncio.create_task(self.train(trainer)))
                elif "evaluate" in due:
                    plan.pop("evaluate")
                    await api.call("phoneme_evaluate", ["shipped:phoneme", BUILTIN, "", None, "test"])
                    self.counts["evaluate"] += 1
                elif "enrol" in due:
                    plan.pop("enrol")
                    clip = await api.upload("me.flac", rng.choice(self.clips))
                    await api.call("speaker_who_enrol", ["shipped:speaker", f"visitor {i}", clip, None])
                    self.counts["enrol"] += 1
                elif now >= next_reload:
                    next_reload = now + rng.uniform(45, 75)
                    await self.reload(api, trainer)
                else:
                    await self.predict(api, rng)
            except RuntimeError as exc:
                self.honest_errors.append(f"visitor {i}: {exc}"[:300])
            await asyncio.sleep(rng.uniform(3, 8))
        for task in tasks:  # a training still queued at the end: given the run cap twice over, then dropped
            try:
                await asyncio.wait_for(task, timeout=max(0.0, self.left()) + 2 * self.max_run)
            except TimeoutError:
                pass

    async def predict(self, api: Api, rng: random.Random) -> None:
        kind = rng.choice(["phoneme", "speaker"])
        t0 = time.monotonic()
        clip = await api.upload("clip.flac", rng.choice(self.clips))
        values = [f"shipped:{kind}", clip] + ([""] if kind == "phoneme" else [])
        out = await api.call(f"{kind}_predict_audio", values, timeout=120)
        self.predict_s.append(time.monotonic() - t0)
        self.counts["predict"] += 1
        if not out or not out[0]:
            raise RuntimeError(f"{kind} predict: empty answer")

    async def reload(self, api: Api, trainer: Api) -> None:
        """The page and its config again, then the runs listed: the finished one must be there."""
        for path in ("", "config"):
            r = await api.http.get(f"{self.url}{path}", headers=api.headers, timeout=60)
            if r.status_code != 200:
                raise RuntimeError(f"reload: GET /{path} HTTP {r.status_code}")
        if any(t["session"] == trainer.session and t.get("state") is None for t in self.trainings):
            return self.count("reload")  # the trainer's session is streaming its run: list it later
        listing = await trainer.call("runs_list", [None])
        mine = [t["run"] for t in self.trainings if t["session"] == trainer.session and t.get("state") == "finished"]
        rows = (listing[0] or {}).get("data", []) if listing else []
        listed = {str(row[0]) for row in rows}
        if any(run not in listed for run in mine):
            raise RuntimeError(f"reload: own finished runs {mine} not all listed")
        self.count("reload")

    def count(self, what: str) -> None:
        self.counts[what] += 1

    async def train(self, api: Api) -> None:
        record = {"session": api.session, "estimate": None, "queued": False}
        self.trainings.append(record)
        t0 = time.monotonic()

        def update(outputs):
            latest = outputs[4] if len(outputs) > 4 and isinstance(outputs[4], dict) else {}
            state = record["last_state"] = latest.get("state") or record.get("last_state")
            if state == "queued":
                record["queued"] = True
                est = wait_estimate(latest.get("message", ""))
                if est is not None and record["estimate"] is None:
                    record["estimate"] = est
            elif state in ("preparing", "running") and "wait" not in record:
                record["wait"] = time.monotonic() - t0
            record["run"] = latest.get("run") or record.get("run")

        try:
            out = await api.call("phoneme_train", train_values(), on_update=update, timeout=1800)
            update(out)
            latest = out[4] if len(out) > 4 and isinstance(out[4], dict) else {}
            record["state"] = latest.get("state") or record.get("last_state")
            self.counts["train"] += 1
            if record["state"] != "finished":
                raise RuntimeError(f"training ended {record['state']}")
        except RuntimeError as exc:
            record["state"] = "error"
            self.honest_errors.append(f"training of {api.session}: {exc}"[:300])

    # --- hostile visitors ------------------------------------------------------------------------
    def refused(self, ok: bool, what: str) -> None:
        self.hostile["refused" if ok else "accepted"] += 1
        if not ok:
            self.hostile["notes"].append(what)

    async def flooder(self, http) -> None:
        """Many sessions behind one address, each asking for the longest run allowed, again and again."""
        sessions = [Api(http, self.url, "203.0.113.66", self.info) for _ in range(40)]
        running = []
        while self.left() > 10:
            for api in sessions:
                if self.left() < 10:
                    break
                task = asyncio.create_task(self.flood_one(api))
                running.append(task)
                await asyncio.sleep(0.2)
            await asyncio.sleep(10)
        for task in running:
            task.cancel()

    async def flood_one(self, api: Api) -> None:
        admitted = []

        def update(outputs):  # the first streamed view: the run was admitted (queued or running)
            if not admitted:
                admitted.append(1)
                self.hostile["flood_admitted"] = self.hostile.get("flood_admitted", 0) + 1

        try:
            await api.call(
                "phoneme_train", train_values("medium", 100_000_000, 1_000_000), on_update=update, timeout=self.left()
            )
            self.hostile["flood_runs_done"] = self.hostile.get("flood_runs_done", 0) + 1
        except RuntimeError as exc:
            self.refused(True, str(exc))
        except Exception:  # noqa: BLE001 - cancelled at the end or timed out: not a refusal, not an error
            pass

    async def maximal(self, http) -> None:
        api = Api(http, self.url, "198.51.100.9", self.info)
        extras = [
            "d_model=65536, depth=1000",
            "concat_nframes=100001",
            "batch_size=1000000000",
            "eval_batch=100000000",
            "log_every=1, log_every_s=0",
            "d_model=1024, depth=24, ff_dim=8192, heads=32, batch_size=65536, concat_nframes=101",
        ]
        while self.left() > 10:
            for extra in extras:
                try:
                    await api.call("phoneme_train", train_values("medium", 100_000_000, 1_000_000, extra), timeout=30)
                    self.refused(False, f"maximal settings accepted and finished: {extra}")
                except RuntimeError as exc:  # the one-line refusal (a bound, the price, one run at a time)
                    self.refused(True, str(exc))
                except Exception:  # noqa: BLE001 - still streaming after 30 s: it was accepted
                    self.refused(False, f"maximal settings accepted: {extra}")
                    await api.call("phoneme_stop", [])
            await asyncio.sleep(5)

    async def uploader(self, http, hostile_files: dict[str, bytes]) -> None:
        api = Api(http, self.url, "192.0.2.44", self.info)
        while self.left() > 10:
            try:
                await api.upload("huge.npy", b"\0" * ((UPLOAD_MB + 5) * 2**20))
                self.refused(False, "an upload over the cap was stored")
            except RuntimeError as exc:
                self.refused("413" in str(exc), str(exc))
            for name, data in hostile_files.items():
                try:
                    file = await api.upload(name, data)
                    if name.endswith(".zip"):
                        await api.call("phoneme_train", train_values(source="Course folder (zip upload)", upload=file))
                    elif name.endswith(".pt"):
                        await api.call("phoneme_predict_files", ["shipped:phoneme", [file]])
                    else:
                        await api.call("phoneme_predict_audio", ["shipped:phoneme", file, ""])
                    self.refused(False, f"{name} was accepted")
                except RuntimeError as exc:
                    self.refused(True, str(exc))
            try:
                files = [await api.upload(f"f{i}.npy", NPY_39) for i in range(REQUEST_FILES + 1)]
                await api.call("phoneme_predict_files", ["shipped:phoneme", files])
                self.refused(False, "too many files in one request accepted")
            except RuntimeError as exc:
                self.refused("over the limit" in str(exc), str(exc))
            await asyncio.sleep(5)


def npy(rows: int, cols: int) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.zeros((rows, cols), np.float32))
    return buf.getvalue()


NPY_39 = npy(20, 39)


def hostile_files() -> dict[str, bytes]:
    class Payload:
        def __reduce__(self):
            return (os.system, ("touch /tmp/hwml-bench-space-PAYLOAD-RAN",))

    files = {}
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("timit_11/train_11.npy", bytes(100 * 2**20))  # 100 MB of zeros: ~1000:1
    files["bomb.zip"] = bomb.getvalue()
    escape = io.BytesIO()
    with zipfile.ZipFile(escape, "w") as zf:
        zf.writestr("timit_11/train_11.npy", b"\x93NUMPY")
        zf.writestr("../../escape.txt", b"pwned")
    files["escape.zip"] = escape.getvalue()
    files["evil.pt"] = pickle.dumps(Payload())
    files["junk.wav"] = b"RIFF....WAVEjunk" * 1000
    return files


def tree_bytes(*folders: Path) -> int:
    """What the server keeps on disk, counted as its own disk budget counts it."""
    return sum(folder_bytes(f) for f in folders)


def rss_and_cpu(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds) of the server and its children."""
    rss, cpu = 0.0, 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
            rss += int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, AttributeError, IndexError):
            pass
    return rss, cpu


def start_server(tmp: Path, corpus: Path, max_run_seconds: float) -> tuple[subprocess.Popen, str, dict]:
    port = free_port()
    env = {
        **os.environ,
        "SPACE_ID": "hwml-bench/space",
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(tmp / "gradio"),
        "HWML_RUNS_DIR": str(tmp / "runs"),
        "HWML_CORPUS_SIZE": "small",
        "HWML_CORPUS_DIR": str(corpus),
        "HWML_RUNS_DISK_MB": str(DISK_MB),
        "HWML_MAX_UPLOAD_MB": str(UPLOAD_MB),
        "HWML_MAX_REQUEST_FILES": str(REQUEST_FILES),
        "HWML_MAX_RUN_SECONDS": str(max_run_seconds),
    }
    for name in ("HWML_ALLOW_LOCAL_PATHS", "HWML_PRIVATE_RUNS", "HWML_CHECKPOINTS_DIR"):
        env.pop(name, None)
    log = open(tmp / "app.log", "wb")  # noqa: SIM115 - open while the server runs
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=tmp, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/"
    import urllib.request

    deadline = time.monotonic() + 240
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited: {(tmp / 'app.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}gradio_api/info", timeout=5) as r:
                return proc, url, json.loads(r.read())
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("app.py did not answer within 240 s") from None
            time.sleep(0.5)


async def soak(args, url: str, info: dict, proc: subprocess.Popen, tmp: Path) -> dict:
    import httpx

    clips = [p.read_bytes() for p in CLIPS]
    soak = Soak(url, info, time.monotonic() + args.minutes * 60, clips, args.max_run)
    peaks = {"disk": 0, "rss": 0.0}

    async def monitor():
        while soak.left() > -60:
            peaks["disk"] = max(peaks["disk"], tree_bytes(tmp / "runs", tmp / "gradio"))
            peaks["rss"] = max(peaks["rss"], rss_and_cpu(proc.pid)[0])
            await asyncio.sleep(1.0)

    limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:
        watcher = asyncio.create_task(monitor())
        hostile = [soak.flooder(http), soak.maximal(http), soak.uploader(http, hostile_files())]
        await asyncio.gather(*(soak.honest(http, i) for i in range(args.visitors)), *hostile)
        watcher.cancel()
    return {"soak": soak, "peaks": peaks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="8 visitors for 2 minutes, 120 s run cap")
    parser.add_argument("--max-run-seconds", type=float, default=None, help="HWML_MAX_RUN_SECONDS (600; quick 120)")
    args = parser.parse_args()
    if args.quick:
        args.visitors, args.minutes = min(args.visitors, 8), min(args.minutes, 2.0)
    max_run = args.max_run = args.max_run_seconds or (120.0 if args.quick else 600.0)
    from hwml.corpus import ensure_corpus

    tmp = Path(tempfile.mkdtemp(prefix="hwml-bench-space-"))
    corpus = ensure_corpus(size="small", seed=0)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    proc, url, info = start_server(tmp, corpus, max_run)
    emit(bench="space_start", seconds=round(time.monotonic() - t0, 1))
    try:
        _, server_cpu0 = rss_and_cpu(proc.pid)
        wall0 = time.monotonic()
        result = asyncio.run(soak(args, url, info, proc, tmp))
        wall = time.monotonic() - wall0
        _, server_cpu1 = rss_and_cpu(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    shutil.rmtree(tmp, ignore_errors=True)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    soak_, peaks = result["soak"], result["peaks"]
    predict = sorted(soak_.predict_s)
    p = lambda q: round(predict[min(len(predict) - 1, int(q * len(predict)))], 2) if predict else None  # noqa: E731
    trainings = [t for t in soak_.trainings if "wait" in t]
    late = [t for t in trainings if t["wait"] > (t["estimate"] or 0) + WAIT_SLACK_S]
    record = dict(
        bench="space_soak",
        visitors=args.visitors,
        minutes=args.minutes,
        max_run_seconds=max_run,
        honest_errors=len(soak_.honest_errors),
        counts=soak_.counts,
        predict_p50_s=p(0.5),
        predict_p95_s=p(0.95),
        predict_max_s=round(predict[-1], 2) if predict else None,
        trainings_started=len(trainings),
        trainings_asked=len(soak_.trainings),
        training_wait_max_s=round(max((t["wait"] for t in trainings), default=0), 1),
        training_waits_over_estimate=len(late),
        hostile_refused=soak_.hostile["refused"],
        hostile_accepted=soak_.hostile["accepted"],
        flood_admitted=soak_.hostile.get("flood_admitted", 0),
        flood_runs_done=soak_.hostile.get("flood_runs_done", 0),
        disk_peak_mb=round(peaks["disk"] / 2**20, 1),
        disk_budget_mb=DISK_MB,
        rss_peak_mb=round(peaks["rss"]),
        rss_ceiling_mb=RSS_CEILING_MB,
        wall_s=round(wall, 1),
        server_cpu_s=round(server_cpu1 - server_cpu0, 1),
        bench_cpu_s=round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1),
        payload_ran=Path("/tmp/hwml-bench-space-PAYLOAD-RAN").exists(),
    )
    emit(**record)
    for line in soak_.honest_errors[:20]:
        print("honest error:", line)
    for note in soak_.hostile["notes"][:10]:
        print("hostile accepted:", note)
    for t in late[:10]:
        print(f"late start: waited {t['wait']:.0f} s, shown about {t['estimate']} s")
    waits = [round(t["wait"], 1) for t in trainings]
    print(
        f"\n{args.visitors} honest visitors + 3 hostile, {args.minutes:g} min, Space mode: "
        f"{record['honest_errors']} honest errors (goal {GOALS['honest_errors']}); "
        f"Predict p50 {record['predict_p50_s']} s, "
        f"p95 {record['predict_p95_s']} s over {len(predict)} (goal <= {GOALS['predict_p95_s']} s); "
        f"{len(trainings)}/{len(soak_.trainings)} honest trainings started, "
        f"waits {round(statistics.median(waits), 1) if waits else '-'} s "
        f"median, {record['training_wait_max_s']} s max, {len(late)} later than shown; "
        f"hostile: {record['hostile_refused']} refused, {record['hostile_accepted']} accepted "
        f"({record['flood_admitted']} flood runs admitted, at most 3 at a time per address); "
        f"disk peak {record['disk_peak_mb']} MB of {DISK_MB} MB; RSS peak {record['rss_peak_mb']} MB "
        f"(ceiling {RSS_CEILING_MB} MB); wall {record['wall_s']} s, server CPU {record['server_cpu_s']} s, "
        f"bench CPU {record['bench_cpu_s']} s"
    )


if __name__ == "__main__":
    main()
