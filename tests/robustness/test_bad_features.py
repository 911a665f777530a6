"""Feature files and label files that do not fit: refused through the CLI (exit 2, one line
naming the file and the problem) and through the Python API, and the process keeps working."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from robust_helpers import assert_error, assert_refused, cli

from hwml.api import predict_run
from hwml.data import load_dataset
from hwml.errors import HwmlError

RNG = np.random.default_rng(0)
NAN = RNG.standard_normal((10, 39)).astype(np.float32)
NAN[3, 7] = np.nan
INF = RNG.standard_normal((10, 40)).astype(np.float32)
INF[9, 0] = -np.inf

# file name -> (content, words); ".npy" saved with numpy, ".pt" with torch.save
BAD_FEATURES = {
    "wide41.npy": (np.zeros((10, 41), np.float32), "41 columns"),
    "wide41.pt": (torch.zeros(10, 41), "41 columns"),
    "one_d.npy": (np.zeros(39, np.float32), "2-D"),
    "three_d.pt": (torch.zeros(2, 10, 39), "2-D"),
    "nan.npy": (NAN, "NaN"),
    "inf.pt": (torch.from_numpy(INF), "infinite"),
    "empty.npy": (np.zeros((0, 39), np.float32), "empty"),
    "empty.pt": (torch.zeros(0, 40), "empty"),
    "ints.npy": (np.zeros((10, 39), np.int64), "int64"),
    "int16.pt": (torch.zeros(10, 40, dtype=torch.int16), "int16"),
    "bools.npy": (np.zeros((10, 39), bool), "bool"),
    "strings.npy": (np.full((10, 39), "1.0"), "<U3"),
    "complex.pt": (torch.zeros(10, 39, dtype=torch.complex64), "complex"),
    "objects.npy": (np.array([[1.0] * 39] * 10, dtype=object), "object"),
    "scalar.pt": (torch.tensor(1.0), "2-D"),
}


@pytest.fixture(scope="module")
def bad_features(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-feats")
    out = {}
    for name, (x, words) in BAD_FEATURES.items():
        path = root / name
        if name.endswith(".npy"):
            np.save(path, x, allow_pickle=x.dtype == object)
        else:
            torch.save(x, path)
        out[name] = (path, words)
    return out


def test_bad_feature_files_are_refused_by_cli_and_api(tmp_path, capsys, bad_features, phoneme_run, speaker_run):
    good = {phoneme_run: tmp_path / "good39.npy", speaker_run: tmp_path / "good40.pt"}
    np.save(good[phoneme_run], RNG.standard_normal((12, 39)).astype(np.float32))
    torch.save(torch.randn(50, 40), good[speaker_run])
    for _name, (path, words) in bad_features.items():
        for run in (phoneme_run, speaker_run):
            wrong_width = "41 columns" in words
            expect = ("41",) if wrong_width else (words,)
            code, _, err = cli(capsys, "predict", run, good[run], path, "--out", tmp_path / "p.csv")
            assert_refused(code, err, path, *expect)
            with pytest.raises(HwmlError) as e:
                predict_run(run, [path], tmp_path / "p.csv")
            assert_error(e, path, *expect)
            assert not (tmp_path / "p.csv").exists()
    for run, path in good.items():  # and the same process still predicts
        code, _, err = cli(capsys, "predict", run, path, "--out", tmp_path / "ok.csv")
        assert code == 0, err


def test_a_course_folder_in_the_wrong_layout_names_the_folder(tmp_path, capsys, phoneme_run):
    """A run trained on 3-frame libriphone contexts, asked for a timit_11 test split (11-frame rows)."""
    root = tmp_path / "timit_11"
    root.mkdir()
    np.save(root / "train_11.npy", RNG.standard_normal((6, 429)).astype(np.float32))
    np.save(root / "train_label_11.npy", np.array(list("012345"), dtype="<U2"))
    np.save(root / "test_11.npy", RNG.standard_normal((4, 429)).astype(np.float32))
    for argv in (("predict", phoneme_run, root, "--out", tmp_path / "p.csv"), ("evaluate", phoneme_run, root)):
        code, _, err = cli(capsys, *argv)
        assert_refused(code, err, root, "frame")


def test_a_run_refuses_the_other_tasks_width(tmp_path, capsys, phoneme_run, speaker_run):
    x40, x39 = tmp_path / "logmel.npy", tmp_path / "mfcc.npy"
    np.save(x40, np.zeros((20, 40), np.float32))
    np.save(x39, np.zeros((20, 39), np.float32))
    code, _, err = cli(capsys, "predict", phoneme_run, x40, "--out", tmp_path / "p.csv")
    assert_refused(code, err, x40, "40 columns")
    code, _, err = cli(capsys, "predict", speaker_run, x39, "--out", tmp_path / "p.csv")
    assert_refused(code, err, x39, "39")


# ------------------------------------------------------------------------------------- label files


def _edit_lines(path, fn):
    lines = path.read_text().splitlines()
    path.write_text("\n".join(fn(lines)) + "\n")


def _json(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _also_in_test(d):
    utt = (d / "train_split.txt").read_text().split()[0]
    shutil.copy(d / "feat" / "train" / f"{utt}.pt", d / "feat" / "test" / f"{utt}.pt")
    _edit_lines(d / "test_split.txt", lambda ls: [*ls, utt])
    labels = next(ln for ln in (d / "train_labels.txt").read_text().splitlines() if ln.startswith(utt + " "))
    _edit_lines(d / "test_labels.txt", lambda ls: [*ls, labels])


def _first_utt(doc):
    return doc["speakers"]["spkA"][0]


PHONEME_BREAKERS = {
    "label_out_of_range": (
        "train_labels.txt",
        lambda d: _edit_lines(d / "train_labels.txt", lambda ls: [ls[0] + " 41", *ls[1:]]),
        "out of range",
    ),
    "negative_label": (
        "train_labels.txt",
        lambda d: _edit_lines(d / "train_labels.txt", lambda ls: [ls[0].rsplit(" ", 1)[0] + " -1", *ls[1:]]),
        "out of range",
    ),
    "fewer_labels_than_frames": (
        "train_labels.txt",
        lambda d: _edit_lines(d / "train_labels.txt", lambda ls: [ls[0].rsplit(" ", 1)[0], *ls[1:]]),
        "frames",
    ),
    "duplicate_utterance_in_split": (
        "train_split.txt",
        lambda d: _edit_lines(d / "train_split.txt", lambda ls: [*ls, ls[0]]),
        "twice",
    ),
    "duplicate_utterance_in_labels": (
        "train_labels.txt",
        lambda d: _edit_lines(d / "train_labels.txt", lambda ls: [*ls, ls[0]]),
        "twice",
    ),
    "label_not_a_number": (
        "train_labels.txt",
        lambda d: _edit_lines(d / "train_labels.txt", lambda ls: [ls[0] + " x", *ls[1:]]),
        "integers",
    ),
    "test_in_train_too": ("test_split.txt", lambda d: _also_in_test(d), "also in"),
    "held_out_label_out_of_range": (
        "test_labels.txt",
        lambda d: _edit_lines(d / "test_labels.txt", lambda ls: [ls[0] + " 99", *ls[1:]]),
        "out of range",
    ),
}

SPEAKER_BREAKERS = {
    "duplicate_feature_path": (
        "metadata.json",
        lambda d: _json(d / "metadata.json", lambda doc: doc["speakers"]["spkB"].append(dict(_first_utt(doc)))),
        "listed twice",
    ),
    "unknown_speaker_in_metadata": (
        "metadata.json",
        lambda d: _json(d / "metadata.json", lambda doc: doc["speakers"].update(spkZ=doc["speakers"].pop("spkC"))),
        "spkZ",
    ),
    "mel_len_mismatch": (
        "mel_len",
        lambda d: _json(
            d / "metadata.json", lambda doc: _first_utt(doc).update(mel_len=_first_utt(doc)["mel_len"] - 1)
        ),
        "frames",
    ),
    "unknown_speaker_in_test_labels": (
        "test_labels.csv",
        lambda d: _edit_lines(d / "test_labels.csv", lambda ls: [ls[0], ls[1].split(",")[0] + ",spkNobody", *ls[2:]]),
        "unknown speaker",
    ),
    "test_label_twice": (
        "test_labels.csv",
        lambda d: _edit_lines(d / "test_labels.csv", lambda ls: [*ls, ls[1]]),
        "twice",
    ),
    "mapping_disagrees": (
        "mapping.json",
        lambda d: _json(d / "mapping.json", lambda doc: doc["speaker2id"].update(spkA=2)),
        "disagree",
    ),
    "n_mels_39": (
        "uttr-",
        lambda d: [_json(d / f, lambda doc: doc.update(n_mels=39)) for f in ("metadata.json", "testdata.json")],
        "expected 39",
    ),
}


BREAKERS = {"phoneme": ("lp", PHONEME_BREAKERS), "speaker": ("hw4", SPEAKER_BREAKERS)}


@pytest.mark.parametrize("kind,case", [(kind, case) for kind, (_, cases) in BREAKERS.items() for case in cases])
def test_bad_labels(tmp_path, capsys, request, kind, case):
    folder, cases = BREAKERS[kind]
    name, breaker, words = cases[case]
    data = shutil.copytree(request.getfixturevalue(f"{kind}_data"), tmp_path / folder)
    breaker(data)
    with pytest.raises(HwmlError) as e:
        load_dataset(data)
    assert_error(e, name, words)
    argv = (
        ("evaluate", request.getfixturevalue(f"{kind}_run"), data)
        if name.startswith("test")
        else ("train", kind, data, "--out", tmp_path / "run", "--max-steps", 1)
    )
    code, _, err = cli(capsys, *argv)
    assert_refused(code, err, name, words)


def test_timit11_label_problems(tmp_path, capsys):
    root = tmp_path / "timit_11"
    root.mkdir()
    np.save(root / "train_11.npy", RNG.standard_normal((6, 429)).astype(np.float32))
    for labels, words in (
        (["0", "1", "2", "3", "4", "39"], "out of range"),
        (["0", "1", "2"], "has 3 labels"),
        (["0", "1", "2", "3", "4", "ab"], "not a class number"),
    ):
        np.save(root / "train_label_11.npy", np.array(labels, dtype="<U2"))
        code, _, err = cli(capsys, "train", "phoneme", root, "--out", tmp_path / "run", "--max-steps", 1)
        assert_refused(code, err, "train_label_11.npy", words)


@pytest.mark.parametrize(
    "setting, words",
    [
        ("lr=abc", "expected a number"),
        ("lr=-1", "positive"),
        ("hidden=3", "list of numbers"),
        ("batch_size=0", "positive"),
        ("batch_size=2.5", "whole number"),
        ("dropout=1.5", "between 0 and 1"),
        ("betas=[0.9]", "two numbers"),
        ("lr=NaN", "finite"),
    ],
)
def test_bad_settings_are_refused_before_training(tmp_path, capsys, phoneme_data, setting, words):
    code, _, err = cli(capsys, "train", "phoneme", phoneme_data, "--out", tmp_path / "run", "--set", setting)
    assert_refused(code, err, f"setting {setting.split('=')[0]}=", words)
    assert not (tmp_path / "run").exists()
