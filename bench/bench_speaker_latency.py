"""HW4 inference latency: a 10 s clip from audio file to top-5 speakers, and a course-size test set.

The model is a preset's architecture with 600 speakers (the course's count; weights untrained,
which does not change the cost), loaded once as the app keeps it. Clip: decode + resample +
log-mel (`hwml.audio.featurize`) + whole-utterance inference + softmax top-5, timed end to end
(p50/p90 over repeats; also the process CPU time, which other load on a shared machine
does not inflate: with one thread it is the idle-machine latency). Test set: 8,000 utterances of random features with the course's length
distribution, through `predict_logits` (length-sorted batches, long ones in overlapping
windows). Prints JSON lines.

    python bench/bench_speaker_latency.py [--quick] [--preset boss] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
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
from hwml.audio import LOGMEL40, featurize  # noqa: E402
from hwml.data.types import UtteranceSet  # noqa: E402
from hwml.models import build_model  # noqa: E402
from hwml.speaker import MODEL_KEYS, MODEL_NAME, N_MELS, predict_logits, resolve_settings  # noqa: E402

N_SPEAKERS = 600


def preset_model(preset: str) -> tuple[torch.nn.Module, dict]:
    s = resolve_settings(preset, {})
    kwargs = {k: s[k] for k in MODEL_KEYS}
    kwargs.update(n_classes=N_SPEAKERS, n_mels=N_MELS, input_mean=[-8.0] * N_MELS, input_std=[3.0] * N_MELS)
    torch.manual_seed(0)
    model = build_model({"name": MODEL_NAME, "kwargs": kwargs}).eval()
    return model, {"settings": s, "features": LOGMEL40.to_dict()}


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
    names = [f"id{10000 + i}" for i in range(N_SPEAKERS)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.wav"
        sf.write(path, speech_like_wave(seconds, 44100), 44100)  # a typical upload: 44.1 kHz

        def once():
            feats = featurize(path, LOGMEL40)
            probs = predict_logits(model, config, [feats]).softmax(-1)[0]
            p, i = probs.topk(5)
            return [(names[j], float(q)) for j, q in zip(i.tolist(), p.tolist())]

        once()
        times, cpu_times, feat_times = [], [], []
        for _ in range(repeats):
            start = time.perf_counter()
            featurize(path, LOGMEL40)
            feat_times.append(time.perf_counter() - start)
            start, cpu = time.perf_counter(), time.process_time()
            once()
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu)
    q = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    return {"bench": "speaker_clip_latency", "clip_s": seconds, "repeats": repeats,
            "p50_ms": round(1000 * statistics.median(times), 1), "p90_ms": round(1000 * q[8], 1),
            "cpu_p50_ms": round(1000 * statistics.median(cpu_times), 1),
            "features_p50_ms": round(1000 * statistics.median(feat_times), 1)}


def test_set_throughput(model, config, n_utts: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    lengths = course_lengths(n_utts, gen)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)])
    feats = torch.randn(int(offsets[-1]), N_MELS, generator=gen) * 3 - 8
    utts = UtteranceSet(feats, offsets, [str(i) for i in range(n_utts)], None, [])
    start, cpu = time.perf_counter(), time.process_time()
    logits = predict_logits(model, config, utts)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert logits.shape == (n_utts, N_SPEAKERS)
    return {"bench": "speaker_test_set", "utterances": n_utts, "frames": int(offsets[-1]),
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "utts_per_s": round(n_utts / seconds, 1),
            "infer_window": config["settings"]["infer_window"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--preset", default="boss")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--test-utts", type=int, default=8000, help="0: the clip only")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, config = preset_model(args.preset)
    base = {"preset": args.preset, "threads": torch.get_num_threads(),
            "n_params": sum(q.numel() for q in model.parameters())}
    clip = clip_latency(model, config, repeats=3 if args.quick else 30)
    print(json.dumps({**clip, **base}), flush=True)
    n_test = 16 if args.quick else args.test_utts
    if n_test:
        print(json.dumps({**test_set_throughput(model, config, n_test), **base}), flush=True)


if __name__ == "__main__":
    main()
