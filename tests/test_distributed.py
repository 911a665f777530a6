"""`torchrun --nproc-per-node 2 -m hwml train`: DistributedDataParallel on CPU (gloo), 2 processes.

Every torchrun job listens on 127.0.0.1 only, on a free port, and is bounded by a timeout.
Tolerances: with the same global batch and seed, a 2-rank run's logged losses agree with one
process's to 1e-4 (float sums in another order; measured <= 2e-6) and the validation accuracy is
the same number of frames or utterances, when the model has no BatchNorm (BatchNorm normalises
per process, as DDP does by default) and no dropout (each rank draws its own masks).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_phoneme import synthetic_frames

from hwml.api import task_package
from hwml.data import load_dataset, write_hw4, write_libriphone
from hwml.data.types import FrameSet, UtteranceSet
from hwml.runs.checkpoint import load_run
from hwml.runs.folder import read_metrics
from hwml.train.engine import train

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).with_name("torchrun")
TIMEOUT = 120

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside python"),
]


def frames(n_utts=60, seed=0) -> FrameSet:
    """test_phoneme's synthetic utterances (class means + noise), 60 of them by default."""
    return synthetic_frames(n_utts, seed=seed)


def utterances(n_speakers=4, per=10, seed=0) -> UtteranceSet:
    profiles = torch.randn(16, 40, generator=torch.Generator().manual_seed(1234)) * 2.0
    gen = torch.Generator().manual_seed(seed)
    feats, lengths, labels = [], [], []
    for s in range(n_speakers):
        for _ in range(per):
            n = int(torch.randint(12, 90, (1,), generator=gen))
            feats.append(profiles[s] + torch.randn(n, 40, generator=gen) * 1.5 - 8.0)
            lengths.append(n)
            labels.append(s)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(torch.tensor(lengths), 0)])
    return UtteranceSet(
        torch.cat(feats),
        offsets,
        [f"utt-{seed}-{i}" for i in range(len(lengths))],
        torch.tensor(labels),
        [f"spk{i:02d}" for i in range(n_speakers)],
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp-data")
    write_libriphone(root / "hw2", frames(), frames(8, seed=1))
    write_hw4(root / "hw4", utterances(), utterances(per=3, seed=1))
    return {"phoneme": root / "hw2", "speaker": root / "hw4"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_cmd(nproc: int, *args: str, script: Path | None = None) -> list[str]:
    target = [str(script)] if script else ["-m", "hwml"]
    return [
        str(TORCHRUN),
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(nproc),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        *target,
        *args,
    ]


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    """cmd to its end, bounded by TIMEOUT; on a timeout torchrun's ranks (each in a session of
    its own) are killed too, so no stray process outlives the test."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        for pid in [*children(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


# the same global batch: 2 ranks x B against 1 process x 2B; lr_scaling sqrt: lr x sqrt(2)
CASES = {
    "phoneme": ("simple", {"batch_size": 32, "lr": 1e-3}),
    "speaker": ("medium", {"batch_size": 8, "lr": 3e-3, "dropout": 0.0, "segment_len": 32}),
}
COMMON = {"valid_every": 6, "log_every": 1, "log_every_s": 0}


@pytest.mark.parametrize("kind", ["phoneme", "speaker"])
def test_two_ranks_match_one_process_with_the_same_global_batch(data, kind, tmp_path):
    preset, per_rank = CASES[kind]
    steps = 12
    sets = [f"{k}={json.dumps(v)}" for k, v in {**COMMON, **per_rank}.items()]
    out = run(
        torchrun_cmd(
            2,
            "train",
            kind,
            str(data[kind]),
            "--out",
            str(tmp_path / "ddp"),
            "--preset",
            preset,
            "--max-steps",
            str(steps),
            "--device",
            "cpu",
            "--quiet",
            *[a for s in sets for a in ("--set", s)],
        )
    )
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])  # one summary line: rank 0's
    assert summary["step"] == steps and len(out.stdout.strip().splitlines()) == 1

    single = {**COMMON, **per_rank, "batch_size": 2 * per_rank["batch_size"], "lr": per_rank["lr"] * math.sqrt(2)}
    task = task_package(kind).task.make_task(load_dataset(data[kind]), preset, single, 0)
    train(task, {"max_steps": steps, "device": "cpu"}, tmp_path / "one")

    ddp, one = read_metrics(tmp_path / "ddp"), read_metrics(tmp_path / "one")
    losses = lambda evs: [e["loss"] for e in evs if e["event"] == "step"]  # noqa: E731
    valids = lambda evs: [(e["valid_loss"], e["valid_acc"], e["valid_n"]) for e in evs if e["event"] == "valid"]  # noqa: E731
    assert len(losses(ddp)) == steps
    assert max(abs(a - b) for a, b in zip(losses(ddp), losses(one))) < 1e-4
    assert losses(ddp)[-1] < losses(ddp)[0]  # it learns
    assert len(valids(ddp)) == len(valids(one)) == 2
    for (l1, a1, n1), (l2, a2, n2) in zip(valids(ddp), valids(one)):
        assert n1 == n2 and abs(l1 - l2) < 1e-4 and a1 == pytest.approx(a2, abs=0.5 / n1)

    model, config = load_run(tmp_path / "ddp")  # a run folder like any other
    assert config["world_size"] == 2 and config["distributed"]["global_batch"] == 2 * per_rank["batch_size"]
    assert config["distributed"]["lr_effective"] == pytest.approx(per_rank["lr"] * math.sqrt(2))
    assert load_run(tmp_path / "one")[1]["world_size"] == 1
    names = set(p.name for p in (tmp_path / "ddp").iterdir())
    assert {"config.json", "model.safetensors", "metrics.jsonl", "resume.safetensors"} <= names


def children(pid: int) -> list[int]:
    """The processes `pid` started (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _wait_for_valid(run_dir: Path, proc: subprocess.Popen, limit: float = TIMEOUT) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if any(e["event"] == "valid" for e in read_metrics(run_dir)) and (run_dir / "resume.safetensors").exists():
            return
        assert proc.poll() is None, "the job ended before it was killed"
        time.sleep(0.2)
    raise AssertionError("no validation within the time limit")


def test_a_killed_two_rank_run_resumes_in_one_process(data, tmp_path):
    run_dir = tmp_path / "run"
    cmd = torchrun_cmd(
        2,
        "train",
        "phoneme",
        str(data["phoneme"]),
        "--out",
        str(run_dir),
        "--preset",
        "simple",
        "--max-steps",
        "100000",
        "--device",
        "cpu",
        "--quiet",
        "--set",
        "valid_every=5",
        "--set",
        "batch_size=16",
    )
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_for_valid(run_dir, proc)
    finally:  # the ranks (torchrun starts each in a session of its own), then the launcher: a power cut
        for pid in [*children(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
    killed_at = max(e["step"] for e in read_metrics(run_dir) if e["event"] == "valid")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwml",
            "train",
            "phoneme",
            str(data["phoneme"]),
            "--out",
            str(run_dir),
            "--preset",
            "simple",
            "--max-steps",
            str(killed_at + 10),
            "--device",
            "cpu",
            "--quiet",
            "--resume",
            "--set",
            "valid_every=5",
            "--set",
            "batch_size=16",
        ],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    events = read_metrics(run_dir)
    starts = [e for e in events if e["event"] == "start"]
    assert [s["world_size"] for s in starts] == [2, 1] and starts[1]["resumed"] and 0 < starts[1]["step"] <= killed_at
    assert events[-1]["event"] == "end" and events[-1]["step"] == killed_at + 10
    assert load_run(run_dir)[1]["world_size"] == 1


def test_a_one_process_run_resumes_on_two_ranks(data, tmp_path):
    run_dir = tmp_path / "run"
    task = task_package("speaker").task.make_task(
        load_dataset(data["speaker"]), "medium", {"batch_size": 8, "segment_len": 32, "valid_every": 4}, 0
    )
    train(task, {"max_steps": 4, "device": "cpu"}, run_dir)
    out = run(
        torchrun_cmd(
            2,
            "train",
            "speaker",
            str(data["speaker"]),
            "--out",
            str(run_dir),
            "--preset",
            "medium",
            "--max-steps",
            "8",
            "--device",
            "cpu",
            "--quiet",
            "--resume",
            "--set",
            "batch_size=4",
            "--set",
            "segment_len=32",
            "--set",
            "valid_every=4",
        )
    )
    assert out.returncode == 0, out.stderr[-2000:]
    events = read_metrics(run_dir)
    assert [e["world_size"] for e in events if e["event"] == "start"] == [1, 2]
    assert [e["step"] for e in events if e["event"] == "valid"] == [4, 8]
    model, config = load_run(run_dir)
    assert config["world_size"] == 2 and config["steps"] == 8 and config["finished"]


FAULT = """
import os, sys
sys.path.insert(0, {repo!r})
from hwml import cli
from hwml.phoneme.task import PhonemeTask
from hwml.errors import HwmlError

if os.environ.get("RANK") == "1":   # rank 1's data go bad at its 4th batch; rank 0 is then waiting
    draw, calls = PhonemeTask.train_batch, []

    def failing(self, gen, device):
        calls.append(1)
        if len(calls) == 4:
            raise HwmlError("feature file damaged (injected)")
        return draw(self, gen, device)

    PhonemeTask.train_batch = failing
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_failure_in_one_rank_ends_the_job_with_one_error_line(data, tmp_path):
    script = tmp_path / "fault.py"
    script.write_text(FAULT.format(repo=str(REPO)))
    start = time.monotonic()
    out = run(
        torchrun_cmd(
            2,
            "train",
            "phoneme",
            str(data["phoneme"]),
            "--out",
            str(tmp_path / "run"),
            "--preset",
            "simple",
            "--max-steps",
            "1000",
            "--device",
            "cpu",
            "--quiet",
            script=script,
        )
    )
    assert out.returncode != 0
    assert time.monotonic() - start < TIMEOUT  # ended, no hang (run() would have raised)
    ours = [line for line in out.stderr.splitlines() if line.startswith("hwml: error:")]
    assert ours == ["hwml: error: rank 1: feature file damaged (injected)"]
    assert "Traceback" not in out.stderr.split("hwml: error:")[0]  # no traceback from the ranks before it


def test_max_seconds_and_early_stopping_stop_both_ranks_at_one_step(data, tmp_path):
    """Ranks whose clocks or validations disagreed would wait for each other forever (run()'s
    timeout); agreed, the job ends normally at one step."""
    out = run(
        torchrun_cmd(
            2,
            "train",
            "phoneme",
            str(data["phoneme"]),
            "--out",
            str(tmp_path / "time"),
            "--preset",
            "simple",
            "--max-seconds",
            "2",
            "--device",
            "cpu",
            "--quiet",
            "--set",
            "valid_every=50",
            "--set",
            "max_epochs=100000",
        )
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["reason"] == "max_seconds"
    out = run(
        torchrun_cmd(
            2,
            "train",
            "phoneme",
            str(data["phoneme"]),
            "--out",
            str(tmp_path / "early"),
            "--preset",
            "simple",
            "--max-steps",
            "100000",
            "--device",
            "cpu",
            "--quiet",
            "--set",
            "valid_every=2",
            "--set",
            "patience=1",
            "--set",
            "lr=1.0",
        )
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["reason"] == "early_stop"


def test_ctrl_c_stops_every_rank(data, tmp_path):
    run_dir = tmp_path / "run"
    cmd = torchrun_cmd(
        2,
        "train",
        "phoneme",
        str(data["phoneme"]),
        "--out",
        str(run_dir),
        "--preset",
        "simple",
        "--max-steps",
        "100000",
        "--device",
        "cpu",
        "--quiet",
        "--set",
        "valid_every=5",
    )
    proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_valid(run_dir, proc)
        ranks = children(proc.pid)
        assert len(ranks) == 2
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to torchrun, the terminal's foreground
        proc.communicate(timeout=60)
    finally:
        for pid in [*children(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode != 0
    for pid in ranks:  # both ranks are gone (or zombies of the launcher that just ended)
        state = Path(f"/proc/{pid}/stat")
        assert not state.exists() or state.read_text().split(")")[-1].split()[0] == "Z"
    assert load_run(run_dir)[1]["world_size"] == 2  # the last checkpoint is whole
