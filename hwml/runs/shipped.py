"""`shipped:phoneme`, `shipped:speaker`: a RUN that names a shipped model, from any directory.

The app's run menus use the same keys (`hwml.serve.workspace`); the CLI resolves them here, so
`hwml predict shipped:phoneme clip.wav --out x.csv` works from an installed wheel as well as from
a clone. A checkout made without Git LFS holds small pointer files instead of the weights: that
is said in one line, not as a safetensors parse error.
"""

from __future__ import annotations

from pathlib import Path

from hwml import settings
from hwml.errors import HwmlError
from hwml.runs.folder import CONFIG, WEIGHTS

SHIPPED_PREFIX = "shipped:"
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


def resolve_run(run, writes: bool = False) -> Path:
    """A RUN argument as a folder: `shipped:<task>[/<name>]` -> the shipped models' folder
    (settings.checkpoints_dir()), anything else as given. writes=True (evaluate writes its
    confusion files into the run): a shipped model is refused, its folder is read-only."""
    text = str(run)
    if not text.startswith(SHIPPED_PREFIX):
        return Path(run)
    name = text[len(SHIPPED_PREFIX) :].strip("/")
    root = settings.checkpoints_dir()
    folder = root / name
    if writes:
        raise HwmlError(
            f"{text}: evaluate writes confusion files into the run folder, and a shipped model's is read-only: "
            f"copy it first (cp -r {folder} my_run) and evaluate the copy"
        )
    if not name or ".." in Path(name).parts or not (folder / CONFIG).is_file():
        known = ", ".join(f"{SHIPPED_PREFIX}{p.name}" for p in sorted(root.glob("*")) if (p / CONFIG).is_file())
        raise HwmlError(f"{text}: no such shipped model in {root} (there are: {known or 'none'})")
    weights = folder / WEIGHTS
    if weights.is_file():
        with weights.open("rb") as fh:
            if fh.read(len(LFS_POINTER)) == LFS_POINTER:
                raise HwmlError(
                    f"{weights}: a Git LFS pointer, not the weights: install git-lfs and run `git lfs pull` "
                    "(or install hwml from a wheel)"
                )
    return folder
