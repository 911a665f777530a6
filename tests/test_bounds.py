"""Every trainable setting has a documented range, and a run whose estimated cost is over the
machine's budget is refused before anything is allocated (issue 21, item 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwml.api import check_training_settings
from hwml.errors import HwmlError
from hwml.phoneme import presets as phoneme_presets
from hwml.speaker import presets as speaker_presets
from hwml.train.budget import SPEAKERS_ASSUMED, estimate
from hwml.train.checks import BOUNDS, MAX_HIDDEN_LAYERS, check_overrides
from hwml.train.engine import DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
SPEAKER_ONLY = set(speaker_presets.SETTINGS) - set(DEFAULTS) - set(phoneme_presets.TASK_KEYS)


def _where(key: str):
    """(presets, preset) that know `key`: the speaker task's keys, else the phoneme MLP's
    (or its birnn's for the recurrent keys)."""
    if key in SPEAKER_ONLY or key in ("d_model", "depth", "heads", "ff_dim", "conv_kernel", "segment_len"):
        return speaker_presets, "strong" if key == "conv_kernel" else "medium"
    if key in ("layers", "channels", "kernel", "chunk_frames", "eval_frames"):
        return phoneme_presets, "boss"
    if key == "shrinkage":
        return phoneme_presets, "gaussian"
    return phoneme_presets, "medium"


def _value(key: str, x):
    return [x] if key == "hidden" and _where(key)[1] == "medium" else x


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_over_the_upper_bound_is_refused(key):
    presets, preset = _where(key)
    hi = BOUNDS[key][1]
    over = hi * 2 if isinstance(hi, int) else hi * 2.0
    with pytest.raises(HwmlError, match=rf"setting {key}=.*must be between"):
        check_overrides(presets, preset, {key: _value(key, over)})


@pytest.mark.parametrize("key", sorted(k for k, (lo, _) in BOUNDS.items() if lo >= 1))
def test_under_the_lower_bound_is_refused(key):
    presets, preset = _where(key)
    with pytest.raises(HwmlError, match=rf"setting {key}="):
        check_overrides(presets, preset, {key: _value(key, BOUNDS[key][0] - 1)})


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_the_bounds_themselves_pass_the_range_check(key):
    """At either end a setting is in range: refused, if at all, only by the run's total budget."""
    presets, preset = _where(key)
    for x in BOUNDS[key]:
        if x == 0 and key in ("lr", "s", "max_seconds"):
            continue  # must be positive: the open end of (0, hi]
        try:
            check_overrides(presets, preset, {key: _value(key, x)})
        except HwmlError as exc:
            assert "too big for this machine" in str(exc), str(exc)


def test_too_many_hidden_layers_are_refused():
    with pytest.raises(HwmlError, match="hidden layers"):
        check_overrides(phoneme_presets, "medium", {"hidden": [8] * (MAX_HIDDEN_LAYERS + 1)})


def test_log_seconds_must_be_zero_or_not_tiny():
    check_overrides(phoneme_presets, "medium", {"log_every_s": 0})
    with pytest.raises(HwmlError, match="log_every_s"):
        check_overrides(phoneme_presets, "medium", {"log_every_s": 0.001})


def test_a_visitor_may_not_log_every_step_but_the_command_line_may():
    check_overrides(phoneme_presets, "medium", {"log_every": 1})
    with pytest.raises(HwmlError, match="log_every=1: must be between 20"):
        check_training_settings("phoneme", "medium", {"log_every": 1, "log_every_s": 0})


def test_heads_must_divide_d_model_before_the_model_is_built():
    with pytest.raises(HwmlError, match="multiple of heads"):
        check_overrides(speaker_presets, "medium", {"d_model": 96, "heads": 5})


@pytest.mark.parametrize(
    ("presets", "preset", "overrides"),
    [
        (speaker_presets, "medium", {"d_model": 1024, "depth": 8, "ff_dim": 4096}),
        (speaker_presets, "boss", {"d_model": 512, "depth": 12, "ff_dim": 2048}),
        (speaker_presets, "medium", {"d_model": 256, "batch_size": 4096, "segment_len": 4096}),
        (phoneme_presets, "strong", {"hidden": [8192] * 8}),
        (phoneme_presets, "boss", {"hidden": 2048, "layers": 8, "batch_size": 4096}),
        (phoneme_presets, "gaussian", {"concat_nframes": 101, "batch_size": 65536}),
    ],
)
def test_a_run_over_the_budget_is_refused_in_one_line(presets, preset, overrides):
    with pytest.raises(HwmlError, match="too big for this machine") as info:
        check_overrides(presets, preset, overrides)
    assert "\n" not in str(info.value)


def test_the_budget_follows_its_settings(monkeypatch):
    big = {"d_model": 512, "depth": 6, "ff_dim": 2048}
    with pytest.raises(HwmlError, match="too big"):
        check_overrides(speaker_presets, "medium", big)
    monkeypatch.setenv("HWML_MAX_TRAIN_MB", "100000")
    monkeypatch.setenv("HWML_MAX_STEP_GFLOP", "100000")
    check_overrides(speaker_presets, "medium", big)


@pytest.mark.parametrize(
    ("presets", "name"),
    [(phoneme_presets, n) for n in phoneme_presets.PRESETS] + [(speaker_presets, n) for n in speaker_presets.PRESETS],
)
def test_every_preset_is_well_within_the_budget(presets, name):
    settings = {**DEFAULTS, **getattr(presets, "SETTINGS", {}), **presets.PRESETS[name]}
    cost = estimate(settings)
    assert cost.bytes < 2**30 and cost.flops < 50e9, cost.describe()
    check_overrides(presets, name, {})


def test_the_parameter_estimate_matches_the_models_built():
    """The estimate is of the models hwml builds: within 5% of their real parameter counts."""
    from hwml.models.phoneme import MLP
    from hwml.models.speaker import SpeakerClassifier

    for name in ("medium", "strong", "boss"):
        s = {**speaker_presets.SETTINGS, **speaker_presets.PRESETS[name]}
        kwargs = {k: s[k] for k in speaker_presets.MODEL_KEYS} | {"input_norm": "none"}
        model = SpeakerClassifier(n_classes=SPEAKERS_ASSUMED, **kwargs)
        real = sum(p.numel() for p in model.parameters())
        assert abs(estimate(s).params - real) / real < 0.05, (name, estimate(s).params, real)
    s = {**DEFAULTS, **phoneme_presets.PRESETS["strong"]}
    real = sum(p.numel() for p in MLP(21 * 39, 39, hidden=s["hidden"]).parameters())
    assert abs(estimate(s).params - real) / real < 0.05


def test_the_issues_huge_model_is_refused_at_once_by_the_cli(tmp_path, small_corpus):
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    args = ["train", "speaker", small_corpus / "speaker", "--out", tmp_path / "run", "--preset", "medium"]
    args += ["--set", "d_model=4096", "--set", "depth=64", "--set", "ff_dim=65536", "--max-steps", "2"]
    proc = subprocess.run(
        [sys.executable, "-m", "hwml", *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("hwml: error: setting d_model=4096"), proc.stderr
    assert not (tmp_path / "run").exists()  # refused before the run folder or a model existed
    # within bounds one by one, too big together: refused by the budget
    args = [*args[:7], "--set", "d_model=1024", "--set", "depth=24", "--set", "ff_dim=8192", "--max-steps", "2"]
    proc = subprocess.run(
        [sys.executable, "-m", "hwml", *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2 and "too big for this machine" in proc.stderr, proc.stderr
