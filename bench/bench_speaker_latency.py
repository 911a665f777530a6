"""HW4 inference latency: a 10 s clip from audio file to top-5 speakers, and a course-size test set.

The model is a preset's architecture with 600 speakers (the course's count; weights untrained,
which does not change the cost), loaded once as the app keeps it. Clip: decode + resample +
log-mel (`hwml.audio.features.featurize`) + whole-utterance inference + softmax top-5, timed end to end
(p50/p95 over repeats; also the process CPU time, which other load on a shared machine does
not inflate). Test set: 8,000 utterances of random features with course-like lengths, (1)
through `predict_logits` in memory (length-sorted batches, long ones in overlapping windows)
and (2) end to end as `hwml predict RUN Dataset/` does it: a course-format folder (a small
training part plus testdata.json and 8,000 uttr-*.pt files) in a temp dir, loaded cold (the
on-disk cache is built) and again cached, predicted, the submission CSV written. Every line
carries the machine's load average: the 2 cores may be shared.

    python bench/bench_speaker_latency.py [--quick] [--preset boss] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_speaker_throughput import course_lengths  # noqa: E402

from hwml.audio.params import (
    LOGMEL40,  # noqa: E402
    N_MELS,
)
from hwml.data.hw4 import CACHE_MIN_UTTS  # noqa: E402
from hwml.data.types import UtteranceSet  # noqa: E402
from hwml.models import build_model  # noqa: E402
from hwml.runs.checkpoint import save_checkpoint  # noqa: E402
from hwml.speaker.predict import load_clip, predict_files, predict_logits
from hwml.speaker.presets import MODEL_KEYS, MODEL_NAME
from hwml.speaker.task import resolve_settings

N_SPEAKERS = 600
NAMES = [f"id{10000 + i}" for i in range(N_SPEAKERS)]


def preset_model(preset: str) -> tuple[torch.nn.Module, dict]:
    s = resolve_settings(preset, {})
    kwargs = {k: s[k] for k in MODEL_KEYS}
    kwargs.update(n_classes=N_SPEAKERS, n_mels=N_MELS, input_mean=[-8.0] * N_MELS, input_std=[3.0] * N_MELS)
    torch.manual_seed(0)
    model = build_model({"name": MODEL_NAME, "kwargs": kwargs}).eval()
    return model, {
        "task": "speaker",
        "preset": preset,
        "class_names": NAMES,
        "features": LOGMEL40.to_dict(),
        "model": {"name": MODEL_NAME, "kwargs": kwargs},
        "settings": s,
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def speech_like_wave(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Harmonics with a wandering pitch under a syllable-rate envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wave = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.1 * wave * envelope + 0.005 * rng.standard_normal(len(t))).astype(np.float32)


def clip_latency(model, config, repeats: int, seconds: float = 10.0) -> dict:
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.wav"
        sf.write(path, speech_like_wave(seconds, 44100), 44100)  # a typical upload: 44.1 kHz

        def once():
            feats = load_clip(path, config["features"])  # what predict_files and the app do
            probs = predict_logits(model, config, [feats]).softmax(-1)[0]
            p, i = probs.topk(5)
            return [(NAMES[j], float(q)) for j, q in zip(i.tolist(), p.tolist())]

        once()
        times, cpu_times, feat_times = [], [], []
        for _ in range(repeats):
            start = time.perf_counter()
            load_clip(path, config["features"])
            feat_times.append(time.perf_counter() - start)
            start, cpu = time.perf_counter(), time.process_time()
            once()
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu)
    q = statistics.quantiles(times, n=20) if len(times) >= 2 else [times[0]] * 19
    return {
        "bench": "speaker_clip_latency",
        "clip_s": seconds,
        "repeats": repeats,
        "p50_ms": round(1000 * statistics.median(times), 1),
        "p95_ms": round(1000 * q[18], 1),
        "cpu_p50_ms": round(1000 * statistics.median(cpu_times), 1),
        "features_p50_ms": round(1000 * statistics.median(feat_times), 1),
        "load_avg_before": load_before,
        "load_avg_after": load_average(),
    }


def random_utterances(n_utts: int, seed: int = 0) -> UtteranceSet:
    gen = torch.Generator().manual_seed(seed)
    lengths = course_lengths(n_utts, gen)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)])
    feats = torch.randn(int(offsets[-1]), N_MELS, generator=gen) * 3 - 8
    return UtteranceSet(feats, offsets, [f"uttr-{i:032x}.pt" for i in range(n_utts)], None, [])


def test_set_throughput(model, config, n_utts: int) -> dict:
    utts = random_utterances(n_utts)
    load_before = load_average()
    start, cpu = time.perf_counter(), time.process_time()
    logits = predict_logits(model, config, utts)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert logits.shape == (n_utts, N_SPEAKERS)
    return {
        "bench": "speaker_test_set",
        "utterances": n_utts,
        "frames": int(utts.offsets[-1]),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "utts_per_s": round(n_utts / seconds, 1),
        "infer_window": config["settings"]["infer_window"],
        "load_avg_before": load_before,
        "load_avg_after": load_average(),
    }


def write_course_folder(root: Path, test: UtteranceSet, n_train: int) -> None:
    """The course's Dataset layout: mapping.json, metadata.json (n_train short utterances, round
    robin over the speakers), testdata.json and one torch.save'd (T, 40) tensor per utterance."""
    root.mkdir(parents=True)
    gen = torch.Generator().manual_seed(1)
    speakers: dict[str, list] = {s: [] for s in NAMES}
    for i in range(n_train):
        name = f"uttr-{i + 2**127:032x}.pt"
        torch.save(torch.randn(200, N_MELS, generator=gen) * 3 - 8, root / name)
        speakers[NAMES[i % N_SPEAKERS]].append({"feature_path": name, "mel_len": 200})
    entries = []
    for i, name in enumerate(test.utt_ids):
        torch.save(test.utterance(i).clone(), root / name)
        entries.append({"feature_path": name, "mel_len": int(test.lengths[i])})
    (root / "mapping.json").write_text(
        json.dumps(
            {"speaker2id": {s: i for i, s in enumerate(NAMES)}, "id2speaker": {str(i): s for i, s in enumerate(NAMES)}}
        )
    )
    speakers = {s: u for s, u in speakers.items() if u}
    (root / "metadata.json").write_text(json.dumps({"n_mels": N_MELS, "speakers": speakers}))
    (root / "testdata.json").write_text(json.dumps({"n_mels": N_MELS, "utterances": entries}))


