"""Enrolment, identification and verification (hwml.speaker.identify, hwml.speaker.verification):
the EER threshold on known scores, calibration at training time, the `enroll` / `identify` /
`verify` CLI contract end to end, its bad inputs and the Python API the app uses. The import
order of the whole package is tests/test_layout.py's."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hwml.data import load_dataset
from hwml.errors import HwmlError
from hwml.speaker.verification import calibrate, eer_threshold, verification_trials

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = [
    "--preset",
    "boss",
    "--max-steps",
    "30",
    "--quiet",
    "--seed",
    "0",
    *[
        f"--set={kv}"
        for kv in (
            "d_model=16",
            "heads=2",
            "ff_dim=32",
            "depth=1",
            "emb_dim=16",
            "batch_size=8",
            "segment_len=64",
            "warmup_steps=2",
            "valid_every=10",
            "valid_fraction=0.4",
        )
    ],
]  # some speakers validate twice


def hwml(*args, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "hwml", *map(str, args)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"hwml {args} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def cli(*args, check=True) -> subprocess.CompletedProcess:
    """`python -m hwml ...` in this process (hwml.cli.main: the same parsing, printing and exit
    codes, without a new interpreter and torch import per call); a few tests run the real one."""
    import contextlib
    import io

    from hwml.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            code = exc.code
    proc = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"hwml {args} exited {code}:\n{proc.stderr[-3000:]}")
    return proc


def assert_user_error(proc, *words) -> None:
    """Exit 2, one line on stderr naming the problem, never a traceback."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("hwml: error:"), proc.stderr
    for word in words:
        assert word in lines[-1], lines[-1]


# -------------------------------------------------------------------------- EER and threshold


def test_eer_and_threshold_on_known_scores():
    same = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0], dtype=torch.bool)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.4, 0.6, 0.5, 0.3, 0.2])
    eer, t = eer_threshold(scores, same)
    # accepting >= 0.55 rejects 1 of 4 same (0.4) and accepts 1 of 4 different (0.6)
    assert eer == pytest.approx(0.25) and t == pytest.approx(0.55)
    eer, t = eer_threshold(torch.tensor([0.9, 0.7, 0.3, -0.1]), torch.tensor([1, 1, 0, 0]).bool())
    assert eer == 0.0 and t == pytest.approx(0.5)  # halfway between the classes
    eer, t = eer_threshold(torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([1, 1, 0, 0]).bool())
    assert eer == pytest.approx(1.0)  # scores upside down
    # ties cannot be split by a threshold: 4 trials all at 0.5 give 50 %, never a cut inside the tie
    eer, t = eer_threshold(torch.full((4,), 0.5), torch.tensor([1, 0, 1, 0]).bool())
    assert eer == pytest.approx(0.5) and abs(t - 0.5) > 1e-7
    with pytest.raises(HwmlError):
        eer_threshold(torch.tensor([0.3, 0.4]), torch.tensor([1, 1]).bool())


def test_trials_all_pairs_or_a_seeded_capped_sample():
    gen = torch.Generator().manual_seed(0)
    emb, labels = torch.randn(60, 8, generator=gen), torch.arange(60) % 6
    scores, same = verification_trials(emb, labels)
    assert len(scores) == 60 * 59 // 2 and int(same.sum()) == 6 * (10 * 9 // 2)
    e = torch.nn.functional.normalize(emb, dim=-1)
    assert scores[0] == pytest.approx(float(e[0] @ e[1]), abs=1e-6)
    few, few_same = verification_trials(emb, labels, max_trials=300, seed=3)
    again, _ = verification_trials(emb, labels, max_trials=300, seed=3)
    assert len(few) == 300 and int(few_same.sum()) == 150 and torch.equal(few, again)
    labels[:5] = -1  # unlabelled rows take no part
    assert len(verification_trials(emb, labels)[0]) == 55 * 54 // 2
    assert calibrate(emb, torch.arange(60)) is None  # nobody twice: no same-speaker trial


class MeanEmbedder(torch.nn.Module):
    """A stand-in speaker model: the embedding is the masked mean of the frames."""

    emb_dim = 40

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def embed(self, x, mask):
        m = mask[..., None].float()
        return (x * m).sum(1) / m.sum(1)


def voices(n_speakers: int, per: int, seed: int = 0):
    from hwml.data.types import UtteranceSet

    gen = torch.Generator().manual_seed(seed)
    profiles = torch.randn(n_speakers, 40, generator=gen)
    feats = [profiles[s] + 2.0 * torch.randn(150, 40, generator=gen) for s in range(n_speakers) for _ in range(per)]
    offsets = torch.arange(len(feats) + 1) * 150
    return UtteranceSet(
        torch.cat(feats),
        offsets,
        [str(i) for i in range(len(feats))],
        torch.arange(n_speakers).repeat_interleave(per),
        [f"s{i}" for i in range(n_speakers)],
    )


