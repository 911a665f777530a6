"""Zips of course folders from strangers (`hwml.data.load_dataset`, the CLI, the app's upload
path): path traversal, absolute paths, symlinks, zip bombs, too many files, lying headers and
nested archives are refused before anything is written outside a fresh temporary folder, and
that folder is gone again afterwards. The whole filesystem neighbourhood is compared before and
after each refusal."""

from __future__ import annotations

import io
import os
import stat
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import assert_error, assert_refused, cli

import hwml.safeio
from hwml.data import load_dataset
from hwml.errors import HwmlError

ESCAPE = f"hwml_robustness_escape_{os.getpid()}.txt"
pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name")  # the duplicate-member zip, on purpose


def timit_members(n: int = 8) -> list[tuple[str, bytes]]:
    """A valid timit_11 folder as (name, bytes) members."""
    rng = np.random.default_rng(0)

    def npy(a):
        buf = io.BytesIO()
        np.save(buf, a)
        return buf.getvalue()

    return [
        ("timit_11/train_11.npy", npy(rng.standard_normal((n, 429)).astype(np.float32))),
        ("timit_11/train_label_11.npy", npy(np.array([str(i % 39) for i in range(n)], dtype="<U2"))),
        ("timit_11/test_11.npy", npy(rng.standard_normal((3, 429)).astype(np.float32))),
    ]


def build_zip(path: Path, members, compression=zipfile.ZIP_DEFLATED) -> Path:
    """members: (name, bytes) or (ZipInfo, bytes); names are written as given (no normalising)."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members:
            info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name)
            info.compress_type = compression
            zf.writestr(info, data)
    return path


def symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def lying_zip(path: Path) -> Path:
    """A stored member of 200 kB whose central directory claims 100 bytes."""
    build_zip(path, [*timit_members(), ("timit_11/notes.txt", b"x" * 200_000)], zipfile.ZIP_STORED)
    raw = bytearray(path.read_bytes())
    cd = raw.rfind(b"PK\x01\x02")  # the last central directory entry: notes.txt
    struct.pack_into("<I", raw, cd + 24, 100)  # uncompressed size
    path.write_bytes(bytes(raw))
    return path


def snapshot(*roots: Path) -> dict[str, int]:
    """Every path under the roots with its size (folders as -1)."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                out[os.path.join(dirpath, d)] = -1
            for f in filenames:
                p = os.path.join(dirpath, f)
                out[p] = os.lstat(p).st_size
    return out


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """tmp_path/zips (inputs), tmp_path/tmp (the temp dir), tmp_path/cwd (working dir),
    tmp_path/outside (where absolute paths and symlinks aim)."""
    for d in ("zips", "tmp", "cwd", "outside"):
        (tmp_path / d).mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.chdir(tmp_path / "cwd")
    yield tmp_path
    assert not (Path(tempfile.gettempdir()) / ESCAPE).exists()
    assert not Path("/tmp", ESCAPE).exists()


def hostile_zips(root: Path) -> dict[str, tuple[Path, str]]:
    """name -> (zip, words the refusal must contain)."""
    good = timit_members()
    outside = root / "outside"
    z = root / "zips"
    up = "../" * 12
    cases = {
        "dotdot": ([*good, ("../" + ESCAPE, b"pwned")], "outside"),
        "deep_dotdot": ([*good, ("timit_11/" + up + "tmp/" + ESCAPE, b"pwned")], "outside"),
        "backslash_dotdot": ([*good, ("timit_11\\..\\..\\" + ESCAPE, b"pwned")], "outside"),
        "absolute": ([*good, (str(outside / ESCAPE), b"pwned")], "absolute"),
        "windows_drive": ([*good, ("C:/" + ESCAPE, b"pwned")], "absolute"),
        "symlink": (
            [(symlink_info("timit_11/link"), str(outside).encode()), *good, ("timit_11/link/" + ESCAPE, b"pwned")],
            "symbolic link",
        ),
        "nested_zip": ([*good, ("timit_11/inner.zip", build_zip(z / "inner.zip", good).read_bytes())], "nested"),
        "nested_tar_gz": ([*good, ("timit_11/more.tar.gz", b"\x1f\x8b" + b"\0" * 64)], "nested"),
        "ratio_bomb": ([*good, ("timit_11/zeros.bin", bytes(64 * 2**20))], "zip bomb"),
        "duplicate_names": ([*good, good[0]], "twice"),
    }
    out = {name: (build_zip(z / f"{name}.zip", members), words) for name, (members, words) in cases.items()}
    out["lying_header"] = (lying_zip(z / "lying_header.zip"), "cannot unpack")
    out["not_a_zip"] = ((z / "not_a_zip.zip"), "not a valid zip")
    out["not_a_zip"][0].write_bytes(b"PK\x03\x04 but then garbage" * 10)
    return out


