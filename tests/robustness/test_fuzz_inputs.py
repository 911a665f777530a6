"""Property-based tests: no input, however odd, makes a reader, a feature function or an entry
point fail with anything but HwmlError (and a success must give sane output). Bounded examples,
fixed derandomised seeds, so the suite's time stays flat."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hwml.api import predict_run
from hwml.audio.features import featurize
from hwml.audio.frames import stack_context
from hwml.audio.params import LOGMEL40, MFCC39
from hwml.data import load_dataset
from hwml.errors import HwmlError

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def only_hwml_errors(fn, *args, **kw):
    """fn's result, or None when it raised HwmlError; any other exception fails the test."""
    try:
        return fn(*args, **kw)
    except HwmlError as e:
        assert "\n" not in str(e) and str(e).strip(), repr(e)
        return None


DTYPES = st.sampled_from(
    [np.float32, np.float64, np.float16, np.int8, np.int64, np.uint8, np.bool_, np.complex64, "<U3", "S2", ">f4"]
)
SHAPES = st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=50),
    st.tuples(st.integers(0, 30), st.sampled_from([38, 39, 40, 41, 117, 429])),
)


@FUZZ
@given(arr=hnp.arrays(DTYPES, SHAPES, elements=None), as_pt=st.booleans())
def test_predict_on_any_array_file(tmp_path, phoneme_run, speaker_run, arr, as_pt):
    path = tmp_path / ("x.pt" if as_pt else "x.npy")
    if as_pt:
        if arr.dtype.kind in "US" or not arr.dtype.isnative:
            return
        torch.save(torch.from_numpy(arr.copy()), path)
    else:
        np.save(path, arr)
    for run in (phoneme_run, speaker_run):
        summary = only_hwml_errors(predict_run, run, [path], tmp_path / "p.csv")
        if summary is not None:  # accepted: it must have been a finite float (T, D) matrix
            assert arr.ndim == 2 and arr.shape[0] > 0 and arr.dtype.kind == "f" and np.isfinite(arr).all()


@FUZZ
@given(
    data=st.binary(max_size=3000),
    cut=st.integers(0, 5000),
    flips=st.lists(st.integers(0, 5000), max_size=8),
    fmt=st.sampled_from(["WAV", "FLAC", "NIST", "OGG", "MP3", "none"]),
)
def test_audio_decoders_on_damaged_files(tmp_path, data, cut, flips, fmt):
    """Real files cut short and bit-flipped, or random bytes: decoded, or one clean HwmlError."""
    path = tmp_path / f"x.{ {'NIST': 'sph', 'none': 'wav'}.get(fmt, fmt.lower()) }"
    if fmt == "none":
        raw = bytearray(data)
    else:
        buf = io.BytesIO()
        sf.write(buf, np.sin(np.arange(4000) / 7.0).astype(np.float32) * 0.5, 16000, format=fmt)
        raw = bytearray(buf.getvalue()[: max(cut, 1)])
        for i in flips:
            if raw:
                raw[i % len(raw)] ^= 0xFF
    path.write_bytes(bytes(raw))
    x = only_hwml_errors(featurize, path, MFCC39)
    if x is not None:
        assert x.ndim == 2 and x.shape[1] == 39 and torch.isfinite(x).all()


@FUZZ
@given(
    wave=hnp.arrays(
        st.sampled_from([np.float32, np.float64, np.int16, np.int32, np.uint8]),
        hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=3000),
    ),
    sr=st.integers(-10, 200_000),
    kind=st.sampled_from([MFCC39, LOGMEL40]),
)
def test_featurize_any_recording(wave, sr, kind):
    """What a microphone could hand over: any dtype, channels, rate, NaN, silence."""
    x = only_hwml_errors(featurize, wave, kind, sample_rate=sr)
    if x is not None:
        assert x.shape[1] == kind.dim and torch.isfinite(x).all()


@FUZZ
@given(
    frames=hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=3, max_side=20)),
    n=st.one_of(st.integers(-3, 30), st.just(True), st.floats(0, 5)),
)
def test_stack_context_any_shape(frames, n):
    x = only_hwml_errors(stack_context, frames, n)
    if x is not None:
        assert x.shape == (frames.shape[0], n * frames.shape[1])


