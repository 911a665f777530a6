"""Time the built-in corpus build (cold, into a temp folder) and its cached reuse.

    python bench/bench_corpus.py [--size small|default|both] [--seed N]

Prints one JSON line per size: wall and CPU seconds of the build, the cached call, utterances,
frames, speakers, hours of audio, the rarest phone class in the HW2 training part and disk use.
Goals (2 cores): default < 60 s, small < 10 s; every class >= 200 training frames in default.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwml.corpus import ensure_corpus  # noqa: E402


def bench(size: str, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="hwml-bench-corpus-") as tmp:
        root = Path(tmp) / "corpus"
        wall, cpu = time.perf_counter(), time.process_time()
        ensure_corpus(root=root, size=size, seed=seed)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        cached = time.perf_counter()
        ensure_corpus(root=root, size=size, seed=seed)
        cached = time.perf_counter() - cached
        info = json.loads((root / "corpus.json").read_text())
        counts = info["phoneme_train_class_frames"]
        rarest = min(counts, key=counts.get)
        disk = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    return {
        "bench": "corpus",
        "size": size,
        "seed": seed,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "cached_seconds": round(cached, 4),
        "utterances": info["utterances"],
        "frames": info["frames"],
        "speakers": len(info["speakers"]),
        "audio_hours": round(info["seconds_audio"] / 3600, 3),
        "class_frames_min": counts[rarest],
        "class_frames_min_class": rarest,
        "timit_11_rows": info["timit_11_rows"],
        "disk_mb": round(disk / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("small", "default", "both"), default="both")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for size in ("small", "default") if args.size == "both" else (args.size,):
        print(json.dumps(bench(size, args.seed)), flush=True)


if __name__ == "__main__":
    main()
