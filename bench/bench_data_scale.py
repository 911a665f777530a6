"""Course-size timit_11 (1.23 M x 429 float32, 2.1 GB) loads memory-mapped, not copied.

Writes a random course-shaped folder to a temp dir, then, in a fresh child process (so its peak
RSS is the loader's alone), loads it with `hwml.data.load_dataset`, gathers random training
batches, and prints one JSON line: rows, load seconds, batch throughput, peak and final RSS.

    python bench/bench_data_scale.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TRAIN_ROWS, TEST_ROWS = 1_229_932, 451_552  # the 2021 course download
DIM, N_CLASSES = 429, 39


def write_course_folder(root: Path, rows: int, test_rows: int, seed: int = 0) -> None:
    """Chunked writes through open_memmap, exactly the course's dtypes (labels as `<U2` strings)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name, n in (("train_11.npy", rows), ("test_11.npy", test_rows)):
        out = np.lib.format.open_memmap(root / name, mode="w+", dtype=np.float32, shape=(n, DIM))
        for i in range(0, n, 65536):
            out[i : i + 65536] = rng.random((min(65536, n - i), DIM), dtype=np.float32) - 0.5
        out.flush()
        del out
    np.save(root / "train_label_11.npy", rng.integers(0, N_CLASSES, rows).astype("<U2"))


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(root: Path, batches: int, batch_size: int) -> dict:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hwml.data import load_dataset

    torch.set_num_threads(1)
    base_mb = _rss_mb("VmRSS")
    start = time.perf_counter()
    ds = load_dataset(root)
    load_s = time.perf_counter() - start
    after_load_mb = _rss_mb("VmRSS")
    feats, labels = ds.train.feats, ds.train.labels
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    total = 0.0
    for _ in range(batches):
        idx = torch.randint(0, len(feats), (batch_size,), generator=gen).sort().values
        x = torch.from_numpy(feats[idx.numpy()])
        total += float(x.sum()) + float(labels[idx].sum())
    batch_s = time.perf_counter() - start
    return {
        "bench": "data_scale", "format": ds.format, "rows": len(feats), "test_rows": len(ds.test), "dim": ds.train.dim,
        "file_gb": round((root / "train_11.npy").stat().st_size / 1e9, 2), "memmap": isinstance(feats, np.memmap),
        "load_s": round(load_s, 2), "batches": batches, "batch_size": batch_size,
        "rows_per_s": round(batches * batch_size / batch_s),
        "rss_after_imports_mb": round(base_mb), "rss_after_load_mb": round(after_load_mb),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_anon_mb": round(_rss_mb("RssAnon")), "rss_file_mb": round(_rss_mb("RssFile")),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50k rows instead of the course's 1.23 M")
    ap.add_argument("--keep", type=Path, help="write the folder here and keep it (default: a temp dir)")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # child process: load and report
    args = ap.parse_args()
    batches, batch_size = (20, 512) if args.quick else (200, 512)
    if args.measure:
        print(json.dumps(measure(args.measure, batches, batch_size)))
        return
    rows, test_rows = (50_000, 5_000) if args.quick else (TRAIN_ROWS, TEST_ROWS)
    with tempfile.TemporaryDirectory(prefix="hwml-bench-") as tmp:
        root = args.keep or Path(tmp) / "timit_11"
        start = time.perf_counter()
        if not (root / "train_11.npy").exists():
            write_course_folder(root, rows, test_rows)
        gen_s = time.perf_counter() - start
        child = subprocess.run([sys.executable, __file__, "--measure", str(root)] + (["--quick"] if args.quick else []),
                               check=True, capture_output=True, text=True)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result["generate_s"] = round(gen_s, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
