"""The shared training engine and run folders: cancel, resume, early stopping, best weights,
atomic writes, reproducibility (pitfalls 3, 8, 10)."""

import json
import math
import threading
import time

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from hwml.errors import HwmlError
from hwml.runs.checkpoint import load_run, save_checkpoint
from hwml.runs.folder import delete_run, list_runs, read_metrics
from hwml.runs.resume import read_resume_state
from hwml.train.engine import DEFAULTS, train
from hwml.train.optim import clone_state, lr_at

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ToyTask:
    """Two-feature classification; valid labels can be flipped to make learning hurt validation."""

    kind, unit, steps_per_epoch = "phoneme", "frames", 20

    def __init__(self, flip_valid=False, delay=0.0, lr=1e-2, seed=1, n_valid=200):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(1200, 8, generator=g)
        self.y = (self.x[:, 0] > 0).long() + (self.x[:, 1] > 0).long()
        self.valid_y = 2 - self.y[1000:] if flip_valid else self.y[1000:]
        self.delay, self.n_valid = delay, n_valid
        self.settings = {"batch_size": 32, "lr": lr, "dropout": 0.1}

    def model_spec(self):
        return {
            "name": "mlp",
            "kwargs": {"in_dim": 8, "n_classes": 3, "hidden": [16], "dropout": self.settings["dropout"]},
        }

    def train_batch(self, gen, device):
        if self.delay:
            time.sleep(self.delay)
        i = torch.randint(1000, (self.settings["batch_size"],), generator=gen)
        return (self.x[i],), self.y[i]

    def valid_batches(self, device):
        for a in range(0, self.n_valid, 64):
            b = min(a + 64, self.n_valid)
            yield (self.x[1000 + a : 1000 + b],), self.valid_y[a:b]

    def loss(self, model, batch):
        logits = model(*batch[0])
        return F.cross_entropy(logits, batch[1]), logits

    def run_config(self):
        return {"preset": "toy", "class_names": ["a", "b", "c"], "split": {"kind": "toy"}}


def events(run_dir, kind):
    return [e for e in read_metrics(run_dir) if e["event"] == kind]


def without_timing(evs):
    return [{k: v for k, v in e.items() if k not in ("elapsed", "units_per_s", "run_dir")} for e in evs]


def test_train_writes_a_run_folder_that_loads_alone(tmp_path):
    out = train(ToyTask(), {"max_steps": 60, "valid_every": 20}, tmp_path)
    assert out["event"] == "end" and out["reason"] == "max_steps" and out["step"] == 60
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.jsonl", "resume.json", "resume.safetensors"} <= names
    assert not [n for n in names if ".tmp" in n]
    model, config = load_run(tmp_path)
    assert config["task"] == "phoneme" and config["class_names"] == ["a", "b", "c"]
    assert config["model"]["name"] == "mlp" and config["steps"] == 60 and config["finished"]
    assert config["best_valid_acc"] == out["best_valid_acc"] > 0.6
    assert not model.training
    kinds = [e["event"] for e in read_metrics(tmp_path)]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("valid") == 3
    for e in events(tmp_path, "step"):
        assert {"loss", "acc", "lr", "units_per_s", "elapsed", "max_steps", "epoch"} <= set(e)


def test_step_events_come_at_a_bounded_interval(tmp_path):
    train(ToyTask(), {"max_steps": 95, "valid_every": 1000, "log_every": 10, "log_every_s": 0}, tmp_path)
    steps = [e["step"] for e in events(tmp_path, "step")]
    assert steps == list(range(10, 100, 10)) + [95]


def test_stop_event_cancels_within_a_second(tmp_path):
    stop, result = threading.Event(), {}
    worker = threading.Thread(
        target=lambda: result.update(
            train(ToyTask(delay=0.02), {"max_steps": 100_000, "valid_every": 25}, tmp_path, stop_event=stop)
        )
    )
    worker.start()
    time.sleep(1.0)
    stop.set()
    t0 = time.perf_counter()
    worker.join(timeout=10)
    assert time.perf_counter() - t0 < 1.0
    assert result["reason"] == "stopped" and 0 < result["step"] < 100_000
    model, config = load_run(tmp_path)  # the best weights so far were saved
    assert config["finished"] is False and config["steps"] == result["step"]


