"""Course data formats: readers against files made the way the course makes them (plain numpy,
torch and json calls, not our writers), round trips through our writers, detection, zips, and
every kind of bad input -> one-line HwmlError naming the file."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwml.data import FrameSet, UtteranceSet, detect_format, find_dataset, load_dataset
from hwml.data.hw4 import read_hw4, write_hw4
from hwml.data.libriphone import read_libriphone, write_libriphone
from hwml.data.timit11 import read_timit11, write_timit11
from hwml.errors import HwmlError

SPEAKERS = ["id10003", "id10001", "id10002"]  # id order deliberately not sorted


# ------------------------------------------------------------------- the course's own way of writing


def course_timit(root: Path, n=120, m=40, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "train_11.npy", rng.standard_normal((n, 429)).astype(np.float32))
    np.save(root / "train_label_11.npy", np.array([str(i % 39) for i in range(n)], dtype="<U2"))
    np.save(root / "test_11.npy", rng.standard_normal((m, 429)).astype(np.float32))
    return root


def course_libriphone(root: Path, seed=0) -> Path:
    g = torch.Generator().manual_seed(seed)
    lines = []
    for part, utts in (
        ("train", {"19-198-0001": 12, "19-198-0000": 9, "26-495-0003": 15}),
        ("test", {"1272-128104-0002": 7, "1272-128104-0000": 11}),
    ):
        (root / "feat" / part).mkdir(parents=True, exist_ok=True)
        for utt, t in utts.items():
            torch.save(torch.randn(t, 39, generator=g), root / "feat" / part / f"{utt}.pt")
            if part == "train":
                lines.append(utt + " " + " ".join(str(int(x)) for x in torch.randint(0, 41, (t,), generator=g)))
        (root / f"{part}_split.txt").write_text("".join(f"{u}\n" for u in utts))
    (root / "train_labels.txt").write_text("\n".join(lines) + "\n")
    return root


def course_hw4(root: Path, seed=0) -> Path:
    g = torch.Generator().manual_seed(seed)
    root.mkdir(parents=True, exist_ok=True)
    counter = iter(range(10**6))

    def utt(t):
        name = f"uttr-{next(counter) * 7919 + seed:032x}.pt"
        torch.save(torch.randn(t, 40, generator=g), root / name)
        return {"feature_path": name, "mel_len": t}

    mapping = {
        "speaker2id": {s: i for i, s in enumerate(SPEAKERS)},
        "id2speaker": {str(i): s for i, s in enumerate(SPEAKERS)},
    }
    speakers = {s: [utt(10 + 3 * j + i) for j in range(2 + i)] for i, s in enumerate(sorted(SPEAKERS))}
    (root / "mapping.json").write_text(json.dumps(mapping, indent=2))
    (root / "metadata.json").write_text(json.dumps({"n_mels": 40, "speakers": speakers}, indent=2))
    (root / "testdata.json").write_text(json.dumps({"n_mels": 40, "utterances": [utt(8), utt(13)]}, indent=2))
    return root


def expect_error(fn, path_part: str, words: str = ""):
    with pytest.raises(HwmlError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg and path_part in msg and words in msg, msg
    return msg


# ------------------------------------------------------------------------------------ course reads


def test_reads_course_timit11(tmp_path):
    root = course_timit(tmp_path / "timit_11")
    ds = load_dataset(root)
    assert (ds.kind, ds.format) == ("phoneme", "timit_11")
    tr = ds.train
    assert isinstance(tr.feats, np.memmap) and not tr.feats.flags.writeable  # never copied
    assert tr.feats.shape == (120, 429) and tr.stacked == 11 and tr.offsets is None
    assert tr.labels.dtype == torch.int64 and tr.labels[:3].tolist() == [0, 1, 2] and tr.labels[40] == 1
    assert tr.class_names == [str(i) for i in range(39)]
    assert ds.test.feats.shape == (40, 429) and ds.test.labels is None
    assert np.array_equal(tr.feats, np.load(root / "train_11.npy"))
    in_memory = read_timit11(root, mmap=False).train.feats
    assert not isinstance(in_memory, np.memmap) and np.array_equal(in_memory, tr.feats)


def test_timit11_sidecars(tmp_path):
    root = course_timit(tmp_path / "t")
    names = [f"ph{i}" for i in range(39)]
    (root / "classes.txt").write_text("\n".join(names) + "\n")
    np.save(root / "test_label_11.npy", np.array(["38"] * 40, dtype="<U2"))
    ds = read_timit11(root)
    assert ds.train.class_names == names and ds.test.labels.tolist() == [38] * 40


def test_reads_course_libriphone(tmp_path):
    ds = load_dataset(course_libriphone(tmp_path / "libriphone"))
    assert (ds.kind, ds.format) == ("phoneme", "libriphone")
    tr, te = ds.train, ds.test
    assert tr.utt_ids == ["19-198-0001", "19-198-0000", "26-495-0003"]  # split-file order
    assert tr.offsets.tolist() == [0, 12, 21, 36] and tr.feats.shape == (36, 39) and tr.stacked == 1
    assert len(tr.labels) == 36 and tr.class_names == [str(i) for i in range(41)]
    assert te.utt_ids == ["1272-128104-0002", "1272-128104-0000"] and te.labels is None
    first = torch.load(tmp_path / "libriphone/feat/test/1272-128104-0002.pt", weights_only=True)
    assert torch.equal(te.feats[:7], first)


def test_libriphone_legacy_pt_and_test_labels(tmp_path):
    root = course_libriphone(tmp_path / "l")
    for p in (root / "feat" / "test").glob("*.pt"):  # older torch.save format
        torch.save(torch.load(p, weights_only=True), p, _use_new_zipfile_serialization=False)
    (root / "test_labels.txt").write_text(
        "1272-128104-0000 " + " ".join(["3"] * 11) + "\n1272-128104-0002 " + " ".join(["40"] * 7) + "\n"
    )
    te = read_libriphone(root).test
    assert te.labels.tolist() == [40] * 7 + [3] * 11


def test_reads_course_hw4(tmp_path):
    root = course_hw4(tmp_path / "Dataset")
    ds = load_dataset(root)
    assert (ds.kind, ds.format) == ("speaker", "hw4")
    tr = ds.train
    assert tr.class_names == SPEAKERS  # id2speaker order, not metadata order
    meta = json.loads((root / "metadata.json").read_text())["speakers"]
    expected_ids = [u["feature_path"] for s in meta for u in meta[s]]
    assert tr.utt_ids == expected_ids
    assert tr.labels.tolist() == [SPEAKERS.index(s) for s in meta for _ in meta[s]]
    assert tr.lengths.tolist() == [u["mel_len"] for s in meta for u in meta[s]]
    assert tr.feats.shape == (int(tr.lengths.sum()), 40)
    assert torch.equal(tr.utterance(4), torch.load(root / expected_ids[4], weights_only=True))
    assert len(ds.test) == 2 and ds.test.labels is None and ds.test.lengths.tolist() == [8, 13]


def test_hw4_test_labels_csv(tmp_path):
    root = course_hw4(tmp_path / "d")
    test_ids = [u["feature_path"] for u in json.loads((root / "testdata.json").read_text())["utterances"]]
    (root / "test_labels.csv").write_text(f"Id,Category\n{test_ids[1]},id10002\n")
    assert read_hw4(root).test.labels.tolist() == [-1, SPEAKERS.index("id10002")]
    (root / "test_labels.csv").write_text(f"Id,Category\n{test_ids[0]},id99999\n")
    expect_error(lambda: read_hw4(root), "test_labels.csv", "unknown speaker 'id99999'")


def test_hw4_cache_matches_and_notices_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("HWML_CACHE", str(tmp_path / "cache"))
    root = course_hw4(tmp_path / "d")
    plain = read_hw4(root, cache=False)
    first, again = read_hw4(root, cache=True), read_hw4(root, cache=True)
    for ds in (first, again):
        assert torch.equal(ds.train.feats, plain.train.feats) and torch.equal(ds.test.feats, plain.test.feats)
        assert ds.train.utt_ids == plain.train.utt_ids and torch.equal(ds.train.labels, plain.train.labels)
    again.train.feats[0, 0] = 123.0  # copy-on-write: neither the cache nor later loads change
    assert read_hw4(root, cache=True).train.feats[0, 0] == plain.train.feats[0, 0]
    name = plain.train.utt_ids[0]
    torch.save(torch.full((plain.train.lengths[0].item(), 40), 5.0), root / name)
    assert read_hw4(root, cache=True).train.utterance(0).eq(5.0).all()


def test_hw4_without_a_writable_cache_loads_into_memory(tmp_path, monkeypatch):
    (tmp_path / "not-a-folder").write_text("x")
    monkeypatch.setenv("HWML_CACHE", str(tmp_path / "not-a-folder"))
    ds = read_hw4(course_hw4(tmp_path / "d"), cache=True)
    assert ds.train.feats.is_contiguous() and len(ds.train) == 9


def test_bench_quick_is_memory_mapped():
    bench = Path(__file__).resolve().parents[1] / "bench" / "bench_data_scale.py"
    out = subprocess.run([sys.executable, str(bench), "--quick"], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["memmap"] and result["rows"] == 50_000 and result["dim"] == 429
    assert result["rss_after_load_mb"] - result["rss_after_imports_mb"] < 60  # the 86 MB file was not copied


# ------------------------------------------------------------------------------------- round trips


def test_timit11_round_trip_writes_course_dtypes(tmp_path):
    src = read_timit11(course_timit(tmp_path / "a"))
    test = FrameSet(src.test.feats, torch.arange(40) % 39, None, None, src.train.class_names, 11)
    write_timit11(tmp_path / "b", src.train, test)
    assert np.load(tmp_path / "b" / "train_label_11.npy").dtype == np.dtype("<U2")
    assert np.load(tmp_path / "b" / "train_11.npy").dtype == np.float32
    assert not (tmp_path / "b" / "classes.txt").exists()
    back = read_timit11(tmp_path / "b")
    assert np.array_equal(back.train.feats, src.train.feats) and torch.equal(back.train.labels, src.train.labels)
    assert torch.equal(back.test.labels, test.labels)
    named = FrameSet(
        torch.from_numpy(np.array(src.train.feats)), src.train.labels, None, None, [f"p{i}" for i in range(39)], 11
    )
    write_timit11(tmp_path / "b", named)  # rewrite in place: stale test files go
    back = read_timit11(tmp_path / "b")
    assert back.train.class_names == named.class_names and back.test is None


def test_libriphone_round_trip(tmp_path):
    src = read_libriphone(course_libriphone(tmp_path / "a"))
    test = FrameSet(
        src.test.feats,
        torch.zeros(len(src.test), dtype=torch.int64),
        src.test.offsets,
        src.test.utt_ids,
        src.train.class_names,
    )
    write_libriphone(tmp_path / "b", src.train, test)
    back = read_libriphone(tmp_path / "b")
    for a, b in ((src.train, back.train), (test, back.test)):
        assert a.utt_ids == b.utt_ids and torch.equal(a.offsets, b.offsets)
        assert torch.equal(a.feats, b.feats) and torch.equal(a.labels, b.labels)
    saved = torch.load(tmp_path / "b/feat/train/19-198-0000.pt", weights_only=True)
    assert type(saved) is torch.Tensor and saved.shape == (9, 39)
    assert (tmp_path / "b" / "train_labels.txt").read_text().startswith("19-198-0001 ")


def test_hw4_round_trip_and_deterministic_names(tmp_path):
    g = torch.Generator().manual_seed(3)
    lengths = [5, 9, 4, 7]
    train = UtteranceSet(
        torch.randn(sum(lengths), 40, generator=g),
        torch.tensor([0, 5, 14, 18, 25]),
        ["a/1.wav", "a/2.wav", "b/1.wav", "c/9.wav"],
        torch.tensor([1, 1, 0, 2]),
        ["bob", "amy", "cyd"],
    )
    test = UtteranceSet(
        torch.randn(6, 40, generator=g),
        torch.tensor([0, 2, 6]),
        ["t1", "t2"],
        torch.tensor([2, -1]),
        ["bob", "amy", "cyd"],
    )
    write_hw4(tmp_path / "x", train, test)
    write_hw4(tmp_path / "y", train, test)
    names = sorted(p.name for p in (tmp_path / "x").glob("uttr-*.pt"))
    assert names == sorted(p.name for p in (tmp_path / "y").glob("uttr-*.pt")) and len(names) == 6
    assert all(len(n) == len("uttr-") + 32 + len(".pt") for n in names)
    mapping = json.loads((tmp_path / "x" / "mapping.json").read_text())
    assert mapping["id2speaker"] == {"0": "bob", "1": "amy", "2": "cyd"} and mapping["speaker2id"]["cyd"] == 2
    back = read_hw4(tmp_path / "x")
    assert back.train.class_names == ["bob", "amy", "cyd"]
    by_len = {int(n): int(y) for n, y in zip(back.train.lengths, back.train.labels)}
    assert by_len == {5: 1, 9: 1, 4: 0, 7: 2}
    i = back.train.lengths.tolist().index(9)
    assert torch.equal(back.train.utterance(i), train.utterance(1))
    assert back.test.labels.tolist() == [2, -1] and torch.equal(back.test.feats, test.feats)


# ---------------------------------------------------------------------------------- detection, zip


def test_detection_here_and_one_level_down(tmp_path):
    course_timit(tmp_path / "corpus" / "timit_11")
    course_libriphone(tmp_path / "corpus" / "libriphone")
    course_hw4(tmp_path / "corpus" / "speaker")
    for sub, fmt in (("timit_11", "timit_11"), ("libriphone", "libriphone"), ("speaker", "hw4")):
        assert detect_format(tmp_path / "corpus" / sub) == fmt
    assert detect_format(tmp_path / "corpus", kind="speaker") == "hw4"
    assert find_dataset(tmp_path / "corpus", kind="speaker")[1] == tmp_path / "corpus" / "speaker"
    expect_error(lambda: detect_format(tmp_path / "corpus"), "corpus", "several datasets")
    expect_error(lambda: load_dataset(tmp_path / "corpus" / "speaker", kind="phoneme"), "speaker", "not phoneme")
    (tmp_path / "empty").mkdir()
    expect_error(lambda: load_dataset(tmp_path / "empty"), "empty", "train_11.npy")
    expect_error(lambda: load_dataset(tmp_path / "missing"), "missing", "not found")


def test_loads_a_zip_of_a_course_folder(tmp_path):
    root = course_timit(tmp_path / "timit_11")
    with zipfile.ZipFile(tmp_path / "hw2.zip", "w") as zf:
        for p in root.iterdir():
            zf.write(p, f"timit_11/{p.name}")
    ds = load_dataset(tmp_path / "hw2.zip")
    assert ds.format == "timit_11" and ds.root == str(tmp_path / "hw2.zip")
    assert np.array_equal(
        ds.train.feats[5:9], np.load(root / "train_11.npy")[5:9]
    )  # temp folder gone, map still readable
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("timit_11/../../x.npy", b"x")
    expect_error(lambda: load_dataset(tmp_path / "evil.zip"), "evil.zip", "outside")


# -------------------------------------------------------------------------------------- bad input


def save(path, array):
    np.save(path, array)


TIMIT_BAD = [
    ("missing labels", lambda r: (r / "train_label_11.npy").unlink(), "train_label_11.npy", "not found"),
    ("1-D feats", lambda r: save(r / "train_11.npy", np.zeros(429, np.float32)), "train_11.npy", "2-D"),
    ("int feats", lambda r: save(r / "train_11.npy", np.zeros((120, 429), np.int32)), "train_11.npy", "int32"),
    (
        "wrong width",
        lambda r: save(r / "train_11.npy", np.zeros((120, 430), np.float32)),
        "train_11.npy",
        "430 columns",
    ),
    ("empty", lambda r: save(r / "train_11.npy", np.zeros((0, 429), np.float32)), "train_11.npy", "empty"),
    ("nan", lambda r: save(r / "test_11.npy", np.full((4, 429), np.nan, np.float32)), "test_11.npy", "NaN"),
    ("test width", lambda r: save(r / "test_11.npy", np.zeros((4, 39), np.float32)), "test_11.npy", "39 columns but"),
    ("length", lambda r: save(r / "train_label_11.npy", np.array(["1"] * 7, "<U2")), "train_label_11.npy", "7 labels"),
    (
        "range",
        lambda r: save(r / "train_label_11.npy", np.array(["39"] * 120, "<U2")),
        "train_label_11.npy",
        "label 39",
    ),
    (
        "not a number",
        lambda r: save(r / "train_label_11.npy", np.array(["a"] * 120, "<U2")),
        "train_label_11.npy",
        "'a'",
    ),
    ("float labels", lambda r: save(r / "train_label_11.npy", np.zeros(120)), "train_label_11.npy", "float64"),
    (
        "object labels",
        lambda r: np.save(r / "train_label_11.npy", np.array([1] * 120, object), allow_pickle=True),
        "train_label_11.npy",
        "object",
    ),
    ("dup classes", lambda r: (r / "classes.txt").write_text("a\na\n"), "classes.txt", "twice"),
    (
        "orphan test labels",
        lambda r: ((r / "test_11.npy").unlink(), save(r / "test_label_11.npy", np.array(["1"]))),
        "test_label_11.npy",
        "without",
    ),
]


@pytest.mark.parametrize("what, breaker, name, words", TIMIT_BAD, ids=[b[0] for b in TIMIT_BAD])
def test_timit11_bad_input(tmp_path, what, breaker, name, words):
    root = course_timit(tmp_path / "t")
    breaker(root)
    expect_error(lambda: load_dataset(root), name, words)


def _rewrite(path: Path, old: str, new: str):
    path.write_text(path.read_text().replace(old, new, 1))


LIBRI_BAD = [
    ("feature file missing", lambda r: (r / "feat/train/19-198-0000.pt").unlink(), "19-198-0000.pt", "train_split.txt"),
    (
        "duplicate id",
        lambda r: _rewrite(r / "train_split.txt", "19-198-0000", "19-198-0001"),
        "train_split.txt",
        "twice",
    ),
    ("empty split", lambda r: (r / "train_split.txt").write_text("\n"), "train_split.txt", "no utterances"),
    ("path in id", lambda r: _rewrite(r / "test_split.txt", "1272-128104-0000", "../../x"), "test_split.txt", "plain"),
    (
        "no labels",
        lambda r: _rewrite(r / "train_labels.txt", "26-495-0003", "26-495-9999"),
        "train_labels.txt",
        "26-495-0003",
    ),
    (
        "label count",
        lambda r: _rewrite(r / "train_labels.txt", "19-198-0000 ", "19-198-0000 1 "),
        "19-198-0000.pt",
        "10",
    ),
    (
        "label range",
        lambda r: _rewrite(r / "train_labels.txt", "19-198-0000 ", "19-198-0000 41 "),
        "train_labels.txt",
        "41",
    ),
    (
        "label text",
        lambda r: _rewrite(r / "train_labels.txt", "19-198-0000 ", "19-198-0000 x "),
        "train_labels.txt",
        "integers",
    ),
    ("wrong width", lambda r: torch.save(torch.zeros(9, 41), r / "feat/train/19-198-0000.pt"), "19-198-0000.pt", "41"),
    (
        "not a tensor",
        lambda r: torch.save({"x": 1}, r / "feat/test/1272-128104-0000.pt"),
        "1272-128104-0000.pt",
        "dict",
    ),
    ("binary labels", lambda r: (r / "train_labels.txt").write_bytes(b"\xff\xfe"), "train_labels.txt", "UTF-8"),
]


@pytest.mark.parametrize("what, breaker, name, words", LIBRI_BAD, ids=[b[0] for b in LIBRI_BAD])
def test_libriphone_bad_input(tmp_path, what, breaker, name, words):
    root = course_libriphone(tmp_path / "l")
    breaker(root)
    expect_error(lambda: load_dataset(root), name, words)


def _edit_json(path: Path, edit):
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _first(doc):
    return next(iter(doc["speakers"].values()))[0]


HW4_BAD = [
    ("mel_len", lambda r: _edit_json(r / "metadata.json", lambda d: _first(d).update(mel_len=99)), "uttr-", "mel_len"),
    (
        "huge mel_len",
        lambda r: _edit_json(r / "metadata.json", lambda d: _first(d).update(mel_len=10**15)),
        "uttr-",
        "more than the file holds",
    ),
    ("csv NUL", lambda r: (r / "test_labels.csv").write_bytes(b'Id,Category\n\x00x,"y'), "test_labels.csv", ""),
    (
        "unknown speaker",
        lambda r: _edit_json(r / "metadata.json", lambda d: d["speakers"].update(id9=[])),
        "metadata.json",
        "'id9'",
    ),
    (
        "int-like keys",
        lambda r: _edit_json(r / "mapping.json", lambda d: d.update(id2speaker={"1": "a", "2": "b"})),
        "mapping.json",
        "keys",
    ),
    (
        "disagree",
        lambda r: _edit_json(r / "mapping.json", lambda d: d["speaker2id"].update(id10001=2)),
        "mapping.json",
        "disagree",
    ),
    (
        "duplicate path",
        lambda r: _edit_json(r / "testdata.json", lambda d: d["utterances"].append(d["utterances"][0])),
        "testdata.json",
        "twice",
    ),
    ("missing file", lambda r: next(r.glob("uttr-*.pt")).unlink(), "uttr-", "not found"),
    (
        "width",
        lambda r: [_edit_json(r / f, lambda d: d.update(n_mels=80)) for f in ("metadata.json", "testdata.json")],
        "uttr-",
        "expected 80",
    ),
    ("n_mels differ", lambda r: _edit_json(r / "testdata.json", lambda d: d.update(n_mels=80)), "testdata.json", "80"),
    (
        "no utterances",
        lambda r: _edit_json(r / "metadata.json", lambda d: d.update(speakers={})),
        "metadata.json",
        "no utterances",
    ),
    (
        "bad entry",
        lambda r: _edit_json(r / "metadata.json", lambda d: _first(d).update(mel_len="12")),
        "metadata.json",
        "integer mel_len",
    ),
    (
        "escaping path",
        lambda r: _edit_json(r / "testdata.json", lambda d: d["utterances"][0].update(feature_path="../x.pt")),
        "testdata.json",
        "plain",
    ),
    ("broken json", lambda r: (r / "mapping.json").write_text("{"), "mapping.json", "JSON"),
    ("csv header", lambda r: (r / "test_labels.csv").write_text("Id,Speaker\n"), "test_labels.csv", "header"),
]


@pytest.mark.parametrize("what, breaker, name, words", HW4_BAD, ids=[b[0] for b in HW4_BAD])
def test_hw4_bad_input(tmp_path, what, breaker, name, words):
    root = course_hw4(tmp_path / "d")
    breaker(root)
    expect_error(lambda: load_dataset(root), name, words)


# ------------------------------------------------------------------------------ property-based

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 100) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def course_folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    return {
        "timit_11": course_timit(base / "t", n=20, m=5),
        "libriphone": course_libriphone(base / "l"),
        "hw4": course_hw4(base / "h"),
    }


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.sampled_from(
        [
            "t/train_label_11.npy",
            "t/train_11.npy",
            "t/classes.txt",
            "l/train_labels.txt",
            "l/test_split.txt",
            "h/mapping.json",
            "h/metadata.json",
            "h/testdata.json",
            "h/test_labels.csv",
        ]
    ),
    data=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()),
    keep=st.booleans(),
)
def test_readers_raise_only_hwmlerror(course_folders, target, data, keep):
    path = course_folders["timit_11"].parent / target
    original = path.read_bytes() if path.exists() else None
    path.write_bytes(original[: len(data)] + data if keep and original else data)
    try:
        load_dataset(path.parent)
    except HwmlError as e:
        assert "\n" not in str(e)
    finally:
        path.write_bytes(original) if original is not None else path.unlink()


@settings(max_examples=60, deadline=None)
@given(speakers=json_values, mapping=json_values)
def test_hw4_json_structure_fuzz(course_folders, speakers, mapping):
    root = course_folders["hw4"]
    saved = {n: (root / n).read_bytes() for n in ("metadata.json", "mapping.json")}
    try:
        (root / "metadata.json").write_text(json.dumps({"n_mels": 40, "speakers": speakers}))
        (root / "mapping.json").write_text(json.dumps(mapping))
        try:
            read_hw4(root, cache=False)
        except HwmlError:
            pass
    finally:
        for n, b in saved.items():
            (root / n).write_bytes(b)
