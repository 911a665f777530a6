"""Live: how fast a chunk of sound becomes strip and name, for one student and for a class, and
what the BiLSTM's look-ahead costs in agreement with whole-utterance prediction.

Parts (each prints JSON lines; wall-clock with CPU seconds beside, on a shared machine):

- `inprocess`: one LiveSession (the shipped phoneme and speaker models), a real clip fed in
  0.25 s chunks: per chunk the compute (`feed`) and the picture (`picture_html`, JPEG inlined),
  p50 / p95 / max, and the ratio of p95 to the chunk length (< 1: keeps up).
- `server`: a freshly started app.py on 127.0.0.1 with the shipped checkpoints. 1 stream, then N
  (20) concurrent streams, each one client (gradio_client, threads of one process) sending a
  0.25 s chunk every 0.25 s (real time) to `/live_chunk`, the Live tab's handler on the same
  queue and concurrency as its stream event (gradio_client cannot drive a stream event): latency
  per chunk (upload to picture back), p50 / p95, the share answered before the next chunk is due,
  errors, server and client CPU seconds (streams 1, N/4, N). Beside it, one-shot Predict
  (`/phoneme_predict_audio`) of the same clip, 1 client.
- `lookahead`: the shipped BiLSTM streamed with look-ahead L frames vs the same model on the whole
  utterance, frame agreement over real speech (../shared/data: speechocean762's validation
  speakers of the shipped model, FSDD), for several L; skipped when the data is absent.

    python bench/bench_live.py [--part inprocess server lookahead] [--streams 20] [--seconds 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_app import emit  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
CHUNK = 0.25
CLIPS = [REPO / "assets" / "clips" / f"{s}_3.flac" for s in ("woman-0036", "man-0482", "girl-0006")]


def pct(values, q):
    return round(float(np.percentile(values, q)), 4) if values else None


def stream_audio(seconds: float) -> tuple[int, np.ndarray]:
    """The real clips strung together (with half a second of silence) and looped to `seconds`, int16."""
    import soundfile as sf

    parts, rate = [], None
    for clip in CLIPS:
        x, rate = sf.read(clip, dtype="int16")
        parts += [x, np.zeros(rate // 2, np.int16)]
    x = np.concatenate(parts)
    return rate, np.resize(x, int(seconds * rate))


def inprocess(seconds: float) -> None:
    import torch

    from hwml.serve.live import open_live
    from hwml.ui.live_tab import picture_html

    torch.set_num_threads(1)
    rate, x = stream_audio(seconds)
    live = open_live(REPO / "checkpoints" / "phoneme", REPO / "checkpoints" / "speaker")
    n = int(CHUNK * rate)
    live.feed((rate, x[:n]))  # warm
    compute, picture, total = [], [], []
    c0 = time.process_time()
    for i in range(n, len(x) - n, n):
        t0 = time.perf_counter()
        update = live.feed((rate, x[i : i + n]))
        t1 = time.perf_counter()
        picture_html(update, "en")
        t2 = time.perf_counter()
        compute.append(t1 - t0), picture.append(t2 - t1), total.append(t2 - t0)
    emit(
        part="inprocess",
        chunks=len(total),
        chunk_s=CHUNK,
        compute_p50=pct(compute, 50),
        compute_p95=pct(compute, 95),
        picture_p50=pct(picture, 50),
        picture_p95=pct(picture, 95),
        total_p95=pct(total, 95),
        total_max=round(max(total), 4),
        p95_over_chunk=round(pct(total, 95) / CHUNK, 3),
        cpu_s_per_audio_s=round((time.process_time() - c0) / (len(total) * CHUNK), 3),
    )


def client_stream(url: str, chunks: list[Path], start: threading.Event, out: dict) -> None:
    from gradio_client import Client, handle_file

    try:
        client = Client(url, verbose=False)
    except Exception as e:  # noqa: BLE001  (a benchmark counts every failure)
        out["errors"].append(repr(e)[:200])
        return
    start.wait()
    due = time.perf_counter()
    for path in chunks:
        due += CHUNK
        t0 = time.perf_counter()
        try:
            client.predict(handle_file(str(path)), "shipped:phoneme", "shipped:speaker", api_name="/live_chunk")
            out["latency"].append(time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001
            out["errors"].append(repr(e)[:200])
        time.sleep(max(due - time.perf_counter(), 0.0))  # real time: the next chunk is due then
    try:
        client.predict(api_name="/live_stop")
    except Exception as e:  # noqa: BLE001
        out["errors"].append(repr(e)[:200])


def server(streams: int, seconds: float) -> None:
    import soundfile as sf
    from bench_burst import App, predict_once
    from gradio_client import Client

    with tempfile.TemporaryDirectory(prefix="hwml-bench-live-") as tmp:
        tmp = Path(tmp)
        rate, x = stream_audio(seconds)
        n = int(CHUNK * rate)
        files = []
        for k, i in enumerate(range(0, len(x) - n + 1, n)):
            files.append(tmp / f"chunk{k:04d}.wav")
            sf.write(files[-1], x[i : i + n], rate, subtype="PCM_16")
        app = App(REPO, tmp, "app", None)
        try:
            emit(part="server", cold_start_s=round(app.cold_start, 2))
            warm = Client(app.url, verbose=False)
            for _ in range(2):  # loads and warms both models
                predict_once(warm, "phoneme", CLIPS[0])
            one_shot, c0 = [], app.cpu_seconds()
            for _ in range(5):
                t0 = time.perf_counter()
                predict_once(warm, "phoneme", CLIPS[0])
                one_shot.append(time.perf_counter() - t0)
            clip_s = sf.info(CLIPS[0]).duration
            emit(
                part="server",
                what="one-shot Predict (phoneme, audio)",
                clip_s=round(clip_s, 2),
                p50=pct(one_shot, 50),
                max=round(max(one_shot), 4),
                server_cpu_s=round((app.cpu_seconds() - c0) / 5, 3),
            )
            for k in sorted({1, max(streams // 4, 1), streams}):
                out = {"latency": [], "errors": []}
                start = threading.Event()
                threads = [threading.Thread(target=client_stream, args=(app.url, files, start, out)) for _ in range(k)]
                for t in threads:
                    t.start()
                time.sleep(2.0)  # clients connected
                c0, t0, p0 = app.cpu_seconds(), time.perf_counter(), time.process_time()
                start.set()
                for t in threads:
                    t.join(timeout=seconds * 20 + 120)
                lat = out["latency"]
                emit(
                    part="server",
                    what="live chunks",
                    streams=k,
                    chunk_s=CHUNK,
                    chunks=len(lat),
                    errors=len(out["errors"]),
                    first_error=out["errors"][0] if out["errors"] else None,
                    p50=pct(lat, 50),
                    p95=pct(lat, 95),
                    max=round(max(lat), 4) if lat else None,
                    in_time=round(sum(v <= CHUNK for v in lat) / max(len(lat), 1), 3),
                    wall_s=round(time.perf_counter() - t0, 1),
                    audio_s=round(k * len(files) * CHUNK, 1),
                    server_cpu_s=round(app.cpu_seconds() - c0, 1),
                    client_cpu_s=round(time.process_time() - p0, 1),  # this process: the N clients
                )
        finally:
            app.stop()


def real_clips(limit: int) -> dict[str, list[Path]]:
    """speechocean762's utterances of the shipped phoneme model's validation speakers, FSDD digits."""
    from hwml.runs.folder import read_config

    out = {}
    so = SHARED / "speechocean762" / "wav"
    if so.is_dir():
        valid = read_config(REPO / "checkpoints" / "phoneme")["split"].get("valid_utts", [])
        paths = []
        for utt in valid:
            parts = utt.split("_")  # so762_<speaker>_<utterance>
            if len(parts) == 3 and parts[0] == "so762":
                p = so / parts[1] / f"{parts[2]}.flac"
                if p.is_file():
                    paths.append(p)
        if paths:
            out["speechocean762 (valid speakers)"] = paths[:: max(len(paths) // limit, 1)][:limit]
    fsdd = sorted((SHARED / "fsdd").rglob("*.wav")) if (SHARED / "fsdd").is_dir() else []
    if fsdd:
        out["fsdd"] = fsdd[:: max(len(fsdd) // limit, 1)][:limit]
    return out


def lookahead(limit: int, settings: list[int]) -> None:
    import torch

    from hwml.audio.decode import load_audio
    from hwml.audio.features import featurize
    from hwml.audio.params import FeatureParams
    from hwml.phoneme.predict import one_utterance, predict_logits
    from hwml.phoneme.stream import PhoneStream
    from hwml.runs.cache import loaded_run

    torch.set_num_threads(1)
    sets = real_clips(limit)
    if not sets:
        emit(part="lookahead", skipped="no ../shared/data (speechocean762 or fsdd)")
        return
    model, config = loaded_run(REPO / "checkpoints" / "phoneme")
    params = FeatureParams.from_dict(config["features"])
    for name, paths in sets.items():
        waves = [load_audio(p) for p in paths]
        offline = [
            predict_logits(model, config, one_utterance(featurize(w, params), "u", config["class_names"])).argmax(1)
            for w in waves
        ]
        n = int(CHUNK * 16000)
        for L in settings:
            same = total = 0
            c0 = time.process_time()
            for w, ref in zip(waves, offline):
                ps = PhoneStream(model, config, lookahead=L)
                ids = torch.cat([ps.push(w[i : i + n]).ids for i in range(0, len(w), n)] + [ps.finish().ids])
                same += int((ids == ref).sum())
                total += len(ref)
            emit(
                part="lookahead",
                data=name,
                clips=len(waves),
                frames=total,
                lookahead_frames=L,
                lookahead_s=round(L / 100, 2),
                agreement=round(same / total, 4),
                cpu_s_per_audio_s=round((time.process_time() - c0) / (total / 100), 3),
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", nargs="+", default=["inprocess", "server", "lookahead"])
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=8.0, help="audio per stream")
    ap.add_argument("--clips", type=int, default=60, help="real clips per data set (lookahead)")
    ap.add_argument("--lookahead", type=int, nargs="+", default=[0, 5, 10, 20, 30, 50, 100, 10_000])
    args = ap.parse_args()
    if "inprocess" in args.part:
        inprocess(args.seconds)
    if "server" in args.part:
        server(args.streams, args.seconds)
    if "lookahead" in args.part:
        lookahead(args.clips, args.lookahead)


if __name__ == "__main__":
    main()
