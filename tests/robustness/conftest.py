"""Fixtures of the robustness suite: tiny course folders and tiny trained runs (session-wide)."""

from __future__ import annotations

from pathlib import Path

import pytest
from robust_helpers import PHONEME_SETTINGS, SPEAKER_OVERRIDES, parse_sets, write_phoneme_folder, write_speaker_folder


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """The 2 cores are shared (other tests, other workers): one intra-op thread is faster here."""


@pytest.fixture(scope="session")
def phoneme_data(tmp_path_factory) -> Path:
    return write_phoneme_folder(tmp_path_factory.mktemp("rob-data") / "libriphone")


@pytest.fixture(scope="session")
def speaker_data(tmp_path_factory) -> Path:
    return write_speaker_folder(tmp_path_factory.mktemp("rob-data") / "hw4")


def _tiny_run(tmp_path_factory, kind: str, data: Path, **settings) -> Path:
    from hwml.api import train_run

    out = tmp_path_factory.mktemp("rob-runs") / kind
    train_run(kind, data, out, seed=0, **settings)
    return out


@pytest.fixture(scope="session")
def phoneme_run(tmp_path_factory, phoneme_data) -> Path:
    return _tiny_run(
        tmp_path_factory, "phoneme", phoneme_data, preset="medium", overrides=parse_sets(PHONEME_SETTINGS), max_steps=20
    )


@pytest.fixture(scope="session")
def speaker_run(tmp_path_factory, speaker_data) -> Path:
    return _tiny_run(
        tmp_path_factory, "speaker", speaker_data, preset="simple", overrides=dict(SPEAKER_OVERRIDES), max_steps=10
    )