def end_to_end(model, config, n_utts: int, n_train: int) -> list[dict]:
    """`predict_files` on a course-format folder: cold (cache built), then cached."""
    out = []
    with tempfile.TemporaryDirectory(prefix="hwml-bench-") as tmp:
        tmp = Path(tmp)
        write_course_folder(tmp / "Dataset", random_utterances(n_utts), n_train)
        save_checkpoint(tmp / "run", model.state_dict(), config)
        before = os.environ.get("HWML_CACHE")
        os.environ["HWML_CACHE"] = str(tmp / "cache")
        try:
            cached = n_utts + n_train >= CACHE_MIN_UTTS
            for load in ("cold", "cached" if cached else "again"):
                load_before = load_average()
                start, cpu = time.perf_counter(), time.process_time()
                summary = predict_files(tmp / "run", [tmp / "Dataset"], tmp / "predict.csv")
                seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
                assert summary["rows"] == n_utts
                out.append(
                    {
                        "bench": "speaker_test_set_end_to_end",
                        "load": load,
                        "utterances": n_utts,
                        "train_utterances_in_folder": n_train,
                        "seconds": round(seconds, 2),
                        "cpu_seconds": round(cpu, 2),
                        "utts_per_s": round(n_utts / seconds, 1),
                        "load_avg_before": load_before,
                        "load_avg_after": load_average(),
                    }
                )
        finally:
            if before is None:
                os.environ.pop("HWML_CACHE")
            else:
                os.environ["HWML_CACHE"] = before
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--preset", default="boss")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--test-utts", type=int, default=8000, help="0: the clip only")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, config = preset_model(args.preset)
    base = {
        "preset": args.preset,
        "threads": torch.get_num_threads(),
        "n_params": sum(q.numel() for q in model.parameters()),
    }
    clip = clip_latency(model, config, repeats=3 if args.quick else 40)
    print(json.dumps({**clip, **base}), flush=True)
    n_test = min(16, args.test_utts) if args.quick else args.test_utts
    if n_test:
        print(json.dumps({**test_set_throughput(model, config, n_test), **base}), flush=True)
        for line in end_to_end(model, config, n_test, n_train=N_SPEAKERS if args.quick else 5 * N_SPEAKERS):
            print(json.dumps({**line, **base}), flush=True)


if __name__ == "__main__":
    main()
