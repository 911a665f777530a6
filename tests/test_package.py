"""hwml as an installed package (README: Install): build the wheel from a copy of the project,
install it with `--no-deps` into a temporary folder, and run its `hwml` script from another
directory, where no clone is around to find the shipped models by accident.

Everything is offline: `pip wheel --no-build-isolation --no-index` builds with the setuptools
already installed, and `--no-deps` keeps the environment's torch and numpy (as on Colab).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hwml.errors import HwmlError

REPO = Path(__file__).resolve().parents[1]
# what a clean clone has at its top level that the build must not need
NOT_COPIED = {".git", ".venv", "runs", "tests", "bench", "build", "dist", ".ci", "cache", "tmp", "test-output"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the wheel, the --target folder it is installed in)."""
    tmp = tmp_path_factory.mktemp("package")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "shipped")
    src.mkdir()
    for entry in REPO.iterdir():
        if entry.name in NOT_COPIED or entry.name.startswith("."):
            continue
        if entry.is_dir():
            shutil.copytree(entry, src / entry.name, ignore=ignore)
        else:
            shutil.copy2(entry, src / entry.name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp / "dist").glob("hwml-*.whl")
    target = tmp / "site"
    done = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return wheel, target


def _run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWML_") and k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), OMP_NUM_THREADS="1", GRADIO_ANALYTICS_ENABLED="False")
    return subprocess.run(
        [str(target / "bin" / "hwml"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_wheel_holds_the_shipped_files_and_not_their_makers(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "hwml/cli.py",
        "hwml/i18n/en.json",
        "hwml/i18n/zh-TW.json",
        "hwml/shipped/checkpoints/phoneme/model.safetensors",
        "hwml/shipped/checkpoints/phoneme/config.json",
        "hwml/shipped/checkpoints/speaker/model.safetensors",
        "hwml/shipped/assets/fonts/hwml-cjk.ttf",
        "hwml/shipped/assets/clips/george_1.flac",
        "hwml/shipped/assets/style.css",
    ):
        assert name in names, name
    assert not [n for n in names if n.endswith(("card.py", "make.sh")) or "/make_" in n]
    entry_points = zipfile.ZipFile(wheel).read("hwml-0.1.0.dist-info/entry_points.txt").decode()
    assert "hwml = hwml.cli:main" in entry_points and "hwml-app = hwml.ui.launch:main" in entry_points
    shipped = zipfile.ZipFile(wheel).read("hwml/shipped/checkpoints/phoneme/model.safetensors")
    assert shipped == (REPO / "checkpoints" / "phoneme" / "model.safetensors").read_bytes()


def test_the_metadata_accepts_colab_s_torch_and_numpy(installed):
    """Ranges, not the exact pins of requirements.txt: an older preinstalled torch or numpy stays."""
    wheel, _ = installed
    metadata = zipfile.ZipFile(wheel).read("hwml-0.1.0.dist-info/METADATA").decode()
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    core = [r for r in requires if "extra ==" not in r]
    assert "torch>=2.3" in core and "numpy>=1.26" in core
    assert not [r for r in core if "==" in r], core
    assert any(r.startswith("gradio") and 'extra == "app"' in r for r in requires)
    assert any(r.startswith("pocketsphinx") and 'extra == "alignment"' in r for r in requires)


def test_the_installed_script_predicts_with_a_shipped_model_from_another_directory(installed, tmp_path):
    _, target = installed
    where = tmp_path / "elsewhere"
    where.mkdir()
    rate = 16000
    t = np.arange(int(1.2 * rate)) / rate
    rng = np.random.default_rng(0)
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) * (t > 0.3) + 0.01 * rng.standard_normal(t.size)
    sf.write(where / "clip.wav", wave.astype(np.float32), rate)

    helped = _run_installed(target, where, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "predict" in helped.stdout and "shipped:phoneme" in helped.stdout

    done = _run_installed(target, where, "predict", "shipped:phoneme", "clip.wav", "--out", "x.csv")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    with open(where / "x.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["file", "frame", "time", "phone", "prob"]
    assert len(rows) == summary["rows"] > 100  # 1.2 s of 10 ms frames
    config = json.loads((target / "hwml" / "shipped" / "checkpoints" / "phoneme" / "config.json").read_text())
    assert {r["phone"] for r in rows} <= set(config["class_names"])

    # the module form imports the installed copy, not a clone's
    located = subprocess.run(
        [sys.executable, "-c", "import hwml.settings as s; print(s.checkpoints_dir())"],
        cwd=where,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert Path(located.stdout.strip()) == target / "hwml" / "shipped" / "checkpoints"


def test_an_unknown_shipped_name_is_one_line_listing_the_known_ones(installed, tmp_path):
    _, target = installed
    (tmp_path / "a.wav").write_bytes(b"")
    done = _run_installed(target, tmp_path, "predict", "shipped:nope", "a.wav", "--out", "x.csv")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "shipped:phoneme" in done.stderr and "shipped:speaker" in done.stderr


def test_a_git_lfs_pointer_instead_of_weights_is_named(tmp_path, monkeypatch):
    """A clone made without git-lfs (pip install git+URL on a machine without it) has pointers."""
    from hwml.runs.shipped import resolve_run

    folder = tmp_path / "phoneme"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 2800460\n", encoding="utf-8"
    )
    monkeypatch.setenv("HWML_CHECKPOINTS_DIR", str(tmp_path))
    with pytest.raises(HwmlError, match="Git LFS pointer"):
        resolve_run("shipped:phoneme")
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    assert resolve_run("shipped:phoneme") == folder
    assert resolve_run(tmp_path / "mine") == tmp_path / "mine"
    with pytest.raises(HwmlError, match="no such shipped model"):
        resolve_run("shipped:../phoneme")


@pytest.mark.parametrize("task, speaker_data", [("phoneme", "builtin"), ("speaker", "speechocean762")])
def test_the_committed_model_cards_are_what_card_py_writes(tmp_path, task, speaker_data):
    """checkpoints/card.py is re-runnable: on a copy of a shipped run it writes the committed card,
    Hub metadata block first (licence, datasets, metrics, library_name), intended use after."""
    import yaml

    run = tmp_path / task
    shutil.copytree(REPO / "checkpoints" / task, run)
    (run / "README.md").unlink()
    done = subprocess.run(
        [sys.executable, str(REPO / "checkpoints" / "card.py"), str(run), "--speaker-data", speaker_data],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    card = (run / "README.md").read_text(encoding="utf-8")
    assert card == (REPO / "checkpoints" / task / "README.md").read_text(encoding="utf-8")
    _, block, body = card.split("---\n", 2)
    meta = yaml.safe_load(block)
    assert meta["license"] == "mit" and meta["library_name"] == "hwml" and meta["metrics"] == ["accuracy"]
    assert meta["datasets"] == ["mispeech/speechocean762"]
    figures = [json.loads(line) for line in (run / "evaluation.jsonl").read_text().splitlines() if line.strip()]
    results = meta["model-index"][0]["results"]
    assert [round(r["metrics"][0]["value"], 4) for r in results] == [round(f["accuracy"], 4) for f in figures]
    for heading in ("## Data and licences", "## Intended use and limitations", "MIT licence", "children"):
        assert heading in body
    assert "HWML_RUNS_DIR" in body and "GRADIO_TEMP_DIR" in body  # what the app keeps, and where


def test_evaluating_a_shipped_model_is_refused_before_it_writes_into_it(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "hwml", "evaluate", "shipped:phoneme", str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "copy it first" in done.stderr
    assert done.stderr.strip().count("\n") == 0
