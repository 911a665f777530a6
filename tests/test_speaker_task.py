"""HW4 task: split, crops with masks, whole-utterance inference, training through the engine,
predict CSVs, embeddings and enrolment."""

import csv
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from hwml.data import load_dataset, write_hw4
from hwml.data.types import UtteranceSet
from hwml.errors import HwmlError
from hwml.runs.checkpoint import load_run
from hwml.speaker.augment import spec_augment
from hwml.speaker.batches import as_utterances, random_crops, window_batches
from hwml.speaker.identify import enroll, identify, load_enrollments, save_enrollments
from hwml.speaker.inference import cosine_similarity, embed
from hwml.speaker.predict import predict_files, predict_logits
from hwml.speaker.presets import PRESETS
from hwml.speaker.split import split_by_utterance
from hwml.speaker.task import VALID_FRAME_COST, make_task, resolve_settings, validation_spacing
from hwml.train.engine import train

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "d_model": 16,
    "heads": 2,
    "ff_dim": 32,
    "depth": 1,
    "batch_size": 8,
    "segment_len": 32,
    "warmup_steps": 2,
    "valid_every": 5,
    "emb_dim": 0,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic(n_speakers=4, per=10, seed=0, lo=12, hi=90, offset=0):
    """Speakers = spectral profiles + noise; lengths vary so crops and padding both happen."""
    profiles = torch.randn(16, 40, generator=torch.Generator().manual_seed(1234))[offset:] * 2.0
    gen = torch.Generator().manual_seed(seed)
    feats, lengths, labels = [], [], []
    for s in range(n_speakers):
        for _ in range(per):
            n = int(torch.randint(lo, hi, (1,), generator=gen))
            feats.append(profiles[s] + torch.randn(n, 40, generator=gen) * 1.5 - 8.0)
            lengths.append(n)
            labels.append(s)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(torch.tensor(lengths), 0)])
    ids = [f"utt-{seed}-{i}" for i in range(len(lengths))]
    return UtteranceSet(
        torch.cat(feats), offsets, ids, torch.tensor(labels), [f"spk{offset + i:02d}" for i in range(n_speakers)]
    )


@pytest.fixture(scope="module")
def hw4(tmp_path_factory):
    root = tmp_path_factory.mktemp("hw4") / "Dataset"
    write_hw4(root, synthetic(seed=0), synthetic(per=3, seed=1))
    return root


@pytest.fixture(scope="module")
def trained(hw4, tmp_path_factory):
    """A tiny boss run (conformer + SAP + AM-softmax) that learnt the synthetic speakers."""
    from hwml.machine import single_thread

    run = tmp_path_factory.mktemp("runs") / "boss"
    task = make_task(load_dataset(hw4), "boss", {**TINY, "lr": 3e-3, "valid_every": 20}, seed=0)
    with single_thread():  # module-scoped: set up before the per-test one_torch_thread fixture
        end = train(task, {"max_steps": 60}, run)
    return run, end


# --------------------------------------------------------------------------- split and batches


def test_split_is_per_speaker_seeded_and_disjoint():
    labels = torch.tensor([0] * 10 + [1] * 3 + [2] * 1 + [3] * 2 + [-1] * 2)
    train_idx, valid_idx = split_by_utterance(labels, 0.3, seed=5)
    again = split_by_utterance(labels, 0.3, seed=5)
    assert torch.equal(train_idx, again[0]) and torch.equal(valid_idx, again[1])
    assert not set(train_idx.tolist()) & set(valid_idx.tolist())
    assert set(train_idx.tolist()) | set(valid_idx.tolist()) == set(range(16))  # unlabelled: neither
    assert len(valid_idx) == round(0.3 * 16)
    per_speaker = torch.bincount(labels[valid_idx], minlength=4).tolist()
    assert per_speaker[2] == 0 and per_speaker[3] == 1 and sorted(per_speaker[:2]) == [2, 2]  # round-robin
    assert set(labels[train_idx].tolist()) == {0, 1, 2, 3}  # every speaker keeps training data
    small = torch.arange(24).repeat_interleave(4)  # 24 speakers x 4: 10 % still validates
    assert len(split_by_utterance(small, 0.1, 0)[1]) == 10
    other = split_by_utterance(labels, 0.3, seed=6)[1]
    assert not torch.equal(other, valid_idx)


