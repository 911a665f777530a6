"""`python -m hwml merge`: course folders of one format -> one folder, classes matched by name."""

import subprocess
import sys

import pytest
import torch

from hwml.data import load_dataset, write_hw4, write_libriphone
from hwml.data.merge import merge_folders
from hwml.data.types import FrameSet, UtteranceSet
from hwml.errors import HwmlError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _frames(names, ids, seed):
    gen = torch.Generator().manual_seed(seed)
    lengths = [5 + i for i in range(len(ids))]
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(torch.tensor(lengths), 0)])
    n = int(offsets[-1])
    return FrameSet(
        torch.randn(n, 39, generator=gen), torch.randint(len(names), (n,), generator=gen), offsets, ids, names
    )


def test_libriphone_merge_keeps_every_frame_with_its_class_name(tmp_path):
    a = _frames(["sil", "aa", "iy"], ["spk1_u1", "spk1_u2"], 0)
    b = _frames(["iy", "sil", "ng"], ["x9_u1"], 1)
    write_libriphone(tmp_path / "a", a, _frames(["sil", "aa", "iy"], ["spk2_u1"], 2))
    write_libriphone(tmp_path / "b", b, _frames(["iy", "sil", "ng"], ["x8_u1"], 3))
    summary = merge_folders([f"so={tmp_path / 'a'}", f"tts={tmp_path / 'b'}"], tmp_path / "m")
    merged = load_dataset(tmp_path / "m")
    assert summary["classes"] == 4 and merged.train.class_names == ["sil", "aa", "iy", "ng"]
    assert merged.train.utt_ids == ["so_spk1_u1", "so_spk1_u2", "tts_x9_u1"]
    assert merged.test.utt_ids == ["so_spk2_u1", "tts_x8_u1"]
    n_a = len(a)
    assert torch.equal(merged.train.feats[:n_a], a.feats) and torch.equal(merged.train.feats[n_a:], b.feats)
    names = merged.train.class_names
    assert [names[i] for i in merged.train.labels[:n_a]] == [a.class_names[i] for i in a.labels]
    assert [names[i] for i in merged.train.labels[n_a:]] == [b.class_names[i] for i in b.labels]


def test_hw4_merge_unions_speakers_by_name(tmp_path):
    def utts(names, labels, seed):
        gen = torch.Generator().manual_seed(seed)
        offsets = torch.arange(len(labels) + 1) * 6
        return UtteranceSet(
            torch.randn(int(offsets[-1]), 40, generator=gen),
            offsets,
            [f"u{seed}{i}" for i in range(len(labels))],
            torch.tensor(labels),
            names,
        )

    write_hw4(tmp_path / "a", utts(["ann", "bob"], [0, 1, 1], 0))
    write_hw4(tmp_path / "b", utts(["cid", "ann"], [0, 1], 1))
    merge_folders([str(tmp_path / "a"), str(tmp_path / "b")], tmp_path / "m")
    merged = load_dataset(tmp_path / "m").train
    assert merged.class_names == ["ann", "bob", "cid"]
    assert sorted(merged.class_names[i] for i in merged.labels) == ["ann", "ann", "bob", "bob", "cid"]


def test_bad_merges_are_one_line_errors_and_write_nothing(tmp_path):
    write_libriphone(tmp_path / "a", _frames(["sil", "aa"], ["s_u1"], 0))
    write_hw4(
        tmp_path / "h",
        UtteranceSet(torch.randn(12, 40), torch.tensor([0, 6, 12]), ["p", "q"], torch.tensor([0, 1]), ["ann", "bob"]),
    )
    with pytest.raises(HwmlError, match="must be libriphone"):
        merge_folders([str(tmp_path / "a"), str(tmp_path / "h")], tmp_path / "m")
    with pytest.raises(HwmlError, match="at least two"):
        merge_folders([str(tmp_path / "a")], tmp_path / "m")
    with pytest.raises(HwmlError, match="must differ"):
        merge_folders([f"x={tmp_path / 'a'}", f"x={tmp_path / 'a'}"], tmp_path / "m")
    assert not (tmp_path / "m").exists()
    proc = subprocess.run(
        [sys.executable, "-m", "hwml", "merge", str(tmp_path / "m"), str(tmp_path / "a"), f"bad/name={tmp_path / 'a'}"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "bad/name" in proc.stderr
    assert not (tmp_path / "m").exists()
