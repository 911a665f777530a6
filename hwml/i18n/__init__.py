"""The app's words in three languages: en, zh-TW (Taiwan, the course's own usage) and zh-CN.

Every text lives in `hwml/i18n/<lang>.json` under a key (`glossary.json` fixes the terms both
Chinese catalogues use); code names keys only. `t(key, lang, **values)` gives the text for
server-side lines (status, errors, figures); the page's static texts go to Gradio's `gr.I18n`
and are translated in the browser (`hwml.ui.lang`). This module imports nothing heavy, so the
CLI and the package may use it too.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
LANGS = ("en", "zh-TW", "zh-CN")
DEFAULT = "en"
LANG_NAMES = {"en": "English", "zh-TW": "繁體中文", "zh-CN": "简体中文"}


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """The key -> text table of one language (read once)."""
    if lang not in LANGS:
        raise KeyError(f"no catalogue for {lang!r}: one of {', '.join(LANGS)}")
    return json.loads((HERE / f"{lang}.json").read_text(encoding="utf-8"))


@functools.cache
def glossary() -> dict[str, dict[str, str]]:
    """English term -> {"zh-TW": ..., "zh-CN": ...}: the words both Chinese catalogues follow."""
    return json.loads((HERE / "glossary.json").read_text(encoding="utf-8"))["terms"]


def normalise(lang: str | None) -> str:
    """One of LANGS for any language tag: zh-TW/zh-HK/zh-Hant -> zh-TW, other zh -> zh-CN, else en."""
    tag = (lang or "").strip().replace("_", "-").lower()
    if tag.startswith("zh"):
        return "zh-TW" if any(x in tag for x in ("-tw", "-hk", "-mo", "hant")) else "zh-CN"
    return DEFAULT


def from_accept_language(header: str | None) -> str:
    """The best of LANGS for an HTTP Accept-Language header (highest q first; en by default)."""
    ranked = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        if not tag:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag))
    for _, _, tag in sorted(ranked):
        if tag.lower().startswith(("zh", "en")):
            return normalise(tag)
    return DEFAULT


def t(key: str, lang: str | None = DEFAULT, **values) -> str:
    """The text of `key` in `lang` (English where that catalogue lacks it), with `values`
    filled in by str.format. An unknown key raises KeyError: a typo fails the tests."""
    lang = lang if lang in LANGS else DEFAULT
    text = catalogue(lang).get(key)
    if text is None:
        text = catalogue(DEFAULT)[key]
    return text.format(**values) if values else text


__all__ = ["LANGS", "DEFAULT", "LANG_NAMES", "catalogue", "glossary", "normalise", "from_accept_language", "t"]
