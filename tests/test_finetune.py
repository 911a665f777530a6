"""Fine-tuning (`train --init RUN`, hwml.train.finetune): what is copied, what is re-initialised and
listed, class rows matched by name, the fine-tuning settings and the user's overrides, and the
mistakes that must be one-line errors. Tiny models on the small built-in corpus: seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from hwml.api import train_run
from hwml.cli import main
from hwml.errors import HwmlError
from hwml.models import build_model
from hwml.phoneme.presets import PRESETS as PHONEME_PRESETS
from hwml.runs.checkpoint import load_run
from hwml.train.finetune import MAX_WARMUP_STEPS, InitFrom

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_PHONEME = {"hidden": [32, 32], "valid_every": 3, "eval_batch": 4096}
TINY_SPEAKER = {"d_model": 32, "heads": 2, "ff_dim": 32, "emb_dim": 16, "valid_every": 3}


@pytest.fixture(scope="module")
def phoneme_base(small_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "phoneme-base"
    train_run("phoneme", small_corpus / "libriphone", out, preset="medium", overrides=TINY_PHONEME, max_steps=6)
    return out


@pytest.fixture(scope="module")
def speaker_base(small_corpus, tmp_path_factory):
    """boss: global input statistics, attentive pooling, an AM-softmax head (class rows in a Parameter)."""
    out = tmp_path_factory.mktemp("ft") / "speaker-base"
    train_run("speaker", small_corpus / "speaker", out, preset="boss", overrides=TINY_SPEAKER, max_steps=4)
    return out


def fresh_model(run_dir, names: list[str], seed: int = 123):
    """A new model with the init run's architecture for these class names, and its config."""
    config = json.loads((Path(run_dir) / "config.json").read_text())
    spec = {**config["model"], "kwargs": {**config["model"]["kwargs"], "n_classes": len(names)}}
    torch.manual_seed(seed)
    return build_model(spec), {"model": spec, "class_names": names}


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("kind", ["phoneme", "speaker"])
def test_every_tensor_is_copied_from_the_init_run(kind, phoneme_base, speaker_base):
    base = phoneme_base if kind == "phoneme" else speaker_base
    trained, config = load_run(base)
    model, new_config = fresh_model(base, list(config["class_names"]))
    info = InitFrom(base, kind).load(model, new_config)
    assert info["reinitialised"] == [] and info["new_classes"] == []
    assert info["copied"] == len(trained.state_dict())
    assert info["classes_matched"] == len(config["class_names"])
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


@pytest.mark.parametrize("kind", ["phoneme", "speaker"])
def test_class_rows_follow_the_names_and_a_new_class_gets_a_fresh_row(kind, phoneme_base, speaker_base):
    base = phoneme_base if kind == "phoneme" else speaker_base
    trained, config = load_run(base)
    old = list(config["class_names"])
    names = list(reversed(old[:10])) + ["new-class"]  # another order, fewer classes, one unknown
    model, new_config = fresh_model(base, names)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    info = InitFrom(base, kind).load(model, new_config)
    assert info["classes_matched"] == 10 and info["new_classes"] == ["new-class"]
    assert info["reinitialised"] == []
    head = "out.weight" if kind == "phoneme" else "head.weight"
    rows, init_rows, fresh_rows = model.state_dict()[head], trained.state_dict()[head], fresh[head]
    assert rows.shape[0] == len(names)
    for i, name in enumerate(names[:-1]):
        assert torch.equal(rows[i], init_rows[old.index(name)]), name
    assert torch.equal(rows[-1], fresh_rows[-1]), "the new class's row must stay freshly initialised"
    if kind == "speaker":  # the init run's input statistics come along (spec and buffers agree)
        stats = InitFrom(base, kind).model_spec(new_config["model"])["kwargs"]["input_mean"]
        assert torch.allclose(model.state_dict()["input_norm.mean"], torch.tensor(stats))


