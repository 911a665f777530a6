"""Pickles that would run code, and pickles that hold anything but a plain tensor, are refused at
every entry point (CLI predict / train / evaluate, the Python API, dataset folders and zips of
them, run folders), and the payload provably never runs: it would create a marker file."""

from __future__ import annotations

import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from robust_helpers import assert_error, assert_refused, cli, cli_proc

from hwml.api import predict_run
from hwml.data import load_dataset
from hwml.errors import HwmlError
from hwml.runs.checkpoint import load_run
from hwml.safeio import load_tensor_file


class ShellPayload:
    """Unpickling this runs `touch MARKER` through the shell."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class ExecPayload:
    """Unpickling this runs Python code that writes MARKER."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def evil_files(folder: Path, marker: Path) -> dict[str, Path]:
    """Every way we know of to smuggle code or non-tensors into a `.pt` / `.npy` file."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}

    def save(name, obj, **kw):
        files[name] = folder / name
        torch.save(obj, files[name], **kw)

    save("shell.pt", ShellPayload(marker))
    save("exec.pt", ExecPayload(marker))
    save("tensor_and_payload.pt", {"x": torch.zeros(5, 39), "evil": ExecPayload(marker)})
    save("legacy_format.pt", ShellPayload(marker), _use_new_zipfile_serialization=False)
    save("dict_of_tensors.pt", {"x": torch.zeros(5, 39)})
    save("list_of_tensors.pt", [torch.zeros(5, 39)])
    save("a_number.pt", 3)
    files["raw_pickle.pt"] = folder / "raw_pickle.pt"
    files["raw_pickle.pt"].write_bytes(pickle.dumps(ExecPayload(marker)))
    files["pickle_named.npy"] = folder / "pickle_named.npy"
    files["pickle_named.npy"].write_bytes(pickle.dumps(ShellPayload(marker)))
    files["object_array.npy"] = folder / "object_array.npy"
    np.save(files["object_array.npy"], np.array([ExecPayload(marker), 1.0], dtype=object), allow_pickle=True)
    return files


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PAYLOAD_RAN"
    yield path
    assert not path.exists(), "a pickle payload ran"


def test_payload_would_run_if_loaded_unsafely(tmp_path, marker):
    """The fixture's payloads are live: plain pickle.load (what hwml must never do) runs them."""
    files = evil_files(tmp_path / "evil", marker)
    with open(files["raw_pickle.pt"], "rb") as f:
        pickle.load(f)
    assert marker.read_text() == "pwned"
    marker.unlink()


def test_cli_predict_refuses_every_evil_file_and_keeps_working(tmp_path, capsys, phoneme_run, marker):
    good = tmp_path / "good.npy"
    np.save(good, np.random.default_rng(0).standard_normal((12, 39)).astype(np.float32))
    for _name, path in evil_files(tmp_path / "evil", marker).items():
        code, _, err = cli(capsys, "predict", phoneme_run, path, "--out", tmp_path / "p.csv")
        assert_refused(code, err, path)
        assert not (tmp_path / "p.csv").exists()
        # the same process goes on working: a good file right after the refusal
        code, _, err = cli(capsys, "predict", phoneme_run, good, "--out", tmp_path / "ok.csv")
        assert code == 0, err
        (tmp_path / "ok.csv").unlink()


def test_python_api_refuses_every_evil_file(tmp_path, phoneme_run, speaker_run, marker):
    for _name, path in evil_files(tmp_path / "evil", marker).items():
        with pytest.raises(HwmlError) as e:
            load_tensor_file(path)
        assert_error(e, path)
        for run in (phoneme_run, speaker_run):
            with pytest.raises(HwmlError) as e:
                predict_run(run, [path], tmp_path / "p.csv")
            assert_error(e, path)


def test_real_process_refuses_an_evil_pt(tmp_path, phoneme_run, marker):
    evil = evil_files(tmp_path / "evil", marker)["raw_pickle.pt"]  # also makes torch warn: still one line
    proc = cli_proc("predict", phoneme_run, evil, "--out", tmp_path / "p.csv")
    assert_refused(proc.returncode, proc.stderr, evil, "not a plain tensor")


# ----------------------------------------------------------------------------- inside data folders


def _plant(victim: Path, marker: Path) -> None:
    torch.save({"x": torch.zeros(5, 39), "evil": ExecPayload(marker)}, victim)