def test_resume_continues_the_step_count_and_matches_an_uninterrupted_run(tmp_path):
    settings = {"max_steps": 80, "valid_every": 20, "log_every": 10, "log_every_s": 0}
    train(ToyTask(), settings, tmp_path / "straight")
    stop = threading.Event()

    def stop_at_40(event):
        if event["event"] == "valid" and event["step"] == 40:
            stop.set()

    first = train(ToyTask(), settings, tmp_path / "resumed", callbacks=[stop_at_40], stop_event=stop)
    assert first["reason"] == "stopped" and first["step"] == 40
    second = train(ToyTask(), settings, tmp_path / "resumed", resume=True)
    assert second["reason"] == "max_steps" and second["step"] == 80
    starts = events(tmp_path / "resumed", "start")
    assert [s["step"] for s in starts] == [0, 40] and starts[1]["resumed"]
    a, b = (without_timing(events(tmp_path / d, "valid")) for d in ("straight", "resumed"))
    assert a == b
    assert [e["step"] for e in events(tmp_path / "resumed", "step")] == list(range(10, 90, 10))
    wa, wb = (load_run(tmp_path / d)[0].state_dict() for d in ("straight", "resumed"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the raise runs, nothing catches it."""


def test_a_kill_between_the_resume_files_resumes_from_the_tensors_own_step(tmp_path, monkeypatch):
    """A kill after resume.safetensors (step 60) is written but before resume.json is (still
    step 40): the resumed run must continue from 60 with the counters of 60, and so end exactly
    where an uninterrupted run ends."""
    import hwml.runs.resume

    settings = {"max_steps": 80, "valid_every": 20, "log_every": 10, "log_every_s": 0}
    train(ToyTask(), settings, tmp_path / "straight")
    write_json = hwml.runs.resume.write_json_atomic

    def killed_before_resume_json_of_step_60(path, obj, **kw):
        if path.name == "resume.json" and obj["step"] == 60:
            raise Killed
        return write_json(path, obj, **kw)

    monkeypatch.setattr(hwml.runs.resume, "write_json_atomic", killed_before_resume_json_of_step_60)
    with pytest.raises(Killed):
        train(ToyTask(), settings, tmp_path / "killed")
    monkeypatch.undo()
    run = tmp_path / "killed"
    assert json.loads((run / "resume.json").read_text())["step"] == 40  # the stale half of the pair
    train(ToyTask(), settings, run, resume=True)
    assert [e["step"] for e in events(run, "start")] == [0, 60]
    a, b = (without_timing(events(tmp_path / d, "valid")) for d in ("straight", "killed"))
    assert a == b
    wa, wb = (load_run(tmp_path / d)[0].state_dict() for d in ("straight", "killed"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    meta, tensors = read_resume_state(run)
    assert meta == json.loads((run / "resume.json").read_text()) and meta["step"] == 80 and not tensors


def test_resume_files_name_one_checkpoint(tmp_path):
    train(ToyTask(), {"max_steps": 20, "valid_every": 10}, tmp_path)
    ids = set()
    for _ in range(2):
        train(ToyTask(), {"max_steps": 30, "valid_every": 10}, tmp_path, resume=True)
        meta = json.loads((tmp_path / "resume.json").read_text())
        with safe_open(str(tmp_path / "resume.safetensors"), "pt") as f:
            header = f.metadata()
        assert header["checkpoint"] == meta["checkpoint"] and header["step"] == str(meta["step"]) == "30"
        ids.add(meta["checkpoint"])
    assert len(ids) == 2  # a fresh id per checkpoint


def test_unreadable_resume_counters_are_a_clear_error(tmp_path):
    train(ToyTask(), {"max_steps": 10, "valid_every": 10}, tmp_path)
    tensors, header = load_file(str(tmp_path / "resume.safetensors")), {"hwml.resume": "{not json"}
    save_file(tensors, str(tmp_path / "resume.safetensors"), metadata=header)
    with pytest.raises(HwmlError, match="resume.safetensors: unreadable resume state") as e:
        train(ToyTask(), {"max_steps": 20}, tmp_path, resume=True)
    assert "\n" not in str(e.value)


def test_temp_files_of_a_killed_write_are_removed_when_the_run_restarts(tmp_path):
    train(ToyTask(), {"max_steps": 10, "valid_every": 10}, tmp_path)
    # what safeio.atomic_path leaves behind when SIGKILL lands before its rename
    leftovers = [
        ".model.safetensors.k2j4x1.tmp.safetensors",
        ".resume.safetensors.9qz0ab.tmp.safetensors",
        ".config.json.a8b7c6.tmp.json",
        ".resume.json.zz11yy.tmp.json",
        ".tmpM0HXgr",
    ]  # safetensors' own temp file, renamed to the name above when complete
    for name in leftovers:
        (tmp_path / name).write_bytes(b"half a file")
    (tmp_path / ".notes.txt.tmp").write_text("not ours")
    train(ToyTask(), {"max_steps": 20, "valid_every": 10}, tmp_path, resume=True)
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp" in p.name) == [".notes.txt.tmp"]


def test_resume_without_state_is_a_clear_error(tmp_path):
    with pytest.raises(HwmlError, match="no resume state"):
        train(ToyTask(), {"max_steps": 5}, tmp_path, resume=True)


def test_early_stopping_triggers_after_patience_validations(tmp_path):
    """pitfall 8: patience counts validations, so it can fire long before max_steps."""
    out = train(ToyTask(flip_valid=True, lr=0.05), {"max_steps": 10_000, "valid_every": 10, "patience": 3}, tmp_path)
    assert out["reason"] == "early_stop"
    valids = events(tmp_path, "valid")
    assert out["step"] == valids[-1]["step"] < 10_000
    assert [v["improved"] for v in valids[-3:]] == [False] * 3


def test_a_tie_in_accuracy_goes_to_the_lower_validation_loss(tmp_path):
    """A small validation set reaches 100% early; later weights with a lower loss must still win
    (and count as improvements, so patience does not stop a run that is still learning)."""
    out = train(ToyTask(lr=0.05, n_valid=12), {"max_steps": 300, "valid_every": 10, "patience": 3}, tmp_path)
    valids = events(tmp_path, "valid")
    top = max(v["valid_acc"] for v in valids)
    at_top = [v for v in valids if v["valid_acc"] == top]
    assert len(at_top) > 1  # the toy task's validation accuracy saturates
    best = min(at_top, key=lambda v: v["valid_loss"])
    assert out["best_step"] == best["step"] > at_top[0]["step"]
    assert [v["improved"] for v in at_top] == [
        v["valid_loss"] < min([w["valid_loss"] for w in at_top[:i]] or [math.inf]) for i, v in enumerate(at_top)
    ]


def test_saved_weights_are_the_best_not_the_last(tmp_path):
    """pitfall 3: with validation labels flipped, learning makes validation worse, so the best
    weights are early ones; the saved file must hold them, not the live model's."""
    out = train(ToyTask(flip_valid=True, lr=0.05), {"max_steps": 200, "valid_every": 10, "patience": 0}, tmp_path)
    valids = events(tmp_path, "valid")
    best = max(valids, key=lambda v: (v["valid_acc"], -v["valid_loss"]))  # first of equals
    assert out["best_step"] == best["step"] < out["step"]
    model, _ = load_run(tmp_path)
    task = ToyTask(flip_valid=True)
    with torch.no_grad():
        acc = torch.cat([(model(x).argmax(1) == y) for (x,), y in task.valid_batches("cpu")]).float().mean()
    assert float(acc) == pytest.approx(best["valid_acc"])
    assert float(acc) > valids[-1]["valid_acc"]


def test_clone_state_is_a_copy():
    model = torch.nn.Linear(3, 2)
    snap, live = clone_state(model), model.state_dict()
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not torch.equal(snap["weight"], model.weight) and torch.equal(live["weight"], model.weight)


def test_same_seed_same_metrics_other_seed_different(tmp_path):
    settings = {"max_steps": 50, "valid_every": 10, "log_every": 5, "log_every_s": 0, "seed": 7}
    for name in ("a", "b"):
        train(ToyTask(), settings, tmp_path / name)
    train(ToyTask(), {**settings, "seed": 8}, tmp_path / "c")
    a, b, c = (without_timing(read_metrics(tmp_path / n)) for n in "abc")
    assert a == b and a != c


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    train(ToyTask(), {"max_steps": 20, "valid_every": 10}, tmp_path)
    before = {n: (tmp_path / n).read_bytes() for n in ("model.safetensors", "config.json")}
    import hwml.runs.checkpoint

    def torn_write(tensors, path, metadata=None):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hwml.runs.checkpoint, "save_file", torn_write)
    with pytest.raises(HwmlError, match="cannot write"):
        save_checkpoint(tmp_path, {"w": torch.ones(3)}, {"task": "phoneme"})
    assert {n: (tmp_path / n).read_bytes() for n in before} == before
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    load_run(tmp_path)


def test_read_metrics_skips_a_torn_last_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"event": "start", "step": 0}) + '\n{"event": "st')
    assert read_metrics(tmp_path) == [{"event": "start", "step": 0}]


