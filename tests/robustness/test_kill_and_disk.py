"""Crashes and interruptions: a training process killed with SIGKILL at random (seeded) points
leaves a loadable run folder that `train --resume` continues; a full disk or a read-only run
folder during a save is a clear error that keeps the previous checkpoint."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from robust_helpers import PHONEME_SETTINGS, REPO, assert_refused, cli, parse_sets, write_phoneme_folder
from safetensors.torch import load_file

from hwml.errors import HwmlError
from hwml.runs.checkpoint import load_run
from hwml.runs.folder import read_metrics
from hwml.runs.resume import read_resume_state

CHECKPOINT_FILES = ("config.json", "model.safetensors", "resume.json", "resume.safetensors")
FAST = [*PHONEME_SETTINGS, "--set", "valid_every=3", "--set", "log_every=1", "--quiet", "--seed", "0"]


def train_cmd(data: Path, run: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "hwml", "train", "phoneme", str(data), "--out", str(run), *FAST, *extra]


def child_env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **extra}


def events_in(run: Path) -> int:
    try:
        return (run / "metrics.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"training ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("training made no progress")
        time.sleep(0.005)


def check_run_folder(run: Path) -> int | None:
    """The invariants a kill must never break; returns the step of the resume state (None: none yet)."""
    raw = (run / "metrics.jsonl").read_bytes() if (run / "metrics.jsonl").exists() else b""
    *full, tail = raw.split(b"\n")
    for line in full:  # every complete line is one JSON event; only an unterminated tail may be torn
        assert isinstance(json.loads(line), dict), line
    assert len(read_metrics(run)) >= len(full)
    assert not tail or tail.startswith(b"{"), tail
    if not (run / "config.json").exists():
        assert not (run / "model.safetensors").exists()  # weights are written before their config
        with pytest.raises(HwmlError):
            load_run(run)
        return None
    json.loads((run / "config.json").read_text())
    assert load_file(str(run / "model.safetensors"))
    model, config = load_run(run)
    assert config["task"] == "phoneme" and not model.training
    if not (run / "resume.safetensors").exists():
        return None
    meta, _ = read_resume_state(run)  # the counters inside the tensors file: what a resume continues from
    if (run / "resume.json").exists():  # its readable copy: the same checkpoint, or (killed in between) an older one
        copy = json.loads((run / "resume.json").read_text())
        assert copy == meta or copy["step"] <= meta["step"], (copy["step"], meta["step"])
    return meta["step"]


def test_sigkill_at_random_points_then_resume(tmp_path, capsys):
    data = write_phoneme_folder(tmp_path / "data")
    run = tmp_path / "run"
    rng = random.Random(1234)
    resumed_from = []
    for _round in range(3):
        before = check_run_folder(run) if run.exists() else None
        cmd = train_cmd(data, run, "--max-steps", "100000", *(["--resume"] if before else []))
        proc = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            target = events_in(run) + rng.randint(2, 40)
            wait_for(lambda: events_in(run) >= target, proc)  # noqa: B023 (called at once)
            time.sleep(rng.uniform(0, 0.05))  # somewhere between, or inside, checkpoint saves
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        after = check_run_folder(run)
        if before:
            resumed_from.append(before)
            starts = [e for e in read_metrics(run) if e["event"] == "start" and e.get("resumed")]
            assert starts and starts[-1]["step"] == before  # the step count continued ...
            steps = [e["step"] for e in read_metrics(run) if e["event"] == "step"]
            assert steps[-1] > before and after >= before  # ... and went on from there
    # a last resume runs to its end: same folder, steps continuing, a loadable best model
    before = check_run_folder(run)
    assert before, "no kill landed after a checkpoint; the test's kill points are too early"
    final = before + 12
    code, _, err = cli(capsys, *train_cmd(data, run, "--max-steps", str(final), "--resume")[3:])
    assert code == 0, err
    events = read_metrics(run)
    last_start = max(i for i, e in enumerate(events) if e["event"] == "start")
    assert events[last_start]["step"] == before and events[last_start]["resumed"]
    steps = [e["step"] for e in events[last_start:] if e["event"] == "step"]
    assert steps == sorted(set(steps)) and steps[0] > before and steps[-1] == final
    assert events[-1]["event"] == "end" and events[-1]["step"] == final
    assert check_run_folder(run) == final
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name]  # a killed write's temp files were removed
    print(f"\nkill test: resumed from steps {resumed_from} then ran to {final}")


def test_resume_after_a_torn_metrics_line(tmp_path):
    """A kill in the middle of a metrics write leaves half a line; the resumed run's events must
    not be glued onto it (and lost)."""
    from hwml.api import train_run

    data = write_phoneme_folder(tmp_path / "data")
    run = tmp_path / "run"
    overrides = {**parse_sets(FAST), "valid_every": 5}
    train_run("phoneme", data, run, preset="medium", overrides=overrides, max_steps=10)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"event": "step", "step": 11, "lo')  # torn by the kill
    train_run("phoneme", data, run, preset="medium", overrides=overrides, max_steps=15, resume=True)
    events = read_metrics(run)
    assert [e["step"] for e in events if e["event"] == "start"] == [0, 10]
    assert events[-1]["event"] == "end" and events[-1]["step"] == 15


# ------------------------------------------------------------------------------------ full disk


@contextlib.contextmanager
def tiny_filesystem(folder: Path, size: str):
    """A real size-limited tmpfs (needs root); None where it cannot be mounted."""
    folder.mkdir(parents=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
        if shutil.which("mount")
        else False
    )
    try:
        yield folder if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill_disk(folder: Path, leave: int = 4096) -> None:
    st = os.statvfs(folder)
    with open(folder / "filler", "wb") as f:
        with contextlib.suppress(OSError):
            f.write(b"\0" * max(st.f_bavail * st.f_frsize - leave, 0))


def test_disk_full_during_a_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from hwml.api import train_run

    data = write_phoneme_folder(tmp_path / "data")
    overrides = {**parse_sets(FAST), "valid_every": 4}
    with tiny_filesystem(tmp_path / "fs", "4m") as fs:
        run = (fs or tmp_path) / "run"
        kept = {}

        def fill_after_first_checkpoint(event):
            if event["event"] == "valid" and (run / "model.safetensors").exists() and not kept:
                kept.update({n: (run / n).read_bytes() for n in CHECKPOINT_FILES})
                if fs is not None:
                    fill_disk(fs)
                else:  # no mount rights (not root): every later write fails as a full disk would

                    def no_space(*a, **k):
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

                    monkeypatch.setattr(os, "replace", no_space)

        with pytest.raises(HwmlError) as e:
            train_run(
                "phoneme",
                data,
                run,
                preset="medium",
                overrides=overrides,
                max_steps=40,
                callbacks=[fill_after_first_checkpoint],
            )
        msg = str(e.value)
        assert "\n" not in msg and str(run) in msg and "No space left on device" in msg, msg
        monkeypatch.undo()
        assert kept and {n: (run / n).read_bytes() for n in CHECKPOINT_FILES} == kept
        assert not [p.name for p in run.iterdir() if ".tmp" in p.name]  # no half-written leftovers
        load_run(run)
        (run.parent / "filler").unlink(missing_ok=True)
        kept_step = json.loads(kept["resume.json"])["step"]
        summary = train_run(
            "phoneme", data, run, preset="medium", overrides=overrides, max_steps=kept_step + 4, resume=True
        )
        assert summary["step"] == kept_step + 4
        assert [e["step"] for e in read_metrics(run) if e["event"] == "start"][-1] == kept_step


def test_disk_full_through_the_cli_is_exit_2(tmp_path, capsys):
    data = write_phoneme_folder(tmp_path / "data")
    with tiny_filesystem(tmp_path / "fs", "64k") as fs:
        if fs is None:
            pytest.skip("cannot mount a small tmpfs here (needs root)")
        code, _, err = cli(capsys, *train_cmd(data, fs / "run", "--max-steps", "30", "--set", "hidden=[512]")[3:])
        assert_refused(code, err, fs / "run", "No space left on device")


# ------------------------------------------------------------------------------- read-only folder


@contextlib.contextmanager
def read_only(folder: Path, proc: subprocess.Popen):
    """Make `folder` read-only under a running process's feet: as root (who ignores permission
    bits) with a read-only bind mount over it, otherwise with chmod. The process is paused
    meanwhile, so it cannot open a file for writing through the new mount before it is read-only."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    proc.send_signal(signal.SIGSTOP)
    try:
        bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
        ro = bind.returncode == 0 and subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True, text=True
        )
    finally:
        proc.send_signal(signal.SIGCONT)
    try:
        if not ro or ro.returncode != 0:
            pytest.skip(f"cannot make a read-only bind mount here: {(bind.stderr or ro.stderr).strip()}")
        yield
    finally:
        for _ in range(3):  # every layer we stacked, and nothing else
            if bind.returncode != 0 or subprocess.run(["mountpoint", "-q", str(folder)]).returncode != 0:
                break
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_read_only_run_folder_during_a_save(tmp_path, capsys):
    """The run folder turns read-only while a real training process runs: it stops with exit 2
    and a clear message, and the checkpoint that was there is kept, loadable and resumable."""
    data = write_phoneme_folder(tmp_path / "data")
    run = tmp_path / "run"
    proc = subprocess.Popen(
        train_cmd(data, run, "--max-steps", "100000"),
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: events_in(run) > 0 and (run / "metrics.jsonl").read_bytes().count(b'"valid"') >= 2, proc)
        with read_only(run, proc):
            kept = {n: (run / n).read_bytes() for n in CHECKPOINT_FILES}
            _, err = proc.communicate(timeout=60)
            line = assert_refused(proc.returncode, err, run, "cannot write")
            assert "Read-only file system" in line or "Permission denied" in line, line
            assert {n: (run / n).read_bytes() for n in CHECKPOINT_FILES} == kept
            load_run(run)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    step = json.loads(kept["resume.json"])["step"]
    code, _, err = cli(capsys, *train_cmd(data, run, "--max-steps", str(step + 3), "--resume")[3:])
    assert code == 0, err
    assert read_metrics(run)[-1]["step"] == step + 3
