"""Praat TextGrids of phone segments, through praatio: written for Predict's download (`hwml
predict --textgrid`, the app's TextGrid file) and read as phone labels by `hwml import phoneme`
(a Montreal Forced Aligner output, or any TextGrid with a phone tier).

Segments are (start s, end s, label) as everywhere in hwml (`hwml.audio.frames.label_segments`).
Writing gives every tier the whole span from 0 to the recording's end (gaps become empty
intervals, as Praat draws them); reading returns a tier's intervals with its gaps as empty labels,
so a reader sees the whole recording.
"""

from __future__ import annotations

from pathlib import Path

from hwml.errors import HwmlError

PHONE_TIER_NAMES = ("phones", "phone")  # matched case-insensitively; MFA names its tier "phones"


def write_textgrid(path, tiers: dict[str, list], duration: float, *, fsync: bool = True) -> Path:
    """A TextGrid (Praat's long text format) with one interval tier per `tiers` item, in order;
    written atomically. It ends at `duration` or at the last interval's end, whichever is later;
    zero-length intervals are left out."""
    from praatio import textgrid

    from hwml.safeio import atomic_path

    path = Path(path)
    end = round(max([float(duration)] + [float(b) for segs in tiers.values() for _, b, _ in segs]), 6)
    tg = textgrid.Textgrid(0.0, end)
    for name, segments in tiers.items():
        entries = [(round(float(a), 6), round(float(b), 6), str(label)) for a, b, label in segments]
        tg.addTier(textgrid.IntervalTier(name, [e for e in entries if e[1] > e[0]], 0.0, end))
    with atomic_path(path, fsync=fsync) as tmp:
        tg.save(str(tmp), format="long_textgrid", includeBlankSpaces=True, reportingMode="silence")
    return path


def read_phone_tier(path) -> tuple[list[tuple[float, float, str]], float]:
    """(the phone tier's intervals in time order, gaps included with label "", the grid's end s).

    The tier is the one named `phones` (or `phone`, any case), else the only interval tier.
    Anything praatio cannot parse, or a grid without such a tier, is one HwmlError line."""
    from praatio import textgrid

    path = Path(path)
    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=True, duplicateNamesMode="rename")
    except Exception as e:  # praatio raises IndexError, ValueError, ParsingError, ... on bad files
        detail = str(e).strip().splitlines()[0][:80] if str(e).strip() else type(e).__name__
        raise HwmlError(f"{path}: not a readable Praat TextGrid ({detail})") from None
    interval_tiers = [name for name in tg.tierNames if isinstance(tg.getTier(name), textgrid.IntervalTier)]
    named = [name for name in interval_tiers if name.strip().lower() in PHONE_TIER_NAMES]
    if named:
        tier = tg.getTier(named[0])
    elif len(interval_tiers) == 1:
        tier = tg.getTier(interval_tiers[0])
    else:
        raise HwmlError(
            f"{path}: no interval tier named 'phones' among its tiers "
            f"({', '.join(repr(n) for n in tg.tierNames) or 'none'})"
        )
    intervals = sorted((float(e.start), float(e.end), str(e.label)) for e in tier.entries)
    if not intervals:
        raise HwmlError(f"{path}: its phone tier {tier.name!r} has no intervals")
    return intervals, float(tg.maxTimestamp)