def test_load_dataset_refuses_hostile_zips_and_writes_nothing(sandbox):
    zips = hostile_zips(sandbox)
    watched = [sandbox / "tmp", sandbox / "cwd", sandbox / "outside", sandbox / "zips"]
    for name, (archive, words) in zips.items():
        before = snapshot(*watched)
        with pytest.raises(HwmlError) as e:
            load_dataset(archive)
        assert_error(e, archive.name, words)
        assert snapshot(*watched) == before, name  # not even an empty temp folder is left behind
        assert not list((sandbox / "outside").iterdir())


def test_a_good_zip_loads_and_leaves_nothing_behind(sandbox):
    archive = build_zip(sandbox / "zips" / "good.zip", timit_members())
    ds = load_dataset(archive)
    assert ds.format == "timit_11" and len(ds.train) == 8 and ds.root == str(archive)
    assert not list((sandbox / "tmp").iterdir())


@pytest.mark.parametrize(
    "limit, value, members, words",
    [
        ("MAX_ZIP_FILES", 20, [(f"timit_11/extra/{i}.txt", b"x") for i in range(30)], "over the limit of 20"),
        ("MAX_ZIP_BYTES", 2**20, [("timit_11/noise.bin", np.random.default_rng(0).bytes(2**21))], "over the 1.0 MiB"),
    ],
)
def test_file_count_and_size_limits(sandbox, monkeypatch, limit, value, members, words):
    archive = build_zip(sandbox / "zips" / "big.zip", [*timit_members(), *members])
    assert load_dataset(archive).format == "timit_11"  # fine under the default limits
    monkeypatch.setattr(hwml.safeio, limit, value)
    before = snapshot(sandbox / "tmp", sandbox / "cwd")
    with pytest.raises(HwmlError) as e:
        load_dataset(archive)
    assert_error(e, archive.name, words)
    assert snapshot(sandbox / "tmp", sandbox / "cwd") == before


def test_cli_refuses_hostile_zips_and_keeps_working(sandbox, capsys, phoneme_run, phoneme_data):
    zips = hostile_zips(sandbox)
    for name in ("dotdot", "symlink", "ratio_bomb", "lying_header"):
        archive, words = zips[name]
        for argv in (
            ("train", "phoneme", archive, "--out", sandbox / "run", "--max-steps", 1),
            ("predict", phoneme_run, archive, "--out", sandbox / "p.csv"),
        ):
            code, _, err = cli(capsys, *argv)
            assert_refused(code, err, archive, words)
    assert not (sandbox / "run").exists() and not (sandbox / "p.csv").exists()
    # the same process then predicts the test split of a good zip
    good = build_zip(
        sandbox / "zips" / "good.zip",
        [
            (f"libriphone/{p.relative_to(phoneme_data)}", p.read_bytes())
            for p in sorted(phoneme_data.rglob("*"))
            if p.is_file()
        ],
    )
    code, out, err = cli(capsys, "predict", phoneme_run, good, "--out", sandbox / "p.csv")
    assert code == 0, err
    assert (sandbox / "p.csv").read_text().startswith("Id,Class\n0,")


def test_app_upload_path_refuses_hostile_zips(sandbox):
    """The Train panel's "zip upload" source: `hwml.serve.sources.resolve_source` -> `_extract`."""
    from hwml.serve import sources, workspace

    ws = workspace.Workspace(sandbox / "runs", sandbox / "checkpoints", 10 * 2**20)
    zips = hostile_zips(sandbox)
    for name, (archive, words) in zips.items():
        before = snapshot(sandbox / "tmp", sandbox / "cwd", sandbox / "outside", sandbox / "zips")
        with pytest.raises(HwmlError) as e:
            sources.resolve_source(ws, "session-a", "phoneme", sources.SOURCE_ZIP, upload=str(archive))
        assert_error(e, archive.name, words)
        assert snapshot(sandbox / "tmp", sandbox / "cwd", sandbox / "outside", sandbox / "zips") == before, name
        # inside the runs root: at most fresh, empty upload folders of this session
        leftovers = [p for p in (sandbox / "runs").rglob("*") if p.is_file() or p.is_symlink()]
        assert leftovers == [], (name, leftovers)
    good = build_zip(sandbox / "zips" / "good.zip", timit_members())
    prepare = sources.resolve_source(ws, "session-a", "phoneme", sources.SOURCE_ZIP, upload=str(good))
    folder = prepare(lambda message: None)
    assert load_dataset(folder).format == "timit_11"
    assert (sandbox / "runs").resolve() in folder.resolve().parents
