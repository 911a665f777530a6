"""HW2 end to end on tiny synthetic folders of both formats: presets, splits, batches, the
closed-form Gaussian, predict's CSVs (pitfalls 5, 6, 7, 10)."""

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from hwml.audio.frames import label_segments, stack_context
from hwml.data import load_dataset, write_libriphone, write_timit11
from hwml.data.types import FrameSet
from hwml.errors import HwmlError
from hwml.phoneme.batches import gather_rows, stacked_inputs
from hwml.phoneme.predict import predict_files, predict_logits
from hwml.phoneme.presets import PRESETS
from hwml.phoneme.split import speaker_of
from hwml.phoneme.task import make_task
from hwml.runs.checkpoint import load_run
from hwml.train.engine import train

SMALL = {
    "medium": {"hidden": [32, 32]},
    "strong": {"hidden": [32, 32]},
    "boss": {"hidden": 16, "channels": 16, "layers": 1, "chunk_frames": 40},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic_frames(n_utts=40, n_classes=41, speakers=8, seed=0) -> FrameSet:
    """Utterances of phone segments: frame = class mean + noise, so context helps a little."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n_classes, 39, generator=torch.Generator().manual_seed(123))
    feats, labels, lengths = [], [], []
    for _ in range(n_utts):
        phones = torch.randint(n_classes, (int(torch.randint(4, 10, (1,), generator=g)),), generator=g)
        y = torch.repeat_interleave(phones, torch.randint(3, 9, (len(phones),), generator=g))
        feats.append(means[y] * 0.7 + torch.randn(len(y), 39, generator=g))
        labels.append(y)
        lengths.append(len(y))
    offsets = torch.tensor([0] + np.cumsum(lengths).tolist())
    ids = [f"{u % speakers}-{seed}-{u:04d}" for u in range(n_utts)]
    return FrameSet(torch.cat(feats), torch.cat(labels), offsets, ids, [str(i) for i in range(n_classes)], 1)


def as_timit(frames: FrameSet) -> FrameSet:
    rows = [stack_context(frames.feats[a:b], 11) for a, b in zip(frames.offsets[:-1], frames.offsets[1:])]
    return FrameSet(torch.cat(rows), frames.labels, None, None, frames.class_names, 11)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A libriphone and a timit_11 folder (39 classes for timit), each with a labelled test split."""
    root = tmp_path_factory.mktemp("hw2")
    train_f, test_f = synthetic_frames(), synthetic_frames(8, seed=1)
    write_libriphone(root / "libriphone", train_f, test_f)
    t39 = lambda f: FrameSet(f.feats, f.labels % 39, f.offsets, f.utt_ids, [str(i) for i in range(39)], 1)
    write_timit11(root / "timit_11", as_timit(t39(train_f)), as_timit(t39(test_f)))
    return {"libriphone": root / "libriphone", "timit_11": root / "timit_11"}


def quick(dataset, preset, tmp_path, steps=6, **extra):
    overrides = {**SMALL.get(preset, {}), "valid_every": 3, **extra}
    if dataset.format == "timit_11" and preset == "boss":
        overrides = {"hidden": [32, 32], "valid_every": 3}
    task = make_task(dataset, preset, overrides, seed=0)
    return task, train(task, {"max_steps": steps}, tmp_path)


@pytest.mark.parametrize("fmt", ["libriphone", "timit_11"])
@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_trains_and_predicts_on_each_format(folders, fmt, preset, tmp_path):
    dataset = load_dataset(folders[fmt])
    task, out = quick(dataset, preset, tmp_path)
    assert out["reason"] == "max_steps" and out["best_valid_acc"] is not None
    model, config = load_run(tmp_path)
    logits = predict_logits(model, config, dataset.test)
    assert logits.shape == (len(dataset.test), len(dataset.train.class_names))
    assert torch.isfinite(logits).all()
    if fmt == "timit_11":
        assert config["concat_nframes"] == 11 and config["split"]["kind"] == "blocks"
    if fmt == "timit_11" and preset == "boss":
        assert config["model"]["name"] == "mlp" and "falls back" in " ".join(config["notes"])


def test_simple_is_the_course_sample_returning_logits(folders, tmp_path):
    """pitfall 6: logits, not log_softmax (CrossEntropyLoss adds its own softmax)."""
    dataset = load_dataset(folders["timit_11"])
    task = make_task(dataset, "simple", {}, seed=0)
    s = task.settings
    assert (s["optimizer"], s["lr"], s["batch_size"], s["weight_decay"], s["schedule"]) == (
        "adam",
        1e-4,
        64,
        0.0,
        "constant",
    )
    torch.manual_seed(0)
    from hwml.models import build_model

    model = build_model(task.model_spec())
    shapes = [tuple(m.weight.shape) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert shapes == [(1024, 429), (512, 1024), (128, 512), (39, 128)]
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.Dropout)) for m in model.modules())
    out = model(torch.randn(5, 429))
    assert not torch.allclose(out.exp().sum(1), torch.ones(5), atol=1e-3)  # not log-probabilities
    assert not torch.allclose(out.logsumexp(1), torch.zeros(5), atol=1e-3)


