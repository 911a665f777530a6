"""Featurisation speed as a multiple of real time on one thread (goal: >= 200x for both kinds).

Prints one JSON line: seconds of audio featurised per wall-clock second for mfcc39 and logmel40
(16 kHz waves in memory), for decoding + resampling files (8 kHz WAV, 44.1 kHz FLAC), and end to
end (44.1 kHz FLAC -> mfcc39). Utterances of 2-12 s of a synthetic voiced signal; the best of
`--repeats` passes is reported (other processes on the machine only ever slow a pass down).

    python bench/bench_features.py [--quick]
"""

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hwml.audio.decode import load_audio
from hwml.audio.features import featurize
from hwml.audio.params import LOGMEL40, MFCC39


def voiced(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A rough voice: a gliding 100-250 Hz harmonic series, amplitude-modulated, plus noise."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 100 + 150 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 20) if k * f0.max() < sr / 2)
    x *= 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    x += 0.02 * rng.standard_normal(len(t))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def best_rate(fn, items, seconds: float, repeats: int) -> float:
    fn(items[0])  # build cached transforms / resamplers outside the timing
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return round(seconds / best, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="30 s of audio, 2 passes (default: 300 s, 3 passes)")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    total = 30.0 if args.quick else 300.0
    repeats = args.repeats or (2 if args.quick else 3)
    rng = np.random.default_rng(0)
    lengths = []
    while sum(lengths) < total:
        lengths.append(float(rng.uniform(2, 12)))
    seconds = sum(lengths)
    waves16 = [torch.from_numpy(voiced(s, 16000, rng)) for s in lengths]

    result = {
        "bench": "features",
        "quick": args.quick,
        "threads": torch.get_num_threads(),
        "audio_seconds": round(seconds, 1),
        "utterances": len(lengths),
        "repeats": repeats,
    }
    result["mfcc39_x_realtime"] = best_rate(lambda w: featurize(w, MFCC39), waves16, seconds, repeats)
    result["logmel40_x_realtime"] = best_rate(lambda w: featurize(w, LOGMEL40), waves16, seconds, repeats)
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, sr, fmt, subtype in (("wav8k", 8000, "WAV", "PCM_16"), ("flac44k", 44100, "FLAC", "PCM_16")):
            files[name] = []
            for i, s in enumerate(lengths):
                path = Path(tmp) / f"{name}-{i}.{fmt.lower()}"
                sf.write(path, voiced(s, sr, rng), sr, format=fmt, subtype=subtype)
                files[name].append(path)
        result["load_wav8k_x_realtime"] = best_rate(load_audio, files["wav8k"], seconds, repeats)
        result["load_flac44k_x_realtime"] = best_rate(load_audio, files["flac44k"], seconds, repeats)
        result["flac44k_to_mfcc39_x_realtime"] = best_rate(
            lambda p: featurize(p, MFCC39), files["flac44k"], seconds, repeats
        )
    result["goal_x_realtime"] = 200
    result["meets_goal"] = min(result["mfcc39_x_realtime"], result["logmel40_x_realtime"]) >= 200
    result["torch"] = torch.__version__
    result["machine"] = platform.machine()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
