"""`hwml import speaker` speed: files featurised several at once vs one at a time, same process.

Writes a folder-per-speaker set of 16 kHz FLAC and 8 kHz WAV recordings (a synthetic voice,
2-8 s each), then imports it alternately with HWML_IMPORT_THREADS=1 and with the default
(one thread per core), `--rounds` times each. Prints one JSON line per import and a summary:
audio seconds imported per wall-clock second (x real time) for both and their ratio (best
round of each, since other processes only ever slow a round down), plus the machine's load.

    python bench/bench_import.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_features import voiced  # noqa: E402
from hwml.importers import import_speaker  # noqa: E402


def write_corpus(root: Path, speakers: int, per_speaker: int, seed: int = 0) -> float:
    """Recordings under root/<speaker>/; returns their total seconds."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for s in range(speakers):
        folder = root / f"spk{s:02d}"
        folder.mkdir(parents=True)
        for k in range(per_speaker):
            sr, ext = (16000, "flac") if k % 2 else (8000, "wav")
            seconds = float(rng.uniform(2, 8))
            sf.write(folder / f"{k:03d}.{ext}", voiced(seconds, sr, rng), sr)
            total += seconds
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 speakers x 4 files, 1 round")
    ap.add_argument("--rounds", type=int, default=None)
    args = ap.parse_args()
    speakers, per = (4, 4) if args.quick else (10, 30)
    rounds = args.rounds or (1 if args.quick else 3)
    default_threads = os.environ.pop("HWML_IMPORT_THREADS", None)
    best = {}
    with tempfile.TemporaryDirectory(prefix="hwml-bench-import-") as tmp:
        src = Path(tmp) / "src"
        seconds = write_corpus(src, speakers, per)
        for r in range(rounds):
            for mode in ("one_at_a_time", "parallel"):
                if mode == "one_at_a_time":
                    os.environ["HWML_IMPORT_THREADS"] = "1"
                else:
                    os.environ.pop("HWML_IMPORT_THREADS", None)
                out = Path(tmp) / f"out-{mode}-{r}"
                start = time.perf_counter()
                summary = import_speaker(src, out, progress=False)
                wall = time.perf_counter() - start
                shutil.rmtree(out)
                rate = seconds / wall
                best[mode] = max(best.get(mode, 0.0), rate)
                print(
                    json.dumps(
                        {
                            "bench": "import_speaker",
                            "mode": mode,
                            "round": r,
                            "files": speakers * per,
                            "audio_seconds": round(seconds, 1),
                            "wall_s": round(wall, 3),
                            "x_real_time": round(rate, 1),
                            "utterances": summary["train_utterances"],
                        }
                    )
                )
    if default_threads is not None:
        os.environ["HWML_IMPORT_THREADS"] = default_threads
    print(
        json.dumps(
            {
                "bench": "import_speaker_summary",
                "cores": os.cpu_count(),
                "one_at_a_time_x_real_time": round(best["one_at_a_time"], 1),
                "parallel_x_real_time": round(best["parallel"], 1),
                "ratio": round(best["parallel"] / best["one_at_a_time"], 2),
                "load_avg": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