def test_libriphone_split_holds_out_whole_speakers(folders):
    """pitfall 5: no utterance (and no speaker) is in both training and validation."""
    dataset = load_dataset(folders["libriphone"])
    task = make_task(dataset, "medium", {}, seed=3)
    split = task.split
    assert split["kind"] == "speaker"
    held = {speaker_of(u) for u in split["valid_utts"]}
    frames = dataset.train
    utt_of_row = torch.repeat_interleave(torch.arange(frames.n_utts), frames.offsets[1:] - frames.offsets[:-1])
    train_spk = {speaker_of(frames.utt_ids[u]) for u in utt_of_row[task.train_rows].unique().tolist()}
    assert held and not held & train_spk
    assert len(task.train_rows) + len(task.valid_rows) == len(frames)
    by_utt = make_task(dataset, "medium", {"split": "utterance"}, seed=3).split
    assert by_utt["kind"] == "utterance" and by_utt["valid_utts"]


def test_timit_split_is_recorded_as_blocks(folders):
    dataset = load_dataset(folders["timit_11"])
    task = make_task(dataset, "medium", {}, seed=0)
    assert "no utterance boundaries" in task.run_config()["split"]["note"]
    with pytest.raises(HwmlError, match="blocks"):
        make_task(dataset, "medium", {"split": "speaker"}, seed=0)


def test_context_batches_match_per_utterance_stacking(folders):
    dataset = load_dataset(folders["libriphone"])
    frames = dataset.train
    reference = torch.cat(
        [stack_context(frames.feats[a:b], 9) for a, b in zip(frames.offsets[:-1], frames.offsets[1:])]
    )
    rows = torch.tensor([0, 1, 5, len(frames) - 1, int(frames.offsets[3]), int(frames.offsets[3]) - 1])
    assert torch.equal(stacked_inputs(frames, rows, 9), reference[rows])


def test_memmap_batches_are_gathered_without_copying_the_file(folders):
    dataset = load_dataset(folders["timit_11"])
    assert isinstance(dataset.train.feats, np.memmap)
    rows = torch.tensor([3, 1, 7])
    assert torch.equal(
        gather_rows(dataset.train.feats, rows), torch.from_numpy(np.array(dataset.train.feats[[3, 1, 7]]))
    )


def test_one_seed_drives_split_and_batches(folders):
    """pitfall 10: one seed, one generator: the same seed draws the same batches."""
    dataset = load_dataset(folders["libriphone"])
    draw = lambda seed: make_task(dataset, "boss", SMALL["boss"], seed=seed).train_batch(
        torch.Generator().manual_seed(seed), "cpu"
    )
    (xa, la), ya = draw(5)
    (xb, lb), yb = draw(5)
    (xc, _), yc = draw(6)
    assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(la, lb)
    assert not torch.equal(ya, yc)
    assert bool((ya[torch.arange(ya.shape[1])[None, :] >= la[:, None]] == -1).all())  # padding ignored


def test_gaussian_is_the_closed_form_linear_discriminant(folders, tmp_path):
    dataset = load_dataset(folders["timit_11"])
    task = make_task(dataset, "gaussian", {"shrinkage": 0.0}, seed=0)
    train(task, {}, tmp_path)
    model, config = load_run(tmp_path)
    x = torch.from_numpy(np.array(dataset.train.feats))[task.train_rows].double()
    y = dataset.train.labels[task.train_rows]
    classes = y.unique()
    means = torch.stack([x[y == c].mean(0) for c in classes])
    centred = x - means[torch.searchsorted(classes, y)]
    cov = centred.T @ centred / (len(x) - len(classes))
    prior = torch.stack([(y == c).double().mean() for c in classes])
    inv = torch.linalg.inv(cov)
    test = torch.from_numpy(np.array(dataset.test.feats)).double()
    log_post = test @ inv @ means.T - 0.5 * ((means @ inv) * means).sum(1) + prior.log()
    expected = classes[log_post.argmax(1)]
    got = predict_logits(model, config, dataset.test).argmax(1)
    assert (got == expected).float().mean() > 0.98
    assert config["best_valid_acc"] > 1 / 39


@pytest.mark.parametrize("subsample", [1, 2])
def test_boss_predicts_whole_utterances_the_same_alone_or_batched(folders, tmp_path, subsample):
    dataset = load_dataset(folders["libriphone"])
    quick(dataset, "boss", tmp_path, subsample=subsample)
    model, config = load_run(tmp_path)
    together = predict_logits(model, config, dataset.test)
    a, b = int(dataset.test.offsets[2]), int(dataset.test.offsets[3])
    alone = predict_logits(
        model,
        config,
        FrameSet(dataset.test.feats[a:b], None, torch.tensor([0, b - a]), ["u"], dataset.test.class_names),
    )
    assert torch.allclose(together[a:b], alone, atol=1e-5)


