"""Make assets/fonts/hwml-cjk.ttf: the Chinese characters of hwml's catalogues (hwml/i18n) cut from
WenQuanYi Micro Hei (Debian fonts-wqy-microhei, Apache-2.0), renamed so it never shadows the full
font, so the app's figures draw Chinese with nothing installed. Run it again after the catalogues
gain characters (tests/test_i18n.py says when): `python assets/make_font.py`. Needs the Debian
font installed and fontTools (a matplotlib dependency)."""

import json
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

HERE = Path(__file__).resolve().parent
SOURCE = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
OUT = HERE / "fonts" / "hwml-cjk.ttf"
FAMILY = "hwml CJK (WenQuanYi Micro Hei subset)"
EXTRA = "，。、；：？！「」『』（）《》〈〉…—～·“”‘’【】％＋－×÷→←↑↓≤≥"  # punctuation a later edit may add


def characters() -> str:
    chars = set(EXTRA)
    for lang in ("zh-TW", "zh-CN"):
        for text in json.loads((HERE.parent / "hwml" / "i18n" / f"{lang}.json").read_text(encoding="utf-8")).values():
            chars |= {c for c in text if ord(c) > 0x2000}
    return "".join(sorted(chars))


def main() -> None:
    options = subset.Options()
    options.font_number = 0
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    font = subset.load_font(str(SOURCE), options)
    sub = subset.Subsetter(options)
    sub.populate(text=characters())
    sub.subset(font)
    name = font["name"]
    for record in list(name.names):
        if record.nameID in (1, 3, 4, 6, 16, 17, 18):
            name.removeNames(nameID=record.nameID)
    for ids in ((3, 1, 0x409), (1, 0, 0)):
        name.setName(FAMILY, 1, *ids)
        name.setName("Regular", 2, *ids)
        name.setName("hwml CJK subset of WenQuanYi Micro Hei 0.2.0-beta", 3, *ids)
        name.setName(FAMILY, 4, *ids)
        name.setName("hwmlCJK-WenQuanYiMicroHeiSubset", 6, *ids)
    OUT.parent.mkdir(exist_ok=True)
    font.save(str(OUT))
    assert TTFont(str(OUT))["name"].getDebugName(1) == FAMILY
    print(f"{OUT}: {len(characters())} characters, {OUT.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
