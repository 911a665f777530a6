"""hwml.safeio: safe loading of user files, atomic writes, vetted zip extraction."""

import os
import pickle
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwml.errors import HwmlError
from hwml.safeio import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    load_npy,
    load_tensor_file,
    read_json,
    safe_extract_zip,
    save_npy_atomic,
    save_pt_atomic,
    write_json_atomic,
)


def one_line_error(excinfo, name: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and name in msg, msg
    return msg


# ------------------------------------------------------------------------------- load_tensor_file


def test_loads_plain_pt_and_npy(tmp_path):
    x = torch.randn(7, 39, generator=torch.Generator().manual_seed(0))
    torch.save(x, tmp_path / "a.pt")
    torch.save(x, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(torch.nn.Parameter(x), tmp_path / "param.pt")
    np.save(tmp_path / "a.npy", x.numpy())
    for name in ("a.pt", "legacy.pt", "param.pt", "a.npy"):
        y = load_tensor_file(tmp_path / name, width=39)
        assert type(y) is torch.Tensor and y.dtype == torch.float32 and y.is_contiguous()
        assert torch.equal(y, x)


def test_float16_and_float64_become_float32(tmp_path):
    x = torch.randn(4, 3, dtype=torch.float64)
    torch.save(x, tmp_path / "d.pt")
    np.save(tmp_path / "h.npy", x.numpy().astype(np.float16))
    assert load_tensor_file(tmp_path / "d.pt").dtype == torch.float32
    assert torch.allclose(load_tensor_file(tmp_path / "h.npy"), x.float(), atol=1e-2)


def test_slice_of_big_storage_is_compacted(tmp_path):
    big = torch.randn(1000, 40)
    torch.save(big[:3], tmp_path / "view.pt")  # torch.save keeps the whole storage
    y = load_tensor_file(tmp_path / "view.pt")
    assert y.shape == (3, 40) and y.untyped_storage().nbytes() == 3 * 40 * 4


class Payload:
    """Unpickling this would create a marker file: proof of code execution."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"x": torch.zeros(2, 2), "evil": Payload(marker)}, tmp_path / "evil.pt")
    with open(tmp_path / "evil.npy", "wb") as f:  # a raw pickle under a .npy name
        pickle.dump(Payload(marker), f)
    for name in ("evil.pt", "evil.npy"):
        with pytest.raises(HwmlError) as e:
            load_tensor_file(tmp_path / name)
        one_line_error(e, name)
    with pytest.raises(HwmlError):
        load_npy(tmp_path / "evil.npy")
    assert not marker.exists()


@pytest.mark.parametrize(
    "obj, words",
    [
        ({"a": torch.zeros(2, 2)}, "dict"),
        ([torch.zeros(2, 2)], "list"),
        (3, "int"),
        (torch.zeros(2, 2).to_sparse(), "sparse"),
        (torch.zeros(2, 2, dtype=torch.complex64), "complex"),
    ],
)
@pytest.mark.filterwarnings("ignore:Validating sparse tensor invariants")
def test_refuses_anything_but_a_plain_tensor(tmp_path, obj, words):
    torch.save(obj, tmp_path / "x.pt")
    with pytest.raises(HwmlError, match=words):
        load_tensor_file(tmp_path / "x.pt")


@pytest.mark.parametrize(
    "array, words",
    [
        (np.zeros(5, np.float32), "2-D"),
        (np.zeros((2, 3, 4), np.float32), "2-D"),
        (np.zeros((0, 39), np.float32), "empty"),
        (np.zeros((3, 39), np.int64), "int64"),
        (np.zeros((3, 39), bool), "bool"),
        (np.zeros((3, 39), np.complex64), "complex64"),
        (np.pad(np.array([[np.nan]], np.float32), ((0, 1), (0, 38))), "NaN"),
        (np.pad(np.array([[-np.inf]], np.float32), ((1, 0), (5, 33))), "NaN or infinite"),
        (np.zeros((3, 41), np.float32), "41 feature columns, expected 39"),
    ],
)
def test_bad_matrices(tmp_path, array, words):
    for suffix in (".npy", ".pt"):
        path = tmp_path / f"m{suffix}"
        np.save(path, array) if suffix == ".npy" else torch.save(torch.from_numpy(array), path)
        with pytest.raises(HwmlError, match=words) as e:
            load_tensor_file(path, width=39)
        one_line_error(e, path.name)


def test_object_array_and_npz_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(HwmlError, match="object"):
        load_npy(tmp_path / "obj.npy")
    np.savez(tmp_path / "z.npy", a=np.zeros(3))
    os.replace(tmp_path / "z.npy.npz", tmp_path / "z.npy")
    with pytest.raises(HwmlError, match="not a .npy file"):
        load_tensor_file(tmp_path / "z.npy")


def test_npy_header_that_lies_about_its_size(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((10, 4), np.float32))
    data = (tmp_path / "a.npy").read_bytes().replace(b"(10, 4)", b"(99, 4)")  # 99 rows declared, 10 stored
    (tmp_path / "a.npy").write_bytes(data)
    for mmap in (False, True):
        with pytest.raises(HwmlError, match="truncated"):
            load_npy(tmp_path / "a.npy", mmap=mmap)


def test_missing_unsupported_and_too_big(tmp_path):
    with pytest.raises(HwmlError, match="not found"):
        load_tensor_file(tmp_path / "nope.pt")
    (tmp_path / "a.txt").write_text("1 2 3")
    with pytest.raises(HwmlError, match="unsupported"):
        load_tensor_file(tmp_path / "a.txt")
    np.save(tmp_path / "big.npy", np.zeros((100, 39), np.float32))
    with pytest.raises(HwmlError, match="over the 0 MB limit"):
        load_tensor_file(tmp_path / "big.npy", max_bytes=1000)


def test_load_npy_mmap_modes(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "a.npy", a)
    ro = load_npy(tmp_path / "a.npy", mmap=True)
    assert isinstance(ro, np.memmap) and not ro.flags.writeable
    cow = load_npy(tmp_path / "a.npy", mmap="c")
    cow[0, 0] = 99  # private page: the file stays as it was
    del cow
    assert np.array_equal(np.load(tmp_path / "a.npy"), a)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=600),
    suffix=st.sampled_from([".pt", ".npy"]),
    prefix=st.sampled_from([b"", b"\x93NUMPY\x01\x00", b"PK\x03\x04", b"\x80\x02"]),
)
def test_no_bytes_raise_anything_but_hwmlerror(tmp_path, data, suffix, prefix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(prefix + data)
    try:
        load_tensor_file(path)
    except HwmlError:
        pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 2000), flip=st.integers(0, 2000))
def test_damaged_real_files_raise_only_hwmlerror(tmp_path, cut, flip):
    torch.save(torch.randn(5, 39, generator=torch.Generator().manual_seed(1)), tmp_path / "ok.pt")
    np.save(tmp_path / "ok.npy", np.ones((5, 39), np.float32))
    for name in ("ok.pt", "ok.npy"):
        data = bytearray((tmp_path / name).read_bytes())
        data[flip % len(data)] ^= 0xFF
        (tmp_path / f"bad{Path(name).suffix}").write_bytes(bytes(data[: len(data) - cut % len(data)]))
        try:
            load_tensor_file(tmp_path / f"bad{Path(name).suffix}")
        except HwmlError:
            pass


# ---------------------------------------------------------------------------------- atomic writes


def test_atomic_writers_round_trip(tmp_path):
    write_json_atomic(tmp_path / "a" / "c.json", {"k": [1, 2], "name": "é"})
    assert read_json(tmp_path / "a" / "c.json") == {"k": [1, 2], "name": "é"}
    atomic_write_text(tmp_path / "t.txt", "hi\n")
    assert (tmp_path / "t.txt").read_text() == "hi\n"
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    big = torch.randn(1000, 40)
    save_pt_atomic(tmp_path / "s.pt", big[:2])
    assert (tmp_path / "s.pt").stat().st_size < 2000  # the slice, not its 160 kB storage
    assert torch.equal(load_tensor_file(tmp_path / "s.pt"), big[:2])
    save_npy_atomic(tmp_path / "n.npy", np.array(["0", "12"], dtype="<U2"))
    assert np.load(tmp_path / "n.npy").dtype == np.dtype("<U2")
    assert stat.S_IMODE((tmp_path / "n.npy").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b.bin", "n.npy", "s.pt", "t.txt"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise RuntimeError("killed mid-write")
    with pytest.raises(ValueError):  # np.save refuses object arrays halfway through
        save_npy_atomic(target, np.array([{}], dtype=object))
    assert read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]  # no temp files left behind


def test_unwritable_folder_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(HwmlError, match="cannot write"):
        write_json_atomic(tmp_path / "file" / "sub" / "c.json", {})


def test_atomic_path_keeps_suffix_for_format_sniffing_writers(tmp_path):
    with atomic_path(tmp_path / "plot.png") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png"
        tmp.write_bytes(b"png")
    assert (tmp_path / "plot.png").read_bytes() == b"png"


# ------------------------------------------------------------------------------------------- zips


def make_zip(path, members, *, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for m in members:
            if isinstance(m, zipfile.ZipInfo):
                zf.writestr(m, b"target")
            else:
                zf.writestr(m[0], m[1])
    return path


def test_extracts_and_returns_lone_top_folder(tmp_path):
    z = make_zip(
        tmp_path / "d.zip",
        [("timit_11/train_11.npy", b"a"), ("timit_11/sub/x.txt", b"b"), ("__MACOSX/timit_11/._train_11.npy", b"junk")],
    )
    top = safe_extract_zip(z, tmp_path / "out")
    assert top == tmp_path / "out" / "timit_11"
    assert (top / "train_11.npy").read_bytes() == b"a" and (top / "sub" / "x.txt").read_bytes() == b"b"
    assert not (tmp_path / "out" / "__MACOSX").exists()


def symlink_member():
    info = zipfile.ZipInfo("d/link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    "members, kwargs, words",
    [
        ([("d/../../evil.txt", b"x")], {}, r"outside"),
        ([("/etc/evil.txt", b"x")], {}, "absolute"),
        ([("C:/evil.txt", b"x")], {}, "absolute"),
        ([("d\\..\\evil.txt", b"x")], {}, "outside"),
        ([symlink_member()], {}, "symbolic link"),
        ([("d/inner.zip", b"PK\x03\x04")], {}, "nested archive"),
        ([("d/bomb.npy", b"\0" * (4 * 2**20))], {}, "zip bomb"),
        ([("d/a", b"1" * 1000), ("d/b", b"2" * 1000)], {"max_bytes": 1500}, "over the"),
        ([(f"d/{i}", b"x") for i in range(5)], {"max_files": 4}, "5 files, over the limit of 4"),
        ([("d/a", b"1"), ("d/a", b"2")], {}, "twice"),
    ],
)
def test_refused_zips_write_nothing(tmp_path, members, kwargs, words):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        z = make_zip(tmp_path / "bad.zip", members)
    with pytest.raises(HwmlError, match=words) as e:
        safe_extract_zip(z, tmp_path / "out", **kwargs)
    one_line_error(e, "bad.zip")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip"]


def test_not_a_zip(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"hello")
    with pytest.raises(HwmlError, match="not a valid zip"):
        safe_extract_zip(tmp_path / "x.zip", tmp_path / "out")
