"""The one place where hwml opens files it did not write, and writes files others will read.

Loading: user files may come from strangers (a classroom Space), so `.pt` goes only through
`torch.load(weights_only=True)` and must hold a plain tensor, `.npy` only through
`np.load(allow_pickle=False)` after its header was checked against the file size, and zips are
vetted member by member before anything is unpacked.

Writing: every output goes to a temp file in the same folder, is fsynced and then `os.replace`d,
so a crash, a full disk or a kill leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import stat
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from hwml import settings
from hwml.errors import HwmlError

MAX_FEATURE_FILE_BYTES = settings.max_feature_file_bytes()
MAX_ZIP_FILES = settings.max_zip_files()
MAX_ZIP_BYTES = settings.max_zip_bytes()
MAX_ZIP_RATIO = 200  # deflate tops out near 1000:1; real feature files compress about 1-20:1


def _fail(path, problem: str) -> HwmlError:
    return HwmlError(f"{path}: {problem}")


def _short(exc: BaseException) -> str:
    """One informative line of an exception (torch's weights_only errors run to a paragraph)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    boiler = ("Weights only load failed", "Check the documentation", "Please file an issue")
    useful = [ln for ln in lines if not ln.startswith(boiler)] or lines or [type(exc).__name__]
    return useful[0][:160]


FEATURE_LIMIT = "for one feature file (set HWML_MAX_FEATURE_FILE_BYTES to raise it)"
JSON_LIMIT = "for a JSON file (HWML_MAX_JSON_MB)"
TEXT_LIMIT = "for a text file"


def _check_size(path: Path, max_bytes: int | None, limit: str = FEATURE_LIMIT) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _fail(path, "file not found") from None
    except OSError as e:
        raise _fail(path, f"cannot read ({e.strerror})") from None
    if not path.is_file():
        raise _fail(path, "not a regular file")
    if max_bytes is not None and size > max_bytes:
        raise _fail(
            path,
            f"file is {size / 2**20:.0f} MB, over the {max_bytes / 2**20:.0f} MB limit {limit}: refused unread",
        )
    return size


# ---------------------------------------------------------------------------------------- loading


def check_matrix(x: torch.Tensor, path, *, width: int | None = None) -> torch.Tensor:
    """Enforce the feature-matrix contract: 2-D, float, finite, >= 1 row; returns contiguous float32."""
    if x.ndim != 2:
        raise _fail(path, f"expected a 2-D (frames, features) array, got shape {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise _fail(path, f"dtype {str(x.dtype).removeprefix('torch.')}, expected float features")
    if x.shape[0] < 1:
        raise _fail(path, f"empty: shape {tuple(x.shape)} has no frames")
    if width is not None and x.shape[1] != width:
        raise _fail(path, f"has {x.shape[1]} feature columns, expected {width}")
    x = x.to(torch.float32).contiguous()
    if not bool(torch.isfinite(x).all()):
        raise _fail(path, "contains NaN or infinite values")
    return x


FEATURE_SUFFIXES = (".pt", ".pth", ".npy")  # feature files load_tensor_file reads


def load_tensor_file(path, *, width: int | None = None, max_bytes: int | None = MAX_FEATURE_FILE_BYTES) -> torch.Tensor:
    """A (frames, features) float32 tensor from a `.pt` (plain tensor only) or `.npy` file."""
    path = Path(path)
    _check_size(path, max_bytes)
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        try:
            with warnings.catch_warnings():  # torch warns (several lines) about odd pickle protocols
                warnings.simplefilter("ignore")
                x = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as e:  # any failure to unpickle safely is the file's fault
            raise _fail(path, f"not a plain tensor file ({_short(e)})") from None
        if not isinstance(x, torch.Tensor):
            raise _fail(path, f"holds a {type(x).__name__}, expected a plain tensor")
        if x.layout != torch.strided or x.is_quantized or x.device.type != "cpu":
            raise _fail(path, "holds a sparse, quantized or non-CPU tensor, expected a plain tensor")
        if x.dtype.is_complex:
            raise _fail(path, f"dtype {str(x.dtype).removeprefix('torch.')}, expected float features")
        x = x.detach()
        if x.untyped_storage().nbytes() > x.numel() * x.element_size():
            x = x.clone()  # a view into a bigger saved storage: keep only what is used
    elif suffix == ".npy":
        a = load_npy(path, max_bytes=None)
        if a.dtype.kind != "f":
            raise _fail(path, f"dtype {a.dtype}, expected float features")
        # torch takes native byte order only: a big-endian file ('>f4') is converted, not refused
        x = torch.from_numpy(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")))
    else:
        raise _fail(path, "unsupported feature file type, expected .pt or .npy")
    return check_matrix(x, path, width=width)


def _npy_header(path: Path, size: int) -> tuple[tuple, bool, np.dtype]:
    """Parse and vet the .npy header before numpy allocates anything it declares."""
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise _fail(path, "not a .npy file (pickled or another format)")
            f.seek(0)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise _fail(path, f"unsupported .npy version {version}")
            data_start = f.tell()
    except HwmlError:
        raise
    except Exception as e:
        raise _fail(path, f"not a valid .npy file ({_short(e)})") from None
    if dtype.hasobject:
        raise _fail(path, "holds Python objects (object array), refused: save numeric or string arrays")
    need = math.prod(shape) * dtype.itemsize
    if size - data_start < need:
        raise _fail(path, f"truncated: header says {shape} {dtype} but the file is too short")
    return shape, fortran, dtype


def load_npy(path, *, mmap: bool | str = False, max_bytes: int | None = MAX_FEATURE_FILE_BYTES) -> np.ndarray:
    """`np.load` without pickles. mmap=True maps the file read-only (nothing is read up front);
    mmap="c" maps it copy-on-write, so in-place edits stay private instead of crashing."""
    path = Path(path)
    size = _check_size(path, None if mmap else max_bytes)
    _npy_header(path, size)
    try:
        return np.load(path, allow_pickle=False, mmap_mode=("r" if mmap is True else mmap) or None)
    except Exception as e:
        raise _fail(path, f"not a valid .npy file ({_short(e)})") from None


def read_text(path, *, max_bytes: int = 256 * 2**20, limit: str = TEXT_LIMIT) -> str:
    """A UTF-8 text file (a BOM is dropped, as spreadsheet programs on Windows add one); refused
    by its size before a byte is read when over max_bytes."""
    path = Path(path)
    _check_size(path, max_bytes, limit)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _fail(path, f"not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise _fail(path, f"cannot read ({e.strerror or e})") from None


def read_json(path, *, max_bytes: int | None = None):
    """A JSON file (a dataset's index, an enrolment file), refused by its size before reading when
    over max_bytes (default `HWML_MAX_JSON_MB`): json.loads of a huge file takes many times its
    size in memory."""
    max_bytes = settings.max_json_bytes() if max_bytes is None else max_bytes
    try:
        return json.loads(read_text(path, max_bytes=max_bytes, limit=JSON_LIMIT))
    except json.JSONDecodeError as e:
        raise _fail(path, f"not valid JSON (line {e.lineno}: {e.msg})") from None
    except ValueError as e:  # e.g. an integer with more digits than Python will parse
        raise _fail(path, f"not valid JSON ({_short(e)})") from None
    except RecursionError:
        raise _fail(path, "JSON nested too deeply") from None


# ---------------------------------------------------------------------------------------- writing


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened or fsynced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temp path beside `path` (same suffix, so format-sniffing writers work); on success
    fsync it and os.replace it over `path`, on failure remove it and leave `path` as it was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
    except OSError as e:
        raise _fail(path, f"cannot write ({e.strerror or e})") from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
        os.chmod(tmp, mode)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if fsync:
            _fsync_dir(path.parent)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):
            raise _fail(path, f"cannot write ({e.strerror or e})") from None
        raise


def atomic_write_bytes(path, data: bytes, *, fsync: bool = True) -> Path:
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path, text: str, *, fsync: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def write_json_atomic(path, obj, *, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def csv_text(header, rows) -> str:
    """A CSV as text: the header row, then the rows (`\\n` line ends, as the course's files)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_csv_atomic(path, header, rows, *, fsync: bool = True) -> Path:
    """csv_text(header, rows), written atomically (every CSV hwml writes goes through here)."""
    return atomic_write_text(path, csv_text(header, rows), fsync=fsync)


def save_pt_atomic(path, tensor: torch.Tensor, *, fsync: bool = True) -> Path:
    """torch.save of a plain, compact CPU tensor (a slice would otherwise drag its whole storage along)."""
    tensor = tensor.detach().to("cpu").contiguous().clone()
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, "wb") as f:
        torch.save(tensor, f)  # a file object: the archive is named "archive", not the temp file (reproducible bytes)
    return Path(path)


def write_folder_atomic(out, write) -> Path:
    """Write a whole folder under a temporary name beside `out`, then rename it to `out` (which
    must be absent or empty): a crash half-way leaves no half-written data folder."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HwmlError(f"{out}: already exists and is not an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.writing-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write(tmp)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def save_npy_atomic(path, array, *, fsync: bool = True) -> Path:
    array = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asanyarray(array)
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
    return Path(path)


# ------------------------------------------------------------------------------------------- zips

_SKIP_MEMBER = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$)")
_NESTED_ARCHIVE = (".zip", ".tar", ".tgz", ".tar.gz", ".7z", ".rar", ".gz", ".bz2", ".xz")


def _vet_member(zip_path: Path, info: zipfile.ZipInfo) -> str:
    """The member's safe relative name, or HwmlError naming the member and why it is refused."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise _fail(zip_path, f"member {info.filename!r} has an absolute path, refused")
    if ".." in name.split("/"):
        raise _fail(zip_path, f"member {info.filename!r} points outside the folder ('..'), refused")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise _fail(zip_path, f"member {info.filename!r} is a symbolic link, refused")
    if name.lower().endswith(_NESTED_ARCHIVE):
        raise _fail(zip_path, f"member {info.filename!r} is a nested archive, refused: zip the folder itself")
    if info.flag_bits & 0x1:
        raise _fail(zip_path, f"member {info.filename!r} is encrypted")
    if not info.is_dir() and info.file_size > 2**20 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
        raise _fail(
            zip_path,
            f"member {info.filename!r} expands {info.file_size // max(info.compress_size, 1)}:1, refused as a zip bomb",
        )
    return name


def safe_extract_zip(zip_path, dest, *, max_files: int | None = None, max_bytes: int | None = None) -> Path:
    """Unpack a zip of a data folder into `dest` (must be new or empty) after vetting every member;
    return the folder holding the files (descending through a lone top folder like `timit_11/`).
    Limits default to MAX_ZIP_FILES / MAX_ZIP_BYTES (env HWML_MAX_ZIP_FILES / HWML_MAX_ZIP_BYTES)."""
    zip_path, dest = Path(zip_path), Path(dest)
    max_files = MAX_ZIP_FILES if max_files is None else max_files
    max_bytes = MAX_ZIP_BYTES if max_bytes is None else max_bytes
    _check_size(zip_path, None)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise _fail(zip_path, f"not a valid zip file ({_short(e)})") from None
    with zf:
        infos = [i for i in zf.infolist() if not _SKIP_MEMBER.search(i.filename.replace("\\", "/"))]
        if len(infos) > max_files:
            raise _fail(zip_path, f"holds {len(infos)} files, over the limit of {max_files}")
        names = [_vet_member(zip_path, i) for i in infos]
        total = sum(i.file_size for i in infos)
        if total > max_bytes:
            size = lambda n: f"{n / 2**30:.1f} GiB" if max_bytes >= 2**30 else f"{n / 2**20:.1f} MiB"  # noqa: E731
            raise _fail(zip_path, f"unpacks to {size(total)}, over the {size(max_bytes)} limit")
        stripped = [n.rstrip("/") for n in names]
        if len(set(stripped)) != len(stripped):
            raise _fail(zip_path, "holds the same member name twice, refused")
        if not any(not i.is_dir() for i in infos):
            raise _fail(zip_path, "holds no files")
        if dest.exists() and any(dest.iterdir()):
            raise _fail(dest, "extraction folder is not empty")
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        written = 0
        try:
            for info, name in zip(infos, names):
                target = (root / name).resolve()
                if target != root and root not in target.parents:
                    raise _fail(zip_path, f"member {info.filename!r} points outside the folder, refused")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as out:
                    left = info.file_size
                    while chunk := src.read(min(2**20, left + 1)):
                        left -= len(chunk)
                        written += len(chunk)
                        if left < 0 or written > max_bytes:  # the header lied about the size
                            raise _fail(zip_path, f"member {info.filename!r} unpacks past its declared size, refused")
                        out.write(chunk)
        except HwmlError:
            _empty_folder(dest)
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
            _empty_folder(dest)
            raise _fail(zip_path, f"cannot unpack ({_short(e)})") from None
    top = dest
    while True:
        entries = [p for p in top.iterdir() if p.name not in ("__MACOSX", ".DS_Store", "Thumbs.db")]
        if len(entries) != 1 or not entries[0].is_dir():
            return top
        top = entries[0]


def _empty_folder(folder: Path) -> None:
    for p in folder.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
