"""bench_data_scale.py --hw4 --quick: a course-format HW4 folder loads (no cache, cache built,
cache mapped) and trains `medium` a few steps; the cached load maps the features, not copies them."""

import json
import subprocess
import sys
from pathlib import Path


def test_hw4_scale_bench_quick():
    bench = Path(__file__).resolve().parents[1] / "bench" / "bench_data_scale.py"
    out = subprocess.run(
        [sys.executable, str(bench), "--hw4", "--quick"], check=True, capture_output=True, text=True, timeout=600
    )
    lines = {line["phase"]: line for line in map(json.loads, out.stdout.strip().splitlines())}
    assert list(lines) == ["write", "nocache", "cold", "cached", "train"]
    assert all(lines[p]["utterances"] == 400 and lines[p]["test_utterances"] == 40 for p in ("nocache", "cached"))
    assert lines["train"]["steps"] == 3 and lines["train"]["peak_rss_during_training_mb"] > 0
    # in RAM the ~32 MB of features are private memory; mapped from the cache they are not
    assert lines["cached"]["rss_anon_mb"] < lines["nocache"]["rss_anon_mb"]
