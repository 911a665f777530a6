"""What a course folder holds, file by file: the Learn tab's data formats section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hwml.errors import HwmlError
from hwml.i18n import t

if TYPE_CHECKING:
    pass


def describe_course_folder(folder, max_files: int = 8, lang: str = "en") -> list[dict]:
    """What a course folder holds: each file kind with its shape, dtype and a peek at the content."""
    from hwml.safeio import load_npy, load_tensor_file

    folder = Path(folder)
    if not folder.is_dir():
        raise HwmlError(f"{folder}: no such folder")
    rows: list[dict] = []
    shown_pt = 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        rel = str(path.relative_to(folder))
        suffix = path.suffix.lower()
        if suffix == ".npy":
            arr = load_npy(path, mmap=True)
            peek = (
                ", ".join(map(str, arr[:5].tolist()))
                if arr.ndim == 1
                else t("formats.row0", lang, values=np.round(arr[0, :4], 3).tolist())
            )
            rows.append(
                {"file": rel, "holds": t("formats.array", lang, shape=tuple(arr.shape), dtype=arr.dtype), "peek": peek}
            )
        elif suffix == ".pt":
            if shown_pt >= 2:
                continue
            shown_pt += 1
            x = load_tensor_file(path)
            rows.append(
                {
                    "file": rel,
                    "holds": t("formats.tensor", lang, shape=tuple(x.shape), dtype=x.dtype),
                    "peek": t("formats.frame0", lang, values=[round(v, 3) for v in x[0, :4].tolist()]),
                }
            )
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            rows.append(
                {
                    "file": rel,
                    "holds": t("formats.json", lang, keys=", ".join(list(data)[:5])),
                    "peek": _json_peek(data),
                }
            )
        elif suffix in (".txt", ".csv"):
            with path.open(encoding="utf-8", errors="replace") as fh:
                first = fh.readline().strip()
            rows.append(
                {"file": rel, "holds": t("formats.text", lang), "peek": first[:90] + ("..." if len(first) > 90 else "")}
            )
        if len(rows) >= max_files:
            break
    pt_total = sum(1 for _ in folder.rglob("*.pt"))
    if pt_total > shown_pt:
        rows.append({"file": t("formats.more_pt", lang, n=pt_total - shown_pt), "holds": "", "peek": ""})
    return rows


def _json_peek(data) -> str:
    text = json.dumps(data)
    return text[:90] + ("..." if len(text) > 90 else "")
