"""Fixtures of the robustness suite: tiny course folders and tiny trained runs (session-wide)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robust_helpers import (PHONEME_SETTINGS, SPEAKER_OVERRIDES, parse_sets, write_phoneme_folder,
                            write_speaker_folder)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The 2 cores are shared (other tests, other workers): one intra-op thread is faster here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def phoneme_data(tmp_path_factory) -> Path:
    return write_phoneme_folder(tmp_path_factory.mktemp("rob-data") / "libriphone")


@pytest.fixture(scope="session")
def speaker_data(tmp_path_factory) -> Path:
    return write_speaker_folder(tmp_path_factory.mktemp("rob-data") / "hw4")


@pytest.fixture(scope="session")
def phoneme_run(tmp_path_factory, phoneme_data) -> Path:
    from hwml.workflow import train_run

    out = tmp_path_factory.mktemp("rob-runs") / "phoneme"
    train_run("phoneme", phoneme_data, out, preset="medium", overrides=parse_sets(PHONEME_SETTINGS),
              max_steps=20, seed=0)
    return out


@pytest.fixture(scope="session")
def speaker_run(tmp_path_factory, speaker_data) -> Path:
    from hwml.workflow import train_run

    out = tmp_path_factory.mktemp("rob-runs") / "speaker"
    train_run("speaker", speaker_data, out, preset="simple", overrides=dict(SPEAKER_OVERRIDES),
              max_steps=10, seed=0)
    return out
