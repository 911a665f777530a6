"""bench/bench_space.py runs: a half-minute soak with two honest visitors and the three hostile
ones against its own Space-mode server prints its JSON line, with no honest error, nothing
hostile accepted, no payload run and the disk under its budget (the figures themselves are the
bench's, not asserted here: no timed assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_space_soak_prints_its_figures_and_nothing_hostile_gets_through(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_space.py"), "--visitors", "2", "--minutes", "0.5"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    soak = next(r for r in records if r["bench"] == "space_soak")
    assert soak["honest_errors"] == 0, out.stdout[-3000:]
    assert soak["hostile_accepted"] == 0 and soak["hostile_refused"] > 0 and not soak["payload_ran"]
    assert soak["counts"]["predict"] > 0 and soak["trainings_asked"] == 2
    assert soak["disk_peak_mb"] <= soak["disk_budget_mb"]
    assert "Predict p50" in out.stdout
