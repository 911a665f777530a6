"""notebooks/hwml.ipynb runs from top to bottom (README: Run it in Colab or Kaggle), executed by
nbclient in a fresh kernel with QUICK_NOTEBOOK=1: 40 training steps per task and no app; it
builds its own small corpus in a temporary folder, so nothing of the repository is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "hwml.ipynb"


def test_the_notebook_trains_evaluates_and_predicts(tmp_path, monkeypatch):
    monkeypatch.setenv("QUICK_NOTEBOOK", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows the figures
    monkeypatch.setenv("HWML_CACHE", str(tmp_path / "cache"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()

    outputs = {i: c.get("outputs", []) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    text = "\n".join(o.get("text", "") for outs in outputs.values() for o in outs if o.get("output_type") == "stream")
    assert "hwml 0.1.0 from " + str(REPO / "hwml") in text
    images = sum("image/png" in o.get("data", {}) for outs in outputs.values() for o in outs)
    assert images >= 3  # two training-curve figures and the confusion matrix
    assert "runs/phoneme: accuracy" in text and "runs/speaker: accuracy" in text
    assert "shipped:phoneme sil" in text  # the shipped model's phones of the clip
    assert "QUICK_NOTEBOOK=1: the app is not started" in text
    for run in ("phoneme", "speaker"):
        assert (tmp_path / "runs" / run / "model.safetensors").is_file()
    assert (tmp_path / "phones.csv").read_text().startswith("file,frame,time,phone,prob")
    assert not [o for outs in outputs.values() for o in outs if o.get("output_type") == "error"]
