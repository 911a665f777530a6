"""Plain helpers of the robustness suite (fixtures live in conftest.py): tiny course folders
written in the test, and the two ways of calling the CLI: in this process through `hwml.cli.main`
(the very code `python -m hwml` runs) and as a real subprocess (exit codes, stderr at OS level)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from hwml.data import FrameSet, UtteranceSet, write_hw4, write_libriphone

REPO = Path(__file__).resolve().parents[2]
SPEAKERS = ["spkA", "spkB", "spkC"]
# Small models, so every fixture run trains in a second or two on 2 shared cores.
PHONEME_SETTINGS = [
    "--preset",
    "medium",
    "--set",
    "hidden=[32]",
    "--set",
    "batch_size=64",
    "--set",
    "concat_nframes=3",
    "--set",
    "warmup_steps=0",
]
SPEAKER_OVERRIDES = {
    "d_model": 16,
    "ff_dim": 32,
    "heads": 2,
    "head_hidden": 16,
    "segment_len": 32,
    "batch_size": 8,
    "warmup_steps": 0,
    "valid_every": 5,
}


def parse_sets(argv: list[str]) -> dict:
    from hwml.cli import _parse_set

    return _parse_set([argv[i + 1] for i, a in enumerate(argv) if a == "--set"])


def write_phoneme_folder(root: Path, seed: int = 0, n_train: int = 16, n_test: int = 4) -> Path:
    """A libriphone folder whose frames carry their label (so a few steps learn something)."""
    g = torch.Generator().manual_seed(seed)

    def part(n_utt, first_speaker):
        lens = [30 + 5 * (i % 4) for i in range(n_utt)]
        labels = torch.cat([torch.randint(0, 41, (t,), generator=g) for t in lens])
        feats = torch.randn(len(labels), 39, generator=g) * 0.3
        feats[torch.arange(len(labels)), labels % 39] += 3.0
        offsets = torch.tensor([0, *torch.tensor(lens).cumsum(0).tolist()])
        ids = [f"{first_speaker + i % 4}-1-{i:04d}" for i in range(n_utt)]
        return FrameSet(feats, labels, offsets, ids, [str(i) for i in range(41)], 1)

    return write_libriphone(root, part(n_train, 100), part(n_test, 900))


def write_speaker_folder(root: Path, seed: int = 0, n_train: int = 24, n_test: int = 6) -> Path:
    """An HW4 Dataset folder (3 speakers, offset means) with a labelled held-out part."""
    g = torch.Generator().manual_seed(seed)

    def part(n, tag):
        lens = [40 + 7 * (i % 5) for i in range(n)]
        labels = torch.tensor([i % 3 for i in range(n)])
        feats = torch.cat([torch.randn(t, 40, generator=g) + 2.0 * labels[i] for i, t in enumerate(lens)])
        offsets = torch.tensor([0, *torch.tensor(lens).cumsum(0).tolist()])
        return UtteranceSet(feats, offsets, [f"{tag}{i}" for i in range(n)], labels, SPEAKERS)

    return write_hw4(root, part(n_train, "train"), part(n_test, "test"))


# ------------------------------------------------------------------------------------------ CLI


def cli(capsys, *argv) -> tuple[int, str, str]:
    """`python -m hwml ARGV` in this process: (exit code, stdout, stderr)."""
    from hwml.cli import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse usage errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def cli_proc(*argv, env: dict | None = None, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """`python -m hwml ARGV` as a real process."""
    full_env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "hwml", *map(str, argv)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=kw.pop("cwd", REPO),
        **kw,
    )


def assert_refused(code: int, err: str, name, *words: str) -> str:
    """Exit code 2 and exactly one line on stderr, naming the file and the problem; no traceback."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("hwml: error: "), line
    assert str(name) in line, (name, line)
    for w in words:
        assert w.lower() in line.lower(), (w, line)
    return line


def assert_error(excinfo, name, *words: str) -> str:
    """A HwmlError from the Python API: one line, naming the file and the problem."""
    msg = str(excinfo.value)
    assert "\n" not in msg and str(name) in msg, msg
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)
    return msg