def test_dataset_folders_with_a_pickle_inside_are_refused(
    tmp_path, capsys, phoneme_data, speaker_data, phoneme_run, marker
):
    lp = shutil.copytree(phoneme_data, tmp_path / "lp")
    victim_lp = sorted((lp / "feat" / "test").glob("*.pt"))[1]
    _plant(victim_lp, marker)
    hw4 = shutil.copytree(speaker_data, tmp_path / "hw4")
    victim_hw4 = sorted(hw4.glob("uttr-*.pt"))[3]
    _plant(victim_hw4, marker)

    for argv, victim in [
        (("train", "phoneme", lp, "--out", tmp_path / "r1", "--max-steps", 1), victim_lp),
        (("evaluate", phoneme_run, lp), victim_lp),
        (("predict", phoneme_run, lp, "--out", tmp_path / "p.csv"), victim_lp),
        (("train", "speaker", hw4, "--out", tmp_path / "r2", "--max-steps", 1), victim_hw4),
    ]:
        code, _, err = cli(capsys, *argv)
        assert_refused(code, err, victim)
    for folder, victim in ((lp, victim_lp), (hw4, victim_hw4)):
        with pytest.raises(HwmlError) as e:
            load_dataset(folder)
        assert_error(e, victim)
    assert not (tmp_path / "r1" / "model.safetensors").exists()


def test_zipped_dataset_with_a_pickle_inside_is_refused(tmp_path, capsys, speaker_data, marker):
    hw4 = shutil.copytree(speaker_data, tmp_path / "hw4")
    victim = sorted(hw4.glob("uttr-*.pt"))[0]
    _plant(victim, marker)
    archive = tmp_path / "course.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(hw4.iterdir()):
            zf.write(p, f"Dataset/{p.name}")
    with pytest.raises(HwmlError) as e:
        load_dataset(archive)
    msg = assert_error(e, archive, victim.name)
    assert "hwml-data-" not in msg  # names the user's zip, not our temp folder
    code, _, err = cli(capsys, "train", "speaker", archive, "--out", tmp_path / "r", "--max-steps", 1)
    assert_refused(code, err, archive, victim.name)


def test_timit11_labels_as_pickled_objects_are_refused(tmp_path, capsys, marker):
    root = tmp_path / "timit_11"
    root.mkdir()
    np.save(root / "train_11.npy", np.zeros((4, 429), np.float32))
    np.save(root / "train_label_11.npy", np.array([ShellPayload(marker)] * 4, dtype=object), allow_pickle=True)
    code, _, err = cli(capsys, "train", "phoneme", root, "--out", tmp_path / "r", "--max-steps", 1)
    assert_refused(code, err, root / "train_label_11.npy", "object")


# -------------------------------------------------------------------------------------- run folders


@pytest.mark.parametrize("tamper", ["weights_are_a_pickle", "pickle_instead_of_safetensors"])
def test_checkpoints_load_only_from_safetensors(tmp_path, capsys, phoneme_run, marker, tamper):
    run = shutil.copytree(phoneme_run, tmp_path / "run")
    state = {k: v.clone() for k, v in load_run(run)[0].state_dict().items()}
    evil = {**state, "evil": ExecPayload(marker)}
    if tamper == "weights_are_a_pickle":
        torch.save(evil, run / "model.safetensors")
        words = ("model.safetensors",)
    else:  # what the course notebooks save: model.ckpt / model.pt pickles
        (run / "model.safetensors").unlink()
        torch.save(evil, run / "model.pt")
        torch.save(evil, run / "model.ckpt")
        words = ("model.safetensors",)
    with pytest.raises(HwmlError) as e:
        load_run(run)
    assert_error(e, run, *words)
    feats = tmp_path / "x.npy"
    np.save(feats, np.zeros((5, 39), np.float32))
    code, _, err = cli(capsys, "predict", run, feats, "--out", tmp_path / "p.csv")
    assert_refused(code, err, run, *words)


def test_resume_state_as_a_pickle_is_refused(tmp_path, capsys, phoneme_run, phoneme_data, marker):
    run = shutil.copytree(phoneme_run, tmp_path / "run")
    torch.save({"model.w": torch.zeros(2), "evil": ShellPayload(marker)}, run / "resume.safetensors")
    code, _, err = cli(
        capsys,
        "train",
        "phoneme",
        phoneme_data,
        "--out",
        run,
        "--resume",
        "--max-steps",
        30,
        "--quiet",
        "--set",
        "hidden=[32]",
        "--set",
        "concat_nframes=3",
    )
    assert_refused(code, err, run / "resume.safetensors")


@pytest.mark.parametrize(
    "config",
    [
        "[1, 2, 3]",
        '{"task": "phoneme"}',
        '{"task": "phoneme", "model": "x"}',
        '{"task": "phoneme", "model": {"name": "os.system", "kwargs": {}}}',
        '{"task": "../../etc", "model": {}}',
        "not json",
        "",
    ],
)
def test_tampered_run_config_is_a_clear_error(tmp_path, capsys, phoneme_run, config):
    run = shutil.copytree(phoneme_run, tmp_path / "run")
    (run / "config.json").write_text(config)
    feats = tmp_path / "x.npy"
    np.save(feats, np.zeros((5, 39), np.float32))
    with pytest.raises(HwmlError) as e:
        load_run(run)
    assert_error(e, run)
    code, _, err = cli(capsys, "predict", run, feats, "--out", tmp_path / "p.csv")
    assert_refused(code, err, run)
