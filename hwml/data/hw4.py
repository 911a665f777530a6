"""HW4 "Dataset" folder: one (T, 40) log-mel tensor per utterance, indexed by JSON.

Course files: `mapping.json` {"speaker2id": {name: id}, "id2speaker": {"0": name}} (string keys),
`metadata.json` {"n_mels": 40, "speakers": {name: [{"feature_path", "mel_len"}, ...]}},
`testdata.json` {"n_mels": 40, "utterances": [...]}, `uttr-<hex>.pt` files. hwml sidecar:
`test_labels.csv` (`Id,Category` = feature_path, speaker name) for a labelled held-out part.

The course set is ~56k files and several GB: frames go straight into one tensor preallocated from
the `mel_len` sums. Large sets are cached as one .npy under $HWML_CACHE (default ~/.cache/hwml),
keyed by the folder and every file's size and mtime, and mapped copy-on-write on later loads.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import uuid
from pathlib import Path

import numpy as np
import torch

from hwml import settings
from hwml.data.common import check_label_range, check_plain_name, load_frames, offsets_from_lengths
from hwml.data.types import Dataset, UtteranceSet
from hwml.errors import HwmlError
from hwml.safeio import (
    load_npy,
    read_json,
    read_text,
    save_pt_atomic,
    write_csv_atomic,
    write_json_atomic,
)

CACHE_MIN_UTTS = 5000
TEST_LABELS = "test_labels.csv"
_COURSE_NAME = re.compile(r"uttr-[0-9a-f]{32}\.pt")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _read_mapping(path: Path) -> tuple[list[str], dict[str, int]]:
    mapping = read_json(path)
    if (
        not isinstance(mapping, dict)
        or not isinstance(mapping.get("id2speaker"), dict)
        or not isinstance(mapping.get("speaker2id"), dict)
    ):
        raise HwmlError(f'{path}: expected {{"speaker2id": {{...}}, "id2speaker": {{...}}}}')
    id2speaker, speaker2id = mapping["id2speaker"], mapping["speaker2id"]
    n = len(id2speaker)
    if n == 0:
        raise HwmlError(f"{path}: id2speaker lists no speakers")
    if set(id2speaker) != {str(i) for i in range(n)}:
        raise HwmlError(f'{path}: id2speaker keys must be the strings "0".."{n - 1}"')
    names = [id2speaker[str(i)] for i in range(n)]
    if not all(isinstance(s, str) and s for s in names):
        raise HwmlError(f"{path}: speaker names must be non-empty strings")
    if len(set(names)) != n:
        raise HwmlError(f"{path}: id2speaker names a speaker twice")
    if speaker2id != {s: i for i, s in enumerate(names)}:
        raise HwmlError(f"{path}: speaker2id and id2speaker disagree")
    return names, speaker2id


def _utterances(entries, path: Path, where: str) -> list[tuple[str, int]]:
    if not isinstance(entries, list):
        raise HwmlError(f"{path}: {where} must be a list of utterances")
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("feature_path"), str) or not _is_int(e.get("mel_len")):
            raise HwmlError(f"{path}: {where}[{i}] needs a string feature_path and an integer mel_len")
        if e["mel_len"] < 1:
            raise HwmlError(f"{path}: {where}[{i}]: mel_len {e['mel_len']} must be at least 1")
        out.append((check_plain_name(e["feature_path"], path, f"{where}[{i}]"), e["mel_len"]))
    return out


def _n_mels(doc: dict, path: Path) -> int | None:
    n = doc.get("n_mels")
    if n is not None and (not _is_int(n) or n < 1):
        raise HwmlError(f"{path}: n_mels must be a positive integer, got {n!r}")
    return n


def _read_test_labels(path: Path, test_ids: list[str], speaker2id: dict[str, int]) -> torch.Tensor:
    """Labels for the test utterances named in `test_labels.csv`; -1 for any it leaves out."""
    try:
        rows = list(csv.reader(io.StringIO(read_text(path))))
    except csv.Error as e:
        raise HwmlError(f"{path}: not a valid CSV file ({e})") from None
    if not rows or [c.strip() for c in rows[0]] != ["Id", "Category"]:
        raise HwmlError(f"{path}: expected the header Id,Category")
    index = {u: i for i, u in enumerate(test_ids)}
    labels = torch.full((len(test_ids),), -1, dtype=torch.int64)
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2:
            raise HwmlError(f"{path}: line {line}: expected 2 fields (Id,Category), got {len(row)}")
        utt, speaker = row[0].strip(), row[1].strip()
        if utt not in index:
            raise HwmlError(f"{path}: line {line}: {utt!r} is not an utterance of testdata.json")
        if speaker not in speaker2id:
            raise HwmlError(f"{path}: line {line}: unknown speaker {speaker!r} (not in mapping.json)")
        if labels[index[utt]] >= 0:
            raise HwmlError(f"{path}: line {line}: {utt!r} is labelled twice")
        labels[index[utt]] = speaker2id[speaker]
    return labels


def _cache_folder(root: Path) -> Path:
    """Under $HWML_CACHE; a folder inside the app's runs root (a visitor's upload) keeps its cache
    beside it instead, so the app's disk budget counts it and it goes with the upload."""
    root = root.resolve()
    if settings.runs_dir().resolve() in root.parents:
        return root.parent / f".hwml-cache-{root.name}"
    return settings.cache_dir() / "hw4" / hashlib.sha256(str(root).encode()).hexdigest()[:16]


