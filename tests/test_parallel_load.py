"""Big HW4 folders load with several processes (hwml.data.common.load_frames, workers > 1):
the same tensor as one process, and a bad file is the same one-line error."""

import pytest
import torch

from hwml.data import common
from hwml.data.hw4 import read_hw4, write_hw4
from hwml.data.types import UtteranceSet
from hwml.errors import HwmlError


def utterances(n=120, seed=0) -> UtteranceSet:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(5, 40, (n,), generator=gen)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)])
    return UtteranceSet(
        torch.randn(int(offsets[-1]), 40, generator=gen),
        offsets,
        [f"u{seed}-{i}" for i in range(n)],
        torch.arange(n) % 6,
        [f"s{i}" for i in range(6)],
    )


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "PARALLEL_MIN_FILES", 10)  # the pool for a small folder
    monkeypatch.setattr(common, "CHUNK_FILES", 16)  # several chunks, one short
    write_hw4(tmp_path / "hw4", utterances(), utterances(30, seed=1))
    return tmp_path / "hw4"


def test_processes_load_what_one_process_loads(folder, monkeypatch):
    monkeypatch.setenv("HWML_LOAD_WORKERS", "1")
    one = read_hw4(folder, cache=False)
    monkeypatch.setenv("HWML_LOAD_WORKERS", "2")
    pools, real = [], common._load_parallel
    monkeypatch.setattr(common, "_load_parallel", lambda *a: pools.append(a[5]) or real(*a))
    two = read_hw4(folder, cache=False)
    assert pools == [2, 2]  # train and test each went through a pool of 2 processes
    assert torch.equal(one.train.feats, two.train.feats) and torch.equal(one.test.feats, two.test.feats)
    assert torch.equal(one.train.offsets, two.train.offsets)
    assert torch.equal(one.train.feats, write_ordered(folder))


def write_ordered(folder):
    """The training features straight from the files, in metadata.json order."""
    import json

    meta = json.loads((folder / "metadata.json").read_text())
    files = [e["feature_path"] for entries in meta["speakers"].values() for e in entries]
    return torch.cat([torch.load(folder / f, weights_only=True) for f in files])


def test_the_cache_is_built_by_processes_too(folder, monkeypatch, tmp_path):
    monkeypatch.setenv("HWML_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HWML_LOAD_WORKERS", "2")
    cached = read_hw4(folder, cache=True)
    assert torch.equal(torch.as_tensor(cached.train.feats), write_ordered(folder))


def test_a_bad_file_in_a_worker_is_the_usual_one_line_error(folder, monkeypatch):
    import json

    meta = json.loads((folder / "metadata.json").read_text())
    victim = next(iter(meta["speakers"].values()))[-1]["feature_path"]
    torch.save({"not": "a tensor"}, folder / victim)
    monkeypatch.setenv("HWML_LOAD_WORKERS", "2")
    with pytest.raises(HwmlError, match=victim):
        read_hw4(folder, cache=False)


def test_a_bad_worker_count_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HWML_LOAD_WORKERS", "many")
    with pytest.raises(HwmlError, match="HWML_LOAD_WORKERS"):
        common.load_workers()