def test_crops_are_one_gather_with_a_length_mask():
    utts = synthetic(per=5, lo=5, hi=60)
    idx = torch.arange(len(utts))
    x, mask = random_crops(utts, idx, 32, torch.Generator().manual_seed(0))
    lengths = utts.lengths
    assert x.shape == (len(utts), min(32, int(lengths.max())), 40)
    assert torch.equal(mask.sum(1), lengths.clamp(max=32))
    assert torch.all(x[~mask] == 0), "padding is zeros and masked, never -20 treated as speech"
    for i in range(len(utts)):  # each crop is a contiguous piece of its own utterance
        u, n = utts.utterance(i), int(mask[i].sum())
        starts = [s for s in range(len(u) - n + 1) if torch.equal(u[s : s + n], x[i, :n])]
        assert starts, i
    x2, _ = random_crops(utts, idx, 32, torch.Generator().manual_seed(0))
    x3, _ = random_crops(utts, idx, 32, torch.Generator().manual_seed(1))
    assert torch.equal(x, x2) and not torch.equal(x, x3)


def test_spec_augment_masks_real_frames_with_the_crop_mean():
    utts = synthetic(per=3, lo=20, hi=60)
    x, mask = random_crops(utts, torch.arange(len(utts)), 48, torch.Generator().manual_seed(0))
    y = spec_augment(x, mask, 6, 8, torch.Generator().manual_seed(1))
    again = spec_augment(x, mask, 6, 8, torch.Generator().manual_seed(1))
    assert torch.equal(y, again) and not torch.equal(y, x)
    assert torch.all(y[~mask] == 0), "padding stays padding"
    keep = mask[..., None].float()
    mean = (x * keep).sum(1, keepdim=True) / keep.sum(1, keepdim=True)
    changed = y != x
    assert torch.allclose(y[changed], mean.expand_as(x)[changed])
    assert changed.any(2).sum(1).le(mask.sum(1)).all()


def test_window_batches_cover_every_utterance_with_its_windows():
    utts = synthetic(n_speakers=2, per=12, lo=5, hi=300)
    seen = {}
    for b in window_batches(utts, None, window=64, max_frames=400):
        assert b.x.shape[0] * b.x.shape[1] <= max(400, b.x.shape[1] * ((300 - 64) // 32 + 2))
        for row, owner in enumerate(b.owner.tolist()):
            i = int(b.utts[owner])
            n = int(b.mask[row].sum())
            assert n == min(64, int(utts.lengths[i]))
            seen.setdefault(i, []).append(b.x[row, :n])
    assert sorted(seen) == list(range(len(utts)))
    for i, windows in seen.items():  # windows tile the whole utterance, ends included
        u = utts.utterance(i)
        assert torch.equal(windows[0], u[: len(windows[0])]) and torch.equal(windows[-1], u[-len(windows[-1]) :])
        expect = 1 if len(u) <= 64 else (len(u) - 64 + 31) // 32 + 1
        assert len(windows) == expect


def test_predict_logits_uses_whole_utterances_in_order(trained):
    model, config = load_run(trained[0])
    utts = synthetic(per=4, seed=3, lo=10, hi=400)
    logits = predict_logits(model, config, utts)
    assert logits.shape == (len(utts), 4)
    with torch.no_grad():
        for i in (0, 5, 9):  # short ones: exactly the model on the unpadded utterance
            if utts.lengths[i] <= 512:
                torch.testing.assert_close(logits[i], model(utts.utterance(i)[None])[0], atol=1e-4, rtol=1e-4)
    as_list = predict_logits(model, config, [utts.utterance(i) for i in range(len(utts))])
    torch.testing.assert_close(as_list, logits)


def test_validation_scores_each_valid_utterance_whole_against_its_own_label(trained, hw4):
    model, _ = load_run(trained[0])
    task = make_task(load_dataset(hw4), "boss", {**TINY, "lr": 3e-3, "valid_every": 20}, seed=0)
    loss, acc, n = task.validate(model, torch.device("cpu"), stop=lambda: False)
    with torch.no_grad():  # one utterance at a time, no padding, no threads
        logits = torch.cat([model(task.utts.utterance(i)[None]) for i in task.valid_idx.tolist()])
    targets = task.utts.labels[task.valid_idx]
    assert n == len(task.valid_idx) > 0
    assert acc == pytest.approx(float((logits.argmax(-1) == targets).float().mean()))
    assert loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, targets)), abs=1e-4)
    assert task.validate(model, torch.device("cpu"), stop=lambda: True) is None  # cancelled: no result


# -------------------------------------------------------------------------------- settings


