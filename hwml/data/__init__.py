"""Course data folders in, `Dataset` out: one loader for every source (course downloads, zips of
them, the built-in corpus, imported audio), with the format told by the files present."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from hwml.data.hw4 import read_hw4, write_hw4
from hwml.data.libriphone import read_libriphone, write_libriphone
from hwml.data.timit11 import read_timit11, write_timit11
from hwml.data.types import Dataset, FrameSet, UtteranceSet
from hwml.errors import HwmlError
from hwml.safeio import safe_extract_zip

__all__ = [
    "Dataset",
    "FrameSet",
    "UtteranceSet",
    "FORMAT_KIND",
    "detect_format",
    "find_dataset",
    "load_dataset",
    "read_hw4",
    "read_libriphone",
    "read_timit11",
    "write_hw4",
    "write_libriphone",
    "write_timit11",
]

FORMAT_KIND = {"timit_11": "phoneme", "libriphone": "phoneme", "hw4": "speaker"}
READERS = {"timit_11": read_timit11, "libriphone": read_libriphone, "hw4": read_hw4}
EXPECTED = (
    "expected train_11.npy + train_label_11.npy (HW2 timit_11), feat/ + train_split.txt + "
    "train_labels.txt (HW2 libriphone) or mapping.json + metadata.json + uttr-*.pt (HW4 Dataset)"
)


def _format_here(folder: Path) -> str | None:
    if (folder / "train_11.npy").is_file():
        return "timit_11"
    if (folder / "mapping.json").is_file() and (folder / "metadata.json").is_file():
        return "hw4"
    if (folder / "train_split.txt").is_file() and (folder / "feat").is_dir():
        return "libriphone"
    return None


def find_dataset(path, *, kind: str | None = None) -> tuple[str, Path]:
    """(format, folder) for `path` or, failing that, its one sub-folder holding a course dataset
    (of `kind` "phoneme"/"speaker" when given)."""
    path = Path(path)
    if not path.is_dir():
        raise HwmlError(f"{path}: {'not a folder' if path.exists() else 'not found'}")
    wanted = lambda fmt: fmt is not None and kind in (None, FORMAT_KIND[fmt])  # noqa: E731
    fmt = _format_here(path)
    if wanted(fmt):
        return fmt, path
    found = sorted((f, sub) for sub in path.iterdir() if sub.is_dir() and wanted(f := _format_here(sub)))
    if len(found) == 1:
        return found[0]
    if found:
        listing = ", ".join(f"{sub.name}/ ({f})" for f, sub in found)
        raise HwmlError(f"{path}: holds several datasets: {listing}; pass one of them")
    if fmt is not None:
        raise HwmlError(f"{path}: is a {fmt} ({FORMAT_KIND[fmt]}) dataset, not {kind}")
    raise HwmlError(f"{path}: not a course data folder: {EXPECTED}")


def detect_format(path, *, kind: str | None = None) -> str:
    """ "timit_11", "libriphone" or "hw4", from the files in `path` or one level down."""
    return find_dataset(path, kind=kind)[0]


def load_dataset(path, *, kind: str | None = None, mmap: bool = True, need_train: bool = True) -> Dataset:
    """Load a course data folder, or a .zip of one (vetted, unpacked to a temp folder that is gone
    again on return: timit_11 memory maps keep their unlinked files readable on POSIX).

    need_train=False (prediction): an HW4 folder with a test split may skip reading its training
    features (`train` is then None); other formats load whole (memory-mapped or small)."""
    hw4_options = {"need_train": need_train}
    path = Path(path)
    if path.is_file() and (path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)):
        tmp = Path(tempfile.mkdtemp(prefix="hwml-data-"))
        try:
            fmt, folder = find_dataset(safe_extract_zip(path, tmp / "x"), kind=kind)
            dataset = READERS[fmt](folder, mmap=mmap, **({**hw4_options, "cache": False} if fmt == "hw4" else {}))
        except HwmlError as e:  # name the zip, not the temp folder it was unpacked to
            raise HwmlError(str(e).replace(str(tmp / "x"), str(path))) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        dataset.root = str(path)
        dataset.info["unpacked_from_zip"] = True
        return dataset
    fmt, folder = find_dataset(path, kind=kind)
    return READERS[fmt](folder, mmap=mmap, **(hw4_options if fmt == "hw4" else {}))