def test_calibration_uses_whole_utterances_or_halves_when_too_few_pairs():
    from hwml.speaker.verification import calibrate_threshold

    model = MeanEmbedder()
    many = voices(10, 8)
    found = calibrate_threshold(model, many, torch.arange(len(many)), None, seed=0)
    assert found["method"] == "utterances" and found["n_same"] == 10 * 28 and found["eer"] < 0.05
    once = voices(20, 1, seed=1)  # every speaker validated once: no same pair
    found = calibrate_threshold(model, once, torch.arange(20), None, seed=0)
    assert found["method"] == "halves" and found["n_same"] == 20 and found["n_trials"] == 40 * 39 // 2
    assert 0 < found["threshold"] < 1


# ------------------------------------------------------------------------------ a tiny run


@pytest.fixture(scope="module")
def run(small_corpus, tmp_path_factory):
    """A tiny boss run trained through the CLI on the small built-in corpus."""
    out = tmp_path_factory.mktemp("speaker_id") / "run"
    hwml("train", "speaker", small_corpus / "speaker", "--out", out, *TINY)
    return out


@pytest.fixture(scope="module")
def people(small_corpus, tmp_path_factory):
    """DIR for `enroll`: three speakers, clips as .pt / .npy feature files at any depth (plus a
    transcript that is not a clip); and held-out clips of the same speakers in a query folder."""
    ds = load_dataset(small_corpus / "speaker")
    root = tmp_path_factory.mktemp("people")
    names = ds.train.class_names[:3]
    for y, name in enumerate(names):
        idx = (ds.train.labels == y).nonzero().flatten().tolist()
        folder = root / "DIR" / name
        (folder / "deep").mkdir(parents=True)
        torch.save(ds.train.utterance(idx[0]).clone(), folder / "a.pt")
        np.save(folder / "deep" / "b.npy", ds.train.utterance(idx[1]).numpy())
        (folder / "a.txt").write_text("not a clip")
        test_idx = (ds.test.labels == y).nonzero().flatten().tolist()
        (root / "query" / f"s{y}").mkdir(parents=True)
        torch.save(ds.test.utterance(test_idx[0]).clone(), root / "query" / f"s{y}" / "q.pt")
    return root, names


def test_training_calibrates_the_threshold_into_config(run):
    config = json.loads((run / "config.json").read_text())
    found = config["verification"]
    assert -1 <= found["threshold"] <= 1 and 0 <= found["eer"] <= 1
    assert found["n_same"] > 0 and found["n_trials"] > found["n_same"]
    assert found["method"] == "halves"  # 14 speakers validated twice: too few pairs, halves instead
    resume = json.loads((run / "resume.json").read_text())
    assert resume["best_info"] == {"verification": found}  # kept for --resume


def test_enroll_identify_verify_end_to_end(run, people, tmp_path):
    root, names = people
    out = tmp_path / "speakers.json"
    summary = json.loads(hwml("enroll", run, root / "DIR", "--out", out).stdout.strip().splitlines()[-1])
    assert summary["speakers"] == 3 and summary["clips"] == 6
    data = json.loads(out.read_text())
    assert [s["name"] for s in data["speakers"]] == sorted(names)
    assert all(s["n_clips"] == 2 and len(s["embedding"]) == 16 for s in data["speakers"])

    ids = tmp_path / "ids.csv"
    one = root / "DIR" / names[0] / "a.pt"
    cli("identify", run, out, root / "query", one, "--out", ids)
    rows = list(csv.reader(ids.open()))
    assert rows[0] == ["Id", "Speaker", "Score", "top1", "score1", "top2", "score2", "top3", "score3"]
    assert [r[0] for r in rows[1:]] == ["s0/q.pt", "s1/q.pt", "s2/q.pt", "a.pt"]  # relative / file name
    for r in rows[1:]:
        assert r[1] == r[3] and r[2] == r[4] and set(r[3:9:2]) == set(names)
        assert float(r[4]) >= float(r[6]) >= float(r[8]) and -1 <= float(r[2]) <= 1

    same = cli("verify", run, one, one).stdout.strip().splitlines()
    found = json.loads((run / "config.json").read_text())["verification"]
    assert same[-1] == f"score 1.00 threshold {found['threshold']:.2f}: same speaker"
    result = json.loads(
        cli("verify", run, one, root / "DIR" / names[1] / "deep" / "b.npy", "--json").stdout.strip().splitlines()[-1]
    )
    assert set(result) >= {"score", "threshold", "same", "calibrated"} and result["calibrated"] is True
    assert result["same"] == (result["score"] >= result["threshold"])