def test_settings_checked_and_coerced():
    s = resolve_settings("boss", {"d_model": 64.0, "m": 0, "norm_first": "true", "max_seconds": 5})
    assert s["d_model"] == 64 and isinstance(s["m"], float) and s["norm_first"] is True
    for bad in ({"pooling": "max"}, {"nope": 1}, {"d_model": "wide"}, {"d_model": 30, "heads": 4}, {"segment_len": 0}):
        with pytest.raises(HwmlError):
            resolve_settings("simple", bad)
    with pytest.raises(HwmlError):
        resolve_settings("giant", {})


def test_validation_is_spaced_out_where_it_would_dominate_the_run(hw4):
    s = resolve_settings("boss", {})
    assert validation_spacing(s, 30_000) == s["valid_every"] == 100  # the built-in corpus's size
    course = 2_560_000  # frames of the course's 5,666 validation utterances (mean 451)
    every = validation_spacing(s, course)
    valid_cost, train_cost = VALID_FRAME_COST * course, every * s["batch_size"] * s["segment_len"]
    assert every > 1000 and valid_cost / (valid_cost + train_cost) <= s["valid_share"]
    assert validation_spacing(resolve_settings("simple", {}), course) == 2000  # the course's spacing
    assert validation_spacing(resolve_settings("boss", {"valid_share": 0}), course) == 100
    # make_task applies it: tiny crops and batches make this small validation set "big"
    task = make_task(load_dataset(hw4), "boss", {**TINY, "segment_len": 1, "batch_size": 1, "valid_share": 0.5}, seed=0)
    frames = int(task.utts.lengths[task.valid_idx].sum())
    assert task.settings["valid_every"] == validation_spacing({**task.settings, "valid_every": 5}, frames) > 5


def test_simple_preset_is_the_course_recipe():
    s = resolve_settings("simple", {})
    assert (s["encoder"], s["d_model"], s["depth"], s["heads"], s["ff_dim"], s["pooling"]) == (
        "transformer",
        80,
        1,
        2,
        256,
        "mean",
    )
    assert (s["head"], s["head_hidden"], s["optimizer"], s["lr"], s["warmup_steps"], s["schedule"]) == (
        "softmax",
        80,
        "adamw",
        1e-3,
        1000,
        "cosine",
    )
    assert (s["segment_len"], s["batch_size"], s["input_norm"]) == (128, 16, "none")
    boss = resolve_settings("boss", {})
    assert (boss["encoder"], boss["head"]) == ("conformer", "amsoftmax") and boss["pooling"] in ("sap", "asp")
    assert resolve_settings("strong", {})["encoder"] == "conformer"


# ------------------------------------------------------------------------- training (engine)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_trains_a_few_steps(hw4, tmp_path, preset):
    task = make_task(load_dataset(hw4), preset, {"valid_every": 2, "warmup_steps": 1}, seed=0)
    end = train(task, {"max_steps": 3}, tmp_path / preset)
    assert end["reason"] == "max_steps" and end["step"] == 3 and end["best_valid_acc"] is not None
    config = json.loads((tmp_path / preset / "config.json").read_text())
    assert config["task"] == "speaker" and config["preset"] == preset
    assert config["class_names"] == [f"spk{i:02d}" for i in range(4)]
    assert config["split"]["n_valid"] == 4 and len(config["split"]["valid_ids"]) == 4
    events = [json.loads(line) for line in (tmp_path / preset / "metrics.jsonl").read_text().splitlines()]
    assert {e["event"] for e in events} >= {"start", "valid", "end"}
    model, _ = load_run(tmp_path / preset)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_best_weights_are_a_copy(trained, hw4):
    """The saved weights reproduce the best validation accuracy, not the last step's."""
    run, end = trained
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    valids = [e for e in events if e["event"] == "valid"]
    assert len(valids) >= 3 and end["best_valid_acc"] == max(e["valid_acc"] for e in valids)
    model, config = load_run(run)
    utts = load_dataset(hw4).train
    valid = [utts.utt_ids.index(u) for u in config["split"]["valid_ids"]]
    sub = as_utterances([utts.utterance(i) for i in valid])
    acc = (predict_logits(model, config, sub).argmax(-1) == utts.labels[valid]).float().mean().item()
    assert acc == pytest.approx(end["best_valid_acc"])
    assert end["best_valid_acc"] >= 0.75
    resume = load_file(str(run / "resume.safetensors"))
    saved = load_file(str(run / "model.safetensors"))
    if end["best_step"] != end["step"]:
        assert any(not torch.equal(saved[k], resume[f"model.{k}"]) for k in saved)