def _good_zip() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, a in (
            ("timit_11/train_11.npy", rng.standard_normal((6, 429)).astype(np.float32)),
            ("timit_11/train_label_11.npy", np.array(["0", "1", "2", "3", "4", "5"])),
        ):
            b = io.BytesIO()
            np.save(b, a)
            zf.writestr(name, b.getvalue())
    return buf.getvalue()


GOOD_ZIP = _good_zip()


@FUZZ
@given(
    flips=st.lists(st.tuples(st.integers(0, len(GOOD_ZIP) - 1), st.integers(1, 255)), min_size=1, max_size=6),
    cut=st.integers(1, len(GOOD_ZIP)),
)
def test_damaged_zips_load_or_refuse_and_clean_up(tmp_path, monkeypatch, flips, cut):
    raw = bytearray(GOOD_ZIP[:cut])
    for i, x in flips:
        if i < len(raw):
            raw[i] ^= x
    (tmp_path / "tmp").mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    archive = tmp_path / "d.zip"
    archive.write_bytes(bytes(raw))
    ds = only_hwml_errors(load_dataset, archive)
    if ds is not None:
        assert ds.format == "timit_11" and torch.isfinite(torch.as_tensor(np.asarray(ds.train.feats))).all()
    assert not list((tmp_path / "tmp").iterdir())


TEXT = st.text(st.sampled_from(list('0123456789 -\n\tab.,"{}[]:é\x00')), max_size=200)


@FUZZ
@given(
    labels=TEXT,
    split=TEXT,
    which=st.sampled_from(["train_labels.txt", "train_split.txt", "test_split.txt", "test_labels.txt", "classes.txt"]),
)
def test_libriphone_text_files(tmp_path, phoneme_data, labels, split, which):
    import shutil

    data = Path(tempfile.mkdtemp(dir=tmp_path))
    shutil.copytree(phoneme_data, data, dirs_exist_ok=True)
    (data / which).write_text(labels + split)
    ds = only_hwml_errors(load_dataset, data)
    if ds is not None:
        assert len(ds.train.labels) == len(ds.train) and int(ds.train.labels.max()) < len(ds.train.class_names)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**20) | st.floats() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(doc=JSONISH, which=st.sampled_from(["mapping.json", "metadata.json", "testdata.json"]), keep=st.booleans())
def test_hw4_json_files(tmp_path, speaker_data, doc, which, keep):
    import json
    import shutil

    data = Path(tempfile.mkdtemp(dir=tmp_path))
    shutil.copytree(speaker_data, data, dirs_exist_ok=True)
    if keep:  # keep the real document, damage one value inside it
        real = json.loads((data / which).read_text())
        key = sorted(real)[0]
        real[key] = doc
        doc = real
    (data / which).write_text(json.dumps(doc))
    ds = only_hwml_errors(load_dataset, data)
    if ds is not None:
        assert len(ds.train) > 0 and ds.train.feats.shape[1] == 40


SETTING_VALUES = st.one_of(
    st.integers(-2, 3),
    st.sampled_from([0.5, 1e9, -1e-3, float("nan"), "abc", "", [], [3], [0.9], [16, "x"], {"a": 1}, None, True]),
)


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    key=st.sampled_from(
        [
            "lr",
            "batch_size",
            "concat_nframes",
            "hidden",
            "dropout",
            "valid_every",
            "patience",
            "weight_decay",
            "warmup_steps",
            "valid_fraction",
            "optimizer",
            "schedule",
            "grad_clip",
            "betas",
            "max_epochs",
            "label_smoothing",
            "no_such_key",
        ]
    ),
    value=SETTING_VALUES,
)
def test_train_with_any_setting_value(tmp_path, phoneme_data, key, value):
    """`--set key=value` from a user: trains (1 step) or a clear HwmlError."""
    from hwml.api import train_run

    overrides = {"hidden": [16], "batch_size": 32, "concat_nframes": 3, key: value}
    if value is None:
        overrides.pop(key)
    run = Path(tempfile.mkdtemp(dir=tmp_path))
    result = only_hwml_errors(
        train_run, "phoneme", phoneme_data, run, preset="medium", overrides=overrides, max_steps=1, seed=0
    )
    if result is not None:
        assert result["step"] >= 1
