"""The CLI contract of SPEC.md, end to end through real subprocesses on the small built-in corpus."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwml.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]


def hwml(*args, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "hwml", *map(str, args)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"hwml {args} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def assert_user_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2, one line on stderr naming the problem, never a traceback."""
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr
    assert lines and lines[-1].startswith("hwml: error:"), proc.stderr
    for word in words:
        assert word in lines[-1], lines[-1]


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.mark.parametrize("verb", ["demo-data", "import", "train", "evaluate", "predict"])
def test_every_verb_has_help(verb):
    assert "usage:" in hwml(verb, "--help").stdout


def test_missing_data_folder_is_a_one_line_error(tmp_path):
    assert_user_error(hwml("train", "phoneme", tmp_path / "nope", "--out", tmp_path / "run", check=False), "nope")


def test_bad_set_override_is_a_one_line_error(small_corpus, tmp_path):
    proc = hwml("train", "phoneme", small_corpus / "libriphone", "--out", tmp_path / "run", "--set", "lr", check=False)
    assert_user_error(proc, "key=value")


def test_wrong_task_for_the_data_is_refused(small_corpus, tmp_path):
    proc = hwml("train", "speaker", small_corpus / "libriphone", "--out", tmp_path / "run", check=False)
    assert_user_error(proc)


def test_evaluate_on_a_folder_that_is_not_a_run(small_corpus, tmp_path):
    assert_user_error(hwml("evaluate", tmp_path, small_corpus / "libriphone", check=False), "run")


@pytest.fixture(scope="module")
def phoneme_run(small_corpus, tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "phoneme-run"
    hwml(
        "train",
        "phoneme",
        small_corpus / "libriphone",
        "--out",
        run,
        "--preset",
        "medium",
        "--max-steps",
        "40",
        "--set",
        "valid_every=20",
        "--quiet",
    )
    return run


def test_train_writes_the_run_folder_of_the_contract(phoneme_run):
    for name in ("config.json", "model.safetensors", "metrics.jsonl"):
        assert (phoneme_run / name).is_file(), name
    config = json.loads((phoneme_run / "config.json").read_text())
    assert config["task"] == "phoneme" and config["preset"] == "medium"
    events = [json.loads(line) for line in (phoneme_run / "metrics.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "end" and max(e.get("step", 0) for e in events) == 40
    assert any(e["event"] == "valid" for e in events)


def test_evaluate_json_prints_one_json_line_last(phoneme_run, small_corpus):
    proc = hwml("evaluate", phoneme_run, small_corpus / "libriphone", "--json")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    data = load_dataset(small_corpus / "libriphone")
    assert result["n"] == len(data.train) + len(data.test)  # all labelled frames in DATA
    assert 1 / 39 < result["accuracy"] <= 1 and set(result["per_class"]) <= set(data.train.class_names)
    assert (phoneme_run / "confusion.csv").is_file() and (phoneme_run / "confusion.png").stat().st_size > 1000


def test_evaluate_plain_text_lists_accuracy_and_worst_confusions(phoneme_run, small_corpus):
    proc = hwml("evaluate", phoneme_run, small_corpus / "libriphone", "--split", "test")
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("accuracy ") and "(test)" in lines[0]
    assert any(" -> " in line and "% of " in line for line in lines[1:])
    assert lines[-1].startswith("confusion matrix: ")


def test_predict_course_test_split_writes_the_submission(phoneme_run, small_corpus, tmp_path):
    out = tmp_path / "preds.csv"
    hwml("predict", phoneme_run, small_corpus / "libriphone", "--out", out)
    rows = read_csv(out)
    test = load_dataset(small_corpus / "libriphone").test
    assert rows[0] == ["Id", "Class"] and len(rows) - 1 == len(test)
    assert [int(r[0]) for r in rows[1:]] == list(range(len(test)))


def test_predict_on_a_refused_pickle_never_runs_it(phoneme_run, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    payload = (f"cos\nsystem\n(S'touch {marker}'\ntR.").encode()  # protocol-0 pickle calling os.system
    evil.write_bytes(payload)
    assert_user_error(hwml("predict", phoneme_run, evil, "--out", tmp_path / "p.csv", check=False), "evil.pt")
    assert not marker.exists() and not (tmp_path / "p.csv").exists()


def test_speaker_train_evaluate_predict(small_corpus, tmp_path):
    run = tmp_path / "speaker-run"
    data = small_corpus / "speaker"
    hwml(
        "train",
        "speaker",
        data,
        "--out",
        run,
        "--preset",
        "simple",
        "--max-steps",
        "20",
        "--set",
        "valid_every=10",
        "--quiet",
    )
    result = json.loads(hwml("evaluate", run, data, "--split", "test", "--json").stdout.strip().splitlines()[-1])
    dataset = load_dataset(data)
    assert result["n"] == len(dataset.test) and 0 <= result["accuracy"] <= 1
    out = tmp_path / "preds.csv"
    hwml("predict", run, data, "--out", out)
    rows = read_csv(out)
    assert rows[0] == ["Id", "Category"]
    assert [r[0] for r in rows[1:]] == dataset.test.utt_ids  # testdata.json order
    assert {r[1] for r in rows[1:]} <= set(dataset.train.class_names)  # names, not integer ids