def test_evaluate_valid_rebuilds_the_runs_validation_split(trained, hw4, tmp_path):
    """`evaluate --split valid` scores exactly the run's validation utterances (recomputed from
    seed and valid_fraction), at the best validation accuracy; other data is refused."""
    from hwml.api import evaluate_run
    from hwml.speaker.split import valid_split

    run, end = trained
    config = json.loads((run / "config.json").read_text())
    utts = load_dataset(hw4).train
    valid = valid_split(config, utts)
    assert valid.utt_ids == config["split"]["valid_ids"] and len(valid) == config["split"]["n_valid"]
    assert torch.equal(valid.utterance(0), utts.utterance(utts.utt_ids.index(valid.utt_ids[0])))
    result = evaluate_run(run, hw4, split="valid")
    assert result["accuracy"] == pytest.approx(end["best_valid_acc"])
    cli = subprocess.run(
        [sys.executable, "-m", "hwml", "evaluate", str(run), str(hw4), "--split", "valid", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["accuracy"] == pytest.approx(end["best_valid_acc"])
    other = tmp_path / "other"
    write_hw4(other, synthetic(seed=7), None)
    with pytest.raises(HwmlError, match="validation utterances differ"):
        evaluate_run(run, other, split="valid")
    with pytest.raises(HwmlError, match="without a validation split"):
        valid_split({**config, "split": {**config["split"], "valid_fraction": 0.0, "n_valid": 0}}, utts)


def test_same_seed_same_run(hw4, tmp_path):
    weights = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        task = make_task(load_dataset(hw4), "strong", {**TINY, "dropout": 0.1}, seed=seed)
        train(task, {"max_steps": 6, "seed": seed}, tmp_path / name)
        weights.append(load_file(str(tmp_path / name / "model.safetensors")))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert any(not torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_resume_continues_exactly(hw4, tmp_path):
    """All randomness (crops, SpecAugment, dropout) comes from the engine's saved generators:
    a run stopped after 3 of 6 steps and resumed ends where an uninterrupted run ends."""
    settings = {**TINY, "freq_mask": 4, "time_mask": 4}
    engine = {"max_steps": 6, "log_every": 1}

    def task():
        return make_task(load_dataset(hw4), "boss", settings, seed=0)

    train(task(), engine, tmp_path / "straight")
    stop = threading.Event()
    train(
        task(),
        engine,
        tmp_path / "resumed",
        stop_event=stop,
        callbacks=[lambda e: e.get("step", 0) >= 3 and stop.set()],
    )
    assert json.loads((tmp_path / "resumed" / "resume.json").read_text())["step"] == 3
    train(task(), engine, tmp_path / "resumed", resume=True)
    a, b = (load_file(str(tmp_path / n / "resume.safetensors")) for n in ("straight", "resumed"))
    for k in (k for k in a if k.startswith("model.")):
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


# -------------------------------------------------------------------------------- predict


def test_predict_course_test_split(trained, hw4, tmp_path):
    out = tmp_path / "preds.csv"
    summary = predict_files(trained[0], [hw4], out)
    rows = list(csv.reader(out.read_text().splitlines()))
    order = [u["feature_path"] for u in json.loads((hw4 / "testdata.json").read_text())["utterances"]]
    assert rows[0] == ["Id", "Category"] and [r[0] for r in rows[1:]] == order
    assert summary["rows"] == len(order) == 12
    assert {r[1] for r in rows[1:]} <= {f"spk{i:02d}" for i in range(4)}
    truth = dict(csv.reader((hw4 / "test_labels.csv").read_text().splitlines()))
    assert sum(truth[r[0]] == r[1] for r in rows[1:]) >= 9  # speaker names, mostly right


def test_predict_feature_and_audio_files(trained, tmp_path):
    utts = synthetic(per=1, seed=4)
    pt, npy = tmp_path / "a.pt", tmp_path / "b.npy"
    torch.save(utts.utterance(0).clone(), pt)
    np.save(npy, utts.utterance(1).numpy())
    wav = tmp_path / "c.wav"
    t = np.arange(16000) / 16000
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    out = tmp_path / "top5.csv"
    summary = predict_files(trained[0], [pt, npy, wav], out)
    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows[0] == ["Id", "Category", "top1", "p1", "top2", "p2", "top3", "p3", "top4", "p4"]
    assert [r[0] for r in rows[1:]] == [str(pt), str(npy), str(wav)] and summary["rows"] == 3
    for r in rows[1:]:
        probs = [float(p) for p in r[3::2]]
        assert r[1] == r[2] and probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-4)
    assert rows[1][1] == "spk00" and rows[2][1] == "spk01"
    bad = tmp_path / "x.txt"
    bad.write_text("hi")
    with pytest.raises(HwmlError):
        predict_files(trained[0], [bad], out)
    wrong = tmp_path / "w.npy"
    np.save(wrong, np.zeros((5, 39), np.float32))
    with pytest.raises(HwmlError):
        predict_files(trained[0], [wrong], out)


# ------------------------------------------------------------------------ embeddings, enrolment


def test_embeddings_are_unit_vectors_and_cosine(trained):
    model, config = load_run(trained[0])
    utts = synthetic(per=2, seed=5)
    e = embed(model, utts, config)
    assert e.shape == (8, model.emb_dim)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(8))
    sim = cosine_similarity(e, e)
    torch.testing.assert_close(sim.diagonal(), torch.ones(8))
    assert cosine_similarity(e[0], e[1]).ndim == 0
    # same speaker closer than other speakers
    assert sim[0, 1] > sim[0, 2:].max()


def test_enrolment_recognises_new_speakers_without_retraining(trained, tmp_path):
    run = trained[0]
    model, config = load_run(run)
    new = synthetic(n_speakers=3, per=4, seed=9, offset=10, lo=60, hi=120)  # speakers never trained on
    enrolled = [enroll(run, f"new{s}", [new.utterance(4 * s + k) for k in range(3)]) for s in range(3)]
    assert all(e.n_clips == 3 and e.embedding.shape == (model.emb_dim,) for e in enrolled)
    path = save_enrollments(tmp_path / "voices.json", enrolled)
    loaded = load_enrollments(path)
    assert [e.name for e in loaded] == ["new0", "new1", "new2"]
    for s in range(3):
        ranked = identify((model, config), loaded, new.utterance(4 * s + 3))
        assert ranked[0][0] == f"new{s}" and ranked[0][1] > ranked[1][1]
    stranger = load_run(run)[0]
    with torch.no_grad():
        stranger.prenet.weight.add_(0.01)
    with pytest.raises(HwmlError):
        identify(stranger, loaded, new.utterance(3))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(HwmlError):
        load_enrollments(tmp_path / "bad.json")


# ------------------------------------------------------------------------------- benchmarks


def test_benchmarks_quick():
    """The speaker benchmarks run (--quick, concurrently) and print JSON lines."""
    benches = [
        "bench_speaker_throughput.py",
        "bench_speaker_latency.py",
        "bench_speaker_time_to_acc.py",
        "bench_speaker_validation.py",
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / b), "--quick"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for b in benches
    ]
    for bench, proc in zip(benches, procs):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{bench}: {err[-2000:]}"
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert lines and all(line["bench"].startswith("speaker_") for line in lines), bench