def test_a_layer_of_another_shape_is_reinitialised_and_listed(phoneme_base, small_corpus, tmp_path, capsys):
    out = tmp_path / "ft"
    rc, stdout, err = run(
        [
            "train",
            "phoneme",
            str(small_corpus / "libriphone"),
            "--out",
            str(out),
            "--init",
            str(phoneme_base),
            "--set",
            "hidden=[32,16]",
            "--max-steps",
            "2",
            "--quiet",
        ],
        capsys,
    )
    assert rc == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["kwargs"]["hidden"] == [32, 16]  # the user's override wins over the init's
    old = load_run(phoneme_base)[0].state_dict()
    new = load_run(out)[0].state_dict()
    differ = [k for k in new if k not in old or old[k].shape != new[k].shape]
    assert differ and config["init"]["reinitialised"] == differ
    assert config["init"]["copied"] == len(new) - len(differ)
    assert json.loads(stdout.strip().splitlines()[-1])["init"]["reinitialised"] == differ


def test_finetune_settings_apply_unless_the_user_sets_them(phoneme_base, small_corpus, tmp_path):
    data = small_corpus / "libriphone"
    train_run("phoneme", data, tmp_path / "a", init=phoneme_base, max_steps=2)
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    medium = PHONEME_PRESETS["medium"]
    assert config["preset"] == "medium"  # the init run's preset
    assert config["settings"]["hidden"] == [32, 32]  # the init run's architecture, not the preset's
    assert config["settings"]["lr"] == pytest.approx(medium["lr"] * 0.3)
    assert config["settings"]["warmup_steps"] == min(medium["warmup_steps"], MAX_WARMUP_STEPS)
    assert config["init"]["finetune_settings"] == {
        "lr": config["settings"]["lr"],
        "warmup_steps": config["settings"]["warmup_steps"],
    }

    train_run(
        "phoneme",
        data,
        tmp_path / "b",
        init=phoneme_base,
        max_steps=2,
        preset="strong",
        overrides={"lr": 0.01, "warmup_steps": 5},
    )
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["preset"] == "strong" and config["settings"]["hidden"] == [32, 32]
    assert (config["settings"]["lr"], config["settings"]["warmup_steps"]) == (0.01, 5)
    assert config["init"]["finetune_settings"] == {}


def test_mistakes_are_one_line_errors(phoneme_base, speaker_base, small_corpus, tmp_path, capsys):
    data = str(small_corpus / "libriphone")
    rc, _, err = run(["train", "phoneme", data, "--out", str(tmp_path / "x"), "--init", str(speaker_base)], capsys)
    assert rc == 2 and "speaker run cannot start phoneme training" in err and "config.json" in err
    assert "Traceback" not in err
    rc, _, err = run(
        ["train", "phoneme", data, "--out", str(tmp_path / "x"), "--init", str(phoneme_base), "--resume"], capsys
    )
    assert rc == 2 and "--resume" in err
    rc, _, err = run(["train", "phoneme", data, "--out", str(phoneme_base), "--init", str(phoneme_base)], capsys)
    assert rc == 2 and "own folder" in err

    other = tmp_path / "other-features"
    shutil.copytree(phoneme_base, other)
    config = json.loads((other / "config.json").read_text())
    config["features"]["hop_length"] = 80
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(HwmlError, match="feature parameters differ.*hop_length 80 vs 160"):
        train_run("phoneme", data, tmp_path / "y", init=other, max_steps=1)
    with pytest.raises(HwmlError, match="closed form"):
        train_run("phoneme", data, tmp_path / "y", init=phoneme_base, overrides={"model": "gaussian"}, max_steps=1)


@pytest.mark.parametrize("kind", ["phoneme", "speaker"])
def test_a_short_finetune_completes_loads_and_resumes(kind, phoneme_base, speaker_base, small_corpus, tmp_path, capsys):
    base = phoneme_base if kind == "phoneme" else speaker_base
    data = str(small_corpus / ("libriphone" if kind == "phoneme" else "speaker"))
    out = tmp_path / "ft"
    rc, stdout, err = run(["train", kind, data, "--out", str(out), "--init", str(base), "--max-steps", "3"], capsys)
    assert rc == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["step"] == 3 and summary["init"]["from"] == str(base)
    assert f"fine-tuning from {base}" in err  # the human line above the progress bar
    model, config = load_run(out)
    assert config["init"]["classes_matched"] == len(config["class_names"])
    assert config["model"]["kwargs"] == {**load_run(base)[1]["model"]["kwargs"]}  # same architecture and stats
    rc, stdout, err = run(["train", kind, data, "--out", str(out), "--max-steps", "5", "--resume", "--quiet"], capsys)
    assert rc == 0, err
    assert json.loads(stdout.strip().splitlines()[-1])["step"] == 5