_SOURCES = ("mel_len in metadata.json", "mel_len in testdata.json")


def _load_parts(
    root: Path, parts: list[list[tuple[str, int]]], n_mels: int | None, cache: bool, need_train: bool = True
) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
    """Each part's (feats, offsets), through the on-disk cache when asked and possible.

    need_train=False (prediction on the test part): the training features are read only if a
    fresh cache has them anyway; otherwise their entry is None and only the test files are read.
    """
    if cache:
        cached = _load_cached(root, parts, n_mels, build=need_train)
        if cached is not None:
            return cached
    return [
        load_frames([root / f for f, _ in p], width=n_mels, lengths=[n for _, n in p], lengths_from=src)
        if need_train or i > 0
        else None
        for i, (p, src) in enumerate(zip(parts, _SOURCES))
    ]


def _load_cached(
    root: Path, parts, n_mels: int | None, build: bool = True
) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """Feats mapped copy-on-write from the cache, (re)built when any file changed (unless not
    `build`); None when the cache cannot be written (read-only home, too little disk: a full
    disk under a memory map would kill the process, so the space is reserved up front)."""
    if n_mels is None:
        n_mels = load_frames([root / parts[0][0][0]])[0].shape[1]
    files = [f for f in ("mapping.json", "metadata.json", "testdata.json", TEST_LABELS) if (root / f).exists()]
    files += [f for p in parts for f, _ in p]
    stamps = [(st.st_size, st.st_mtime_ns) for st in (os.stat(root / f) for f in files)]
    key = hashlib.sha256(json.dumps([str(root.resolve()), files, stamps, n_mels]).encode()).hexdigest()
    folder = _cache_folder(root)
    shapes = [(sum(n for _, n in p), n_mels) for p in parts]
    try:
        hit = json.loads((folder / "key.json").read_text())["key"] == key
    except (OSError, ValueError, KeyError, TypeError):
        hit = False
    if not hit and not build:
        return None
    if not hit:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "key.json").unlink(missing_ok=True)
            if shutil.disk_usage(folder).free < 1.1 * sum(a * b * 4 for a, b in shapes) + 2**28:
                return None
        except OSError:
            return None
        for i, (p, shape) in enumerate(zip(parts, shapes)):
            tmp = folder / f".part{i}.npy.{uuid.uuid4().hex}.tmp"
            try:
                mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
                with open(tmp, "r+b") as f:
                    os.posix_fallocate(f.fileno(), 0, os.path.getsize(tmp))
            except (OSError, AttributeError):
                tmp.unlink(missing_ok=True)
                return None
            try:
                load_frames(
                    [root / f for f, _ in p],
                    width=n_mels,
                    lengths=[n for _, n in p],
                    lengths_from=_SOURCES[i],
                    out=torch.from_numpy(mm),
                )
                mm.flush()
                del mm
                os.replace(tmp, folder / f"part{i}.npy")
            finally:
                tmp.unlink(missing_ok=True)
        write_json_atomic(folder / "key.json", {"key": key, "root": str(root.resolve())}, indent=None)
    out = []
    for i, (p, shape) in enumerate(zip(parts, shapes)):
        feats = load_npy(folder / f"part{i}.npy", mmap="c")
        if feats.shape != shape or feats.dtype != np.float32:
            raise HwmlError(f"{folder / f'part{i}.npy'}: cache does not match the data; delete {folder}")
        out.append((torch.from_numpy(feats), offsets_from_lengths([n for _, n in p])))
    return out


