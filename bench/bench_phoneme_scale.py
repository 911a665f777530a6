"""HW2 at course scale: a 1.23 M x 429 timit_11 folder (2.1 GB of float32) trains in < 4 GB.

The benchmark writes a course-size folder of random features (in chunks, never whole in
memory) into a temp dir, loads it with hwml's reader (memory-mapped), trains the default
preset for some steps with validation, and reports the process's peak resident memory
(ru_maxrss: anonymous memory plus the file pages it touched). Prints JSON lines.

    python bench/bench_phoneme_scale.py [--quick] [--rows N] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwml.data import load_dataset  # noqa: E402
from hwml.phoneme.task import make_task
from hwml.train.engine import train  # noqa: E402

COURSE_ROWS, COURSE_TEST_ROWS = 1_229_932, 451_552


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def write_folder(root: Path, rows: int, test_rows: int, chunk: int = 65536) -> float:
    """Random course-shaped timit_11 files, written chunk by chunk through plain file writes
    (a writable memmap would leave the whole file resident and count it in this process's RSS);
    returns GB written."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name, n in (("train_11.npy", rows), ("test_11.npy", test_rows)):
        with open(root / name, "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (n, 429)})
            for i in range(0, n, chunk):
                rng.standard_normal((min(chunk, n - i), 429), dtype=np.float32).tofile(f)
    np.save(root / "train_label_11.npy", rng.integers(0, 39, rows).astype("<U2"), allow_pickle=False)
    return (rows + test_rows) * 429 * 4 / 1e9


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 k rows, 10 steps (for the test suite)")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--limit-gb", type=float, default=4.0)
    args = ap.parse_args(argv)
    rows = args.rows or (20_000 if args.quick else COURSE_ROWS)
    steps = args.steps or (10 if args.quick else 300)
    results = []
    emit = lambda r: (results.append(r), print(json.dumps(r), flush=True))  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "timit_11"
        t0 = time.perf_counter()
        gb = write_folder(root, rows, rows * COURSE_TEST_ROWS // COURSE_ROWS)
        emit(
            {
                "bench": "write",
                "rows": rows,
                "gb": round(gb, 2),
                "seconds": round(time.perf_counter() - t0, 1),
                "peak_rss_gb": round(peak_rss_gb(), 3),
            }
        )
        t0 = time.perf_counter()
        dataset = load_dataset(root)
        emit(
            {
                "bench": "load",
                "memmap": isinstance(dataset.train.feats, np.memmap),
                "seconds": round(time.perf_counter() - t0, 1),
                "peak_rss_gb": round(peak_rss_gb(), 3),
            }
        )
        task = make_task(dataset, args.preset, {"valid_every": max(1, steps // 2)}, seed=0)
        out = train(task, {"max_steps": steps}, Path(tmp) / "run")
        peak = peak_rss_gb()
        emit(
            {
                "bench": "train",
                "preset": args.preset,
                "rows": rows,
                "steps": out["step"],
                "seconds": out["elapsed"],
                "valid_frames": len(task.valid_rows),
                "peak_rss_gb": round(peak, 3),
                "limit_gb": args.limit_gb,
                "ok": peak < args.limit_gb,
            }
        )
    return results


if __name__ == "__main__":
    main()
