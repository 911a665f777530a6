"""Course-size data sets: timit_11 (1.23 M x 429 float32, 2.1 GB) loads memory-mapped, not
copied; `--hw4`: the HW4 "Dataset" folder (56,666 + 8,000 uttr-*.pt files) fits in memory.

Writes a random course-shaped folder to a temp dir, then, in fresh child processes (so each peak
RSS is the loader's alone), loads it with `hwml.data.load_dataset` and prints JSON lines.
timit_11: rows, load seconds, batch throughput, peak and final RSS. HW4: the first load with no
cache and the files out of the page cache (into RAM, and building hwml's .npy cache), the
cached load (memory-mapped copy-on-write), RSS after each, and RSS during `medium` training steps.

    python bench/bench_data_scale.py [--quick] [--hw4 [--compare-workers]] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
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
        "bench": "data_scale",
        "format": ds.format,
        "rows": len(feats),
        "test_rows": len(ds.test),
        "dim": ds.train.dim,
        "file_gb": round((root / "train_11.npy").stat().st_size / 1e9, 2),
        "memmap": isinstance(feats, np.memmap),
        "load_s": round(load_s, 2),
        "batches": batches,
        "batch_size": batch_size,
        "rows_per_s": round(batches * batch_size / batch_s),
        "rss_after_imports_mb": round(base_mb),
        "rss_after_load_mb": round(after_load_mb),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_anon_mb": round(_rss_mb("RssAnon")),
        "rss_file_mb": round(_rss_mb("RssFile")),
    }


# ------------------------------------------------------------------------------------------ HW4

HW4_TRAIN, HW4_TEST, HW4_SPEAKERS = 56_666, 8_000, 600  # the 2022 course set
HW4_QUICK = (400, 40, 20)  # the cache is asked for explicitly, so it runs at this size too


def write_hw4_folder(root: Path, n_train: int, n_test: int, n_speakers: int, seed: int = 0) -> dict:
    """The course's Dataset layout, one torch.save'd (T, 40) tensor per utterance, course-like
    lengths; then every file is pushed out of the page cache, so the first load reads the disk."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_speaker_throughput import course_lengths

    gen = torch.Generator().manual_seed(seed)
    lengths = course_lengths(n_train + n_test, gen).tolist()
    names = [f"id{10000 + i}" for i in range(n_speakers)]
    root.mkdir(parents=True, exist_ok=True)
    speakers: dict[str, list] = {s: [] for s in names}
    test, paths = [], []
    for i, n in enumerate(lengths):
        path = f"uttr-{i:032x}.pt"
        torch.save(torch.randn(n, 40, generator=gen).mul_(3).sub_(8), root / path)
        entry = {"feature_path": path, "mel_len": n}
        (speakers[names[i % n_speakers]] if i < n_train else test).append(entry)
        paths.append(root / path)
    (root / "mapping.json").write_text(
        json.dumps(
            {"speaker2id": {s: i for i, s in enumerate(names)}, "id2speaker": {str(i): s for i, s in enumerate(names)}}
        )
    )
    (root / "metadata.json").write_text(json.dumps({"n_mels": 40, "speakers": speakers}))
    (root / "testdata.json").write_text(json.dumps({"n_mels": 40, "utterances": test}))
    evict(paths)
    return {
        "files": len(lengths),
        "frames": sum(lengths),
        "mean_mel_len": round(sum(lengths) / len(lengths), 1),
        "files_gb": round(sum(p.stat().st_size for p in paths) / 1e9, 2),
    }


def evict(paths: list[Path]) -> None:
    """Drop these files' pages from the page cache (written back first): a cold first read."""
    os.sync()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def measure_hw4(root: Path, phase: str, steps: int) -> dict:
    """One phase in this (fresh) process: "nocache" (into RAM), "cold" (RAM + building the cache),
    "cached" (the cache mapped), "train" (cached load + `medium` steps)."""

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hwml.data.hw4 import read_hw4

    base_mb = _rss_mb("VmRSS")
    start, cpu = time.perf_counter(), time.process_time()
    ds = read_hw4(root, cache=phase != "nocache")
    out = {
        "bench": "data_scale_hw4",
        "phase": phase,
        "utterances": len(ds.train),
        "test_utterances": len(ds.test),
        "feature_gb": round((ds.train.feats.numel() + ds.test.feats.numel()) * 4 / 1e9, 2),
        "load_s": round(time.perf_counter() - start, 2),
        "load_cpu_s": round(time.process_time() - cpu, 2),
        "rss_after_imports_mb": round(base_mb),
        "rss_after_load_mb": round(_rss_mb("VmRSS")),
        "rss_anon_mb": round(_rss_mb("RssAnon")),
        "rss_file_mb": round(_rss_mb("RssFile")),
    }
    if phase == "train":
        from hwml.speaker.task import make_task
        from hwml.train.engine import train

        peak = {"rss": 0.0, "anon": 0.0}

        def sample(_event):
            peak["rss"], peak["anon"] = max(peak["rss"], _rss_mb("VmRSS")), max(peak["anon"], _rss_mb("RssAnon"))

        start = time.perf_counter()
        task = make_task(ds, "medium", {"valid_fraction": 0.01}, seed=0)
        prepare_s = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as run:
            start = time.perf_counter()
            summary = train(task, {"max_steps": steps, "log_every": 1, "valid_every": steps}, run, [sample])
        out.update(
            preset="medium",
            steps=steps,
            prepare_s=round(prepare_s, 2),
            train_s=round(time.perf_counter() - start, 2),
            n_valid=len(task.valid_idx),
            valid_acc=summary.get("best_valid_acc", summary.get("valid_acc")),
            peak_rss_during_training_mb=round(peak["rss"]),
            peak_rss_anon_during_training_mb=round(peak["anon"]),
        )
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    return out