def read_hw4(root, *, mmap: bool = True, cache: bool | None = None, need_train: bool = True) -> Dataset:
    """cache: None = use the on-disk cache for sets of CACHE_MIN_UTTS+ utterances when mmap is on.

    need_train=False: a folder with a test split may come back with `train=None` (its index is
    still checked), so predicting on the course's 8k test utterances never reads the 56k
    training files."""
    root = Path(root)
    names, speaker2id = _read_mapping(root / "mapping.json")
    meta_path = root / "metadata.json"
    meta = read_json(meta_path)
    if not isinstance(meta, dict) or not isinstance(meta.get("speakers"), dict):
        raise HwmlError(f'{meta_path}: expected {{"n_mels": 40, "speakers": {{...}}}}')
    n_mels = _n_mels(meta, meta_path)
    train, labels = [], []
    for speaker, entries in meta["speakers"].items():
        if speaker not in speaker2id:
            raise HwmlError(f"{meta_path}: speaker {speaker!r} is not in mapping.json")
        utts = _utterances(entries, meta_path, f"speakers[{speaker!r}]")
        train += utts
        labels += [speaker2id[speaker]] * len(utts)
    if not train:
        raise HwmlError(f"{meta_path}: lists no utterances")
    parts = [train]
    test_path = root / "testdata.json"
    if test_path.exists():
        doc = read_json(test_path)
        if not isinstance(doc, dict):
            raise HwmlError(f'{test_path}: expected {{"n_mels": 40, "utterances": [...]}}')
        test_mels = _n_mels(doc, test_path)
        if None not in (n_mels, test_mels) and test_mels != n_mels:
            raise HwmlError(f"{test_path}: n_mels {test_mels} differs from metadata.json's {n_mels}")
        n_mels = n_mels or test_mels
        test = _utterances(doc.get("utterances"), test_path, "utterances")
        if not test:
            raise HwmlError(f"{test_path}: lists no utterances")
        parts.append(test)
    elif (root / TEST_LABELS).exists():
        raise HwmlError(f"{root / TEST_LABELS}: held-out labels without testdata.json")
    seen = set()
    for where, part in zip((meta_path, test_path), parts):
        for f, _ in part:
            if f in seen:
                raise HwmlError(f"{where}: {f!r} is listed twice")
            seen.add(f)
            if not (root / f).is_file():
                raise HwmlError(f"{root / f}: file not found (listed in {where.name})")
    if cache is None:
        cache = mmap and len(seen) >= CACHE_MIN_UTTS
    from hwml.machine import single_thread

    with single_thread():  # per file: small checks on which two busy cores' threads only wait
        loaded = _load_parts(root, parts, n_mels, cache, need_train=need_train or len(parts) == 1)
    ids = [[f for f, _ in p] for p in parts]
    train_set = (
        None if loaded[0] is None else UtteranceSet(*loaded[0], ids[0], torch.tensor(labels, dtype=torch.int64), names)
    )
    test_set = None
    if len(parts) == 2:
        test_labels = None
        if (root / TEST_LABELS).exists():
            test_labels = _read_test_labels(root / TEST_LABELS, ids[1], speaker2id)
        test_set = UtteranceSet(*loaded[1], ids[1], test_labels, names)
    return Dataset("speaker", "hw4", str(root), train_set, test_set)


def feature_paths(utt_ids: list[str] | None, n: int) -> list[str]:
    """Course-style `uttr-<32 hex>.pt` names: kept if already so, else a hash of the id
    (deterministic), or random when there are no ids."""
    if utt_ids is None:
        return [f"uttr-{uuid.uuid4().hex}.pt" for _ in range(n)]
    return [
        u if _COURSE_NAME.fullmatch(u) else f"uttr-{hashlib.blake2b(u.encode(), digest_size=16).hexdigest()}.pt"
        for u in utt_ids
    ]


def _write_feats(root: Path, utts: UtteranceSet, paths: list[str]) -> list[dict]:
    bounds = utts.offsets.tolist()
    entries = []
    for f, s, e in zip(paths, bounds[:-1], bounds[1:]):
        if e <= s:
            raise ValueError("write_hw4: every utterance needs at least one frame")
        save_pt_atomic(root / f, utts.feats[s:e], fsync=False)
        entries.append({"feature_path": f, "mel_len": e - s})
    return entries


def write_hw4(root, train: UtteranceSet, test: UtteranceSet | None = None) -> Path:
    """Write the course's HW4 Dataset folder (JSON index last); `test_labels.csv` when test has labels."""
    root = Path(root)
    names = list(train.class_names)
    if train.labels is None or len(train.labels) != len(train):
        raise ValueError("write_hw4: the training UtteranceSet needs one label per utterance")
    check_label_range(train.labels, len(names), "write_hw4")
    if test is not None and test.labels is not None:
        check_label_range(test.labels[test.labels >= 0], len(names), "write_hw4")
    n_mels = int(train.feats.shape[1])
    train_paths = feature_paths(train.utt_ids, len(train))
    test_paths = feature_paths(test.utt_ids, len(test)) if test is not None else []
    if len(set(train_paths + test_paths)) != len(train_paths) + len(test_paths):
        raise ValueError("write_hw4: duplicate utterance ids")
    root.mkdir(parents=True, exist_ok=True)
    for name in ("metadata.json", "testdata.json", TEST_LABELS):
        (root / name).unlink(missing_ok=True)
    speakers: dict[str, list[dict]] = {s: [] for s in names}
    for entry, label in zip(_write_feats(root, train, train_paths), train.labels.tolist()):
        speakers[names[label]].append(entry)
    write_json_atomic(
        root / "mapping.json",
        {"speaker2id": {s: i for i, s in enumerate(names)}, "id2speaker": {str(i): s for i, s in enumerate(names)}},
    )
    if test is not None:
        if int(test.feats.shape[1]) != n_mels:
            raise ValueError("write_hw4: train and test n_mels differ")
        entries = _write_feats(root, test, test_paths)
        if test.labels is not None:
            write_csv_atomic(
                root / TEST_LABELS,
                ("Id", "Category"),
                [(p, names[y]) for p, y in zip(test_paths, test.labels.tolist()) if y >= 0],
            )
        write_json_atomic(root / "testdata.json", {"n_mels": n_mels, "utterances": entries})
    write_json_atomic(root / "metadata.json", {"n_mels": n_mels, "speakers": {s: u for s, u in speakers.items() if u}})
    return root