def test_fsdd_split_is_text_independent_and_labelled_by_name(tmp_path):
    """bench/fsdd_split.py: training takes of some digits only, every take of the others as the
    labelled test part, each test utterance labelled with the speaker in its file name."""
    import hashlib

    sys.path.insert(0, str(ROOT / "bench"))
    from fsdd_split import build

    src = tmp_path / "recordings"
    src.mkdir()
    rng = np.random.default_rng(0)
    for speaker in ("bob", "ann", "cy"):
        for digit in range(4):
            for take in range(3):
                sf.write(src / f"{digit}_{speaker}_{take}.wav", rng.normal(0, 0.1, 2400).astype("float32"), 8000)
    summary = build(tmp_path / "out", src, train_digits=("0", "1"), per_digit=2, seed=0)
    assert summary["train_utterances"] == 3 * 2 * 2 and summary["test_utterances"] == 3 * 2 * 3
    ds = load_dataset(tmp_path / "out")
    assert ds.train.class_names == ["ann", "bob", "cy"]
    uid = {"uttr-" + hashlib.sha1(f"{p.name}#0".encode()).hexdigest()[:32] + ".pt": p.stem for p in src.iterdir()}
    train_digits = {uid[u].split("_")[0] for u in ds.train.utt_ids}
    assert train_digits == {"0", "1"}
    for u, y in zip(ds.test.utt_ids, ds.test.labels.tolist()):
        digit, speaker, _ = uid[u].split("_")
        assert digit in {"2", "3"} and ds.test.class_names[y] == speaker
    again = build(tmp_path / "again", src, train_digits=("0", "1"), per_digit=2, seed=0)
    assert sorted(load_dataset(tmp_path / "again").train.utt_ids) == sorted(ds.train.utt_ids) and again