def run_hw4(args) -> None:
    n_train, n_test, n_speakers = HW4_QUICK if args.quick else (HW4_TRAIN, HW4_TEST, HW4_SPEAKERS)
    steps = 3 if args.quick else 30
    with tempfile.TemporaryDirectory(prefix="hwml-bench-") as tmp:
        root = args.keep or Path(tmp) / "Dataset"
        env = {**os.environ, "HWML_CACHE": str(Path(tmp) / "cache")}
        start = time.perf_counter()
        made = write_hw4_folder(root, n_train, n_test, n_speakers)
        print(
            json.dumps(
                {
                    "bench": "data_scale_hw4",
                    "phase": "write",
                    **made,
                    "generate_s": round(time.perf_counter() - start, 2),
                }
            ),
            flush=True,
        )
        if args.compare_workers:
            compare_workers(root, env, args.compare_workers)
            return
        for phase in ("nocache", "cold", "cached", "train"):
            if phase in ("nocache", "cold"):
                evict(sorted(root.glob("uttr-*.pt")))
            child = subprocess.run(
                [sys.executable, __file__, "--measure-hw4", str(root), phase, str(steps)],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            )
            print(child.stdout.strip().splitlines()[-1], flush=True)


def compare_workers(root: Path, env: dict, phase: str = "cold") -> None:
    """The first load (cold files, cache built) with one loading process and with
    hwml.data.common.load_workers() of them (at least 2), alternating 1, N, 1, N (so neither order nor a
    warmer disk favours one side): JSON lines, then the ratio of the mean times serial / parallel.
    phase "cold" builds hwml's .npy cache (the default for a course-size folder), "nocache" loads
    into RAM."""
    import shutil

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hwml.data.common import load_workers

    many = max(2, load_workers())
    seconds: dict[int, list[float]] = {1: [], many: []}
    for workers in (1, many, 1, many):
        shutil.rmtree(env["HWML_CACHE"], ignore_errors=True)
        evict(sorted(root.glob("uttr-*.pt")))
        child = subprocess.run(
            [sys.executable, __file__, "--measure-hw4", str(root), phase, "0"],
            check=True,
            capture_output=True,
            text=True,
            env={**env, "HWML_LOAD_WORKERS": str(workers)},
        )
        line = {**json.loads(child.stdout.strip().splitlines()[-1]), "workers": workers}
        seconds[workers].append(line["load_s"])
        print(json.dumps(line), flush=True)
    serial, parallel = (sum(seconds[w]) / len(seconds[w]) for w in (1, many))
    print(
        json.dumps(
            {
                "bench": "data_scale_hw4",
                "phase": f"compare_workers_{phase}",
                "workers": many,
                "serial_load_s": round(serial, 2),
                "parallel_load_s": round(parallel, 2),
                "speedup": round(serial / parallel, 2),
            }
        ),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50k rows instead of the course's 1.23 M; HW4: 440 files")
    ap.add_argument("--hw4", action="store_true", help="the HW4 Dataset folder instead of timit_11")
    ap.add_argument(
        "--compare-workers",
        nargs="?",
        const="cold",
        choices=("cold", "nocache"),
        help="--hw4: the first load (building the cache, or nocache: into RAM) with one process "
        "against several (HWML_LOAD_WORKERS), ratio",
    )
    ap.add_argument("--keep", type=Path, help="write the folder here and keep it (default: a temp dir)")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # child process: load and report
    ap.add_argument("--measure-hw4", nargs=3, help=argparse.SUPPRESS)  # child: ROOT PHASE STEPS
    args = ap.parse_args()
    if args.measure_hw4:
        root, phase, steps = args.measure_hw4
        print(json.dumps(measure_hw4(Path(root), phase, int(steps))))
        return
    if args.hw4:
        run_hw4(args)
        return
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
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(root)] + (["--quick"] if args.quick else []),
            check=True,
            capture_output=True,
            text=True,
        )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result["generate_s"] = round(gen_s, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