def test_unknown_setting_and_bad_device_are_user_errors(tmp_path):
    with pytest.raises(HwmlError, match="unknown setting"):
        train(ToyTask(), {"max_stpes": 5}, tmp_path)
    with pytest.raises(HwmlError, match="device"):
        train(ToyTask(), {"device": "tpu"}, tmp_path)


def test_none_settings_keep_the_presets_value(tmp_path):
    task = ToyTask()
    task.settings["max_steps"] = 12
    out = train(task, {"max_steps": None, "max_seconds": None}, tmp_path)
    assert out["step"] == 12


def test_max_seconds_stops_and_anneals_by_time(tmp_path):
    out = train(
        ToyTask(delay=0.01),
        {"max_seconds": 0.5, "max_steps": 10**6, "valid_every": 10**6, "log_every_s": 0.1},
        tmp_path,
    )
    assert out["reason"] == "max_seconds"
    lrs = [e["lr"] for e in events(tmp_path, "step")]
    assert lrs[-1] < lrs[0]


def test_warmup_then_cosine():
    s = {**DEFAULTS, "lr": 1.0, "warmup_steps": 10, "min_lr_ratio": 0.1}
    assert lr_at(0, 0.0, s) == pytest.approx(0.1)
    assert lr_at(9, 0.0, s) == pytest.approx(1.0)
    assert lr_at(10, 0.0, s) == pytest.approx(1.0)
    assert lr_at(50, 0.5, s) == pytest.approx(0.55)
    assert lr_at(99, 1.0, s) == pytest.approx(0.1)
    assert lr_at(50, 0.5, {**s, "schedule": "constant"}) == 1.0


def test_list_and_delete_runs(tmp_path):
    train(ToyTask(), {"max_steps": 5}, tmp_path / "r1")
    (tmp_path / "not_a_run").mkdir()
    runs = list_runs(tmp_path)
    assert [r["name"] for r in runs] == ["r1"] and runs[0]["preset"] == "toy"
    with pytest.raises(HwmlError, match="not a run folder"):
        delete_run(tmp_path / "not_a_run")
    delete_run(tmp_path / "r1")
    assert list_runs(tmp_path) == [] and (tmp_path / "not_a_run").exists()