def test_bad_settings_are_user_errors(folders):
    dataset = load_dataset(folders["libriphone"])
    with pytest.raises(HwmlError, match="unknown setting"):
        make_task(dataset, "medium", {"hiden": [3]}, seed=0)
    with pytest.raises(HwmlError, match="unknown preset"):
        make_task(dataset, "huge", {}, seed=0)
    with pytest.raises(HwmlError, match="odd"):
        make_task(dataset, "medium", {"concat_nframes": 4}, seed=0)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.mark.parametrize("fmt", ["libriphone", "timit_11"])
def test_predict_course_test_split_writes_the_submission(folders, fmt, tmp_path):
    dataset = load_dataset(folders[fmt])
    quick(dataset, "medium", tmp_path / "run")
    out = predict_files(tmp_path / "run", [folders[fmt]], tmp_path / "pred.csv")
    rows = read_csv(tmp_path / "pred.csv")
    assert rows[0] == ["Id", "Class"] and len(rows) - 1 == len(dataset.test) == out["rows"]
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(len(dataset.test))]
    model, config = load_run(tmp_path / "run")
    expected = predict_logits(model, config, dataset.test).argmax(1).tolist()
    assert [int(r[1]) for r in rows[1:]] == expected  # course label strings are the class numbers


def test_predict_feature_and_audio_files(folders, tmp_path):
    dataset = load_dataset(folders["libriphone"])
    quick(dataset, "medium", tmp_path / "run", concat_nframes=11)
    raw = dataset.test.feats[:50]
    np.save(tmp_path / "raw.npy", raw.numpy())
    torch.save(stack_context(raw, 11), tmp_path / "stacked.pt")
    t = np.arange(16000) / 16000
    sf.write(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t) * (t < 0.5)).astype(np.float32), 16000)
    files = [tmp_path / "raw.npy", tmp_path / "stacked.pt", tmp_path / "tone.wav"]
    out = predict_files(tmp_path / "run", files, tmp_path / "pred.csv")
    rows = read_csv(tmp_path / "pred.csv")
    assert rows[0] == ["file", "frame", "time", "phone", "prob"]
    n_audio = 1 + (16000 - 400) // 160
    assert len(rows) - 1 == 50 + 50 + n_audio == out["rows"]
    by_file = {}
    for r in rows[1:]:
        by_file.setdefault(r[0], []).append(r[3])
    assert by_file["raw.npy"] == by_file["stacked.pt"]  # same frames, stacked here or there
    segs = read_csv(tmp_path / "pred.segments.csv")
    assert segs[0] == ["file", "start", "end", "phone"]
    audio = [r for r in segs[1:] if r[0] == "tone.wav"]
    assert float(audio[0][1]) == 0.0 and math.isclose(
        float(audio[-1][2]), (n_audio - 1) * 0.01 + 0.0125 + 0.005, abs_tol=1e-3
    )
    assert all(math.isclose(float(a[2]), float(b[1])) for a, b in zip(audio, audio[1:]))  # contiguous
    assert sum(len(f["segments"]) for f in out["files"]) == len(segs) - 1
    with pytest.raises(HwmlError, match="columns"):
        np.save(tmp_path / "bad.npy", np.zeros((4, 40), np.float32))
        predict_files(tmp_path / "run", [tmp_path / "bad.npy"], tmp_path / "bad.csv")


def test_segments_merge_runs_of_equal_labels():
    from hwml.audio.params import MFCC39

    segs = label_segments(["a", "a", "b", "b", "b", "a"], MFCC39)
    assert [s[2] for s in segs] == ["a", "b", "a"]
    assert segs[0][0] == 0.0 and segs[1][0] == pytest.approx(0.0275) and segs[-1][1] == pytest.approx(0.0675)


def load_bench(name):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_throughput_quick(capsys):
    results = load_bench("bench_phoneme_throughput").main(["--quick"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == results
    summary = results[-1]
    assert summary["bench"] == "summary" and summary["hwml_vs_course_batch64"] > 0
    assert 0 < summary["fraction_of_bare_matmul_batch512"]


def test_bench_time_to_acc_quick():
    results = load_bench("bench_phoneme_time_to_acc").main(["--quick"])
    simple, fast, summary = results
    assert simple["preset"] == "simple" and simple["reached"] and simple["epochs"] == pytest.approx(2, abs=0.01)
    assert summary["target_acc"] == simple["best_valid_acc"] and "speedup" in summary


def test_bench_scale_quick():
    results = load_bench("bench_phoneme_scale").main(["--quick"])
    assert results[1]["memmap"] and results[-1]["ok"] and results[-1]["steps"] == 10