def test_verify_without_calibration_says_so(run, people, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(run, old)
    config = json.loads((old / "config.json").read_text())
    del config["verification"]
    (old / "config.json").write_text(json.dumps(config))
    clip = people[0] / "DIR" / people[1][0] / "a.pt"
    proc = cli("verify", old, clip, clip)
    assert "uncalibrated" in proc.stdout and proc.stdout.strip().splitlines()[-1].endswith("same speaker")
    result = json.loads(cli("verify", old, clip, clip, "--json").stdout.strip().splitlines()[-1])
    from hwml.speaker.verification import DEFAULT_THRESHOLD

    assert result["calibrated"] is False and result["threshold"] == DEFAULT_THRESHOLD


def test_bad_inputs_exit_2_and_write_nothing(run, people, tmp_path):
    root, names = people
    out = tmp_path / "speakers.json"
    assert_user_error(hwml("enroll", run, tmp_path / "nope", "--out", out, check=False), "nope")
    empty = tmp_path / "DIR"
    shutil.copytree(root / "DIR", empty)
    (empty / "nobody" / "sub").mkdir(parents=True)
    (empty / "nobody" / "sub" / "notes.txt").write_text("no clips here")
    assert_user_error(cli("enroll", run, empty, "--out", out, check=False), "nobody")
    shutil.rmtree(empty / "nobody")
    (empty / names[0] / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    assert_user_error(cli("enroll", run, empty, "--out", out, check=False), "broken.wav")
    assert_user_error(cli("enroll", tmp_path / "norun", root / "DIR", "--out", out, check=False), "norun")
    assert not out.exists()

    good = tmp_path / "good.json"
    cli("enroll", run, root / "DIR", "--out", good)
    stale = json.loads(good.read_text())
    stale["speakers"][0]["model_id"] = "0123456789abcdef"
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    ids = tmp_path / "ids.csv"
    assert_user_error(
        cli("identify", run, tmp_path / "stale.json", root / "query", "--out", ids, check=False), "another model"
    )
    (tmp_path / "junk.json").write_text("{not json")
    assert_user_error(
        cli("identify", run, tmp_path / "junk.json", root / "query", "--out", ids, check=False), "junk.json"
    )
    assert_user_error(cli("identify", run, good, tmp_path / "missing.pt", "--out", ids, check=False), "missing.pt")
    (tmp_path / "emptyq").mkdir()
    assert_user_error(cli("identify", run, good, tmp_path / "emptyq", "--out", ids, check=False), "emptyq")
    assert_user_error(
        cli("identify", run, good, empty / names[0] / "broken.wav", "--out", ids, check=False), "broken.wav"
    )
    assert not ids.exists()
    assert_user_error(
        cli("verify", run, root / "DIR" / names[0] / "a.pt", tmp_path / "gone.wav", check=False), "gone.wav"
    )


# --------------------------------------------------------------------------- the Python API


def test_api_for_the_app(run, people):
    from hwml.speaker.identify import enroll_many, identify, open_model, verify
    from hwml.speaker.voice_map import embedding_map

    root, names = people
    model = open_model(run)
    assert open_model(run) is model  # loaded and hashed once
    clips = {n: [root / "DIR" / n / "a.pt", root / "DIR" / n / "deep" / "b.npy"] for n in names}
    enrolled = enroll_many(model, clips)
    assert [e.name for e in enrolled] == names and all(e.n_clips == 2 for e in enrolled)
    first = clips[names[0]][0]
    ranked = identify(run, enrolled, first)
    assert len(ranked) == 3 and ranked[0][1] >= ranked[1][1] >= ranked[2][1]
    wave = (16000, (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32))
    result = verify(model, wave, wave)  # a microphone recording, twice
    assert result["same"] and result["score"] == pytest.approx(1.0, abs=1e-5)
    picture = embedding_map(model, enrolled, {"query": first})
    kinds = [p["kind"] for p in picture["points"]]
    n_known = len(json.loads((run / "config.json").read_text())["class_names"])
    assert kinds == ["known"] * n_known + ["enrolled"] * 3 + ["clip"]
    assert picture["known_from"] == "amsoftmax class weights" and 0 < sum(picture["explained"]) <= 1 + 1e-6
    assert embedding_map(model, enrolled, {"query": first}) == picture  # deterministic
    with pytest.raises(HwmlError):
        enroll_many(model, {"a": clips[names[0]], " a ": clips[names[1]]})


# ------------------------------------------------------------------------------ benchmark


def test_open_set_benchmark_quick(small_corpus):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_speaker_open_set.py"),
            "--quick",
            "--data",
            str(small_corpus / "speaker"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    methods = {line["method"]: line for line in lines if "method" in line}
    assert set(methods) == {"model", "baseline", "baseline_standardised"}
    for m in methods.values():
        assert 0 <= m["top1"] <= m["top5"] <= 1 and 0 <= m["eer"] <= 1 and m["n_same"] > 0
    assert methods["model"]["calibrated"] is True
    compare = lines[-1]
    assert compare["compare"] == "model_vs_baseline" and compare["top1_model"] == methods["model"]["top1"]
