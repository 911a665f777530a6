"""The catalogues stay complete (hwml/i18n): every key in every language with the same
placeholders, every key the code names exists, every key exists because code uses it, each
Chinese catalogue in its own script and words (glossary.json), and what the server writes
(figures included) follows the session's language. Fast: no browser, no training."""

from __future__ import annotations

import ast
import re
import string
import warnings
from pathlib import Path

import pytest

from hwml.i18n import LANGS, catalogue, from_accept_language, glossary, normalise, t

REPO = Path(__file__).resolve().parent.parent
CODE = sorted((REPO / "hwml").rglob("*.py")) + [REPO / "app.py"]
KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[A-Za-z0-9_]+)+$")
KEY_FUNCTIONS = {"t": 0, "L": 0, "tr": 1, "ui_error": 1, "localized_tab": 1}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def code_strings():
    """(constant strings, f-string patterns as regexes, keys passed to t/L/tr/ui_error) of all hwml code."""
    constants, patterns, called = set(), [], []
    for path in CODE:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                constants.add(node.value)
            elif isinstance(node, ast.JoinedStr):
                parts = [re.escape(v.value) if isinstance(v, ast.Constant) else r"[A-Za-z0-9_\-]+" for v in node.values]
                patterns.append(re.compile("^" + "".join(parts) + "$"))
            elif isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                pos = KEY_FUNCTIONS.get(name)
                if (
                    pos is not None
                    and len(node.args) > pos
                    and isinstance(node.args[pos], ast.Constant)
                    and isinstance(node.args[pos].value, str)
                ):
                    called.append((path.name, node.args[pos].value))
    return constants, patterns, called


def test_every_language_has_every_key_with_the_same_placeholders():
    en = catalogue("en")
    assert len(en) > 300
    for lang in LANGS:
        cat = catalogue(lang)
        assert set(cat) == set(en), (lang, sorted(set(en) ^ set(cat))[:10])
        for key, text in cat.items():
            assert text.strip(), (lang, key)
            assert placeholders(text) == placeholders(en[key]), (lang, key)


def test_every_key_the_code_names_is_in_the_catalogue():
    en = catalogue("en")
    namespaces = {k.split(".")[0] for k in en}
    constants, _, called = code_strings()
    missing = [(f, k) for f, k in called if k not in en]
    assert not missing, missing
    # keys kept in lists and dicts (table headers, choices): any key-shaped string of a catalogue namespace
    files = ("json", "txt", "csv", "pt", "npy", "png", "flac", "wav", "safetensors", "zip", "py", "md")
    stray = sorted(
        s
        for s in constants
        if KEY.match(s)
        and s.split(".")[0] in namespaces - {"common"}
        and s.rsplit(".", 1)[-1] not in files
        and s not in en
    )
    assert not stray, stray


def test_every_catalogue_key_is_used_by_the_code():
    constants, patterns, _ = code_strings()
    unused = [k for k in catalogue("en") if k not in constants and not any(p.match(k) for p in patterns)]
    assert not unused, unused


def test_a_key_missing_from_a_catalogue_fails_loudly():
    with pytest.raises(KeyError):
        t("train.no_such_key", "zh-TW")


# Words and characters that betray the other variant (glossary.json says which word each uses).
MAINLAND_IN_TW = [
    "數據",
    "程序",
    "幀",
    "說話人",
    "文件夾",
    "音頻",
    "默認",
    "內存",
    "信息",
    "視頻",
    "質量",
    "菜單",
    "鏈接",
]
TAIWAN_IN_CN = ["资料", "程式", "音框", "语者", "档案", "预设值", "记忆体", "讯息", "伺服器", "视窗", "萤幕", "滑鼠"]
SIMPLIFIED_ONLY = set("这个们说数据帧为对于时间还进样设击类验测练预输变应话识别语机学习")
TRADITIONAL_ONLY = set("這個們說數據幀為對於時間還進樣設擊類驗測練預輸變應話識別語機學習")


@pytest.mark.parametrize(
    "lang,foreign_words,foreign_chars",
    [("zh-TW", MAINLAND_IN_TW, SIMPLIFIED_ONLY), ("zh-CN", TAIWAN_IN_CN, TRADITIONAL_ONLY)],
)
def test_each_chinese_catalogue_keeps_to_its_own_variant(lang, foreign_words, foreign_chars):
    for key, text in catalogue(lang).items():
        assert not [w for w in foreign_words if w in text], (lang, key, text)
        assert not set(text) & foreign_chars, (lang, key, sorted(set(text) & foreign_chars))


def test_catalogues_use_the_glossary_terms():
    terms = glossary()
    assert {"phoneme classification", "confusion matrix", "frame", "speaker", "spectrogram"} <= set(terms)
    tw, cn = catalogue("zh-TW"), catalogue("zh-CN")
    for term, forms in terms.items():
        # where the two variants differ, neither catalogue uses the other's form
        if forms["zh-TW"] != forms["zh-CN"]:
            for other in forms["zh-CN"].split("／"):
                assert not any(other in v for v in tw.values()) or other in forms["zh-TW"], (term, other)
    for key, want in (
        ("eval.heatmap", "混淆矩陣"),
        ("tab.phoneme", "音素分類"),
        ("tab.speaker", "語者辨識"),
        ("unit.frames", "音框"),
        ("fig.mel_bin", "梅爾"),
    ):
        assert want in tw[key], key
    for key, want in (("eval.heatmap", "混淆矩阵"), ("tab.speaker", "说话人"), ("unit.frames", "帧")):
        assert want in cn[key], key
    # technical tokens stay as they are
    for key in ("tab.phoneme", "tab.speaker", "fig.mfcc_title"):
        for token in re.findall(r"HW\d|MFCC", catalogue("en")[key]):
            assert token in tw[key] and token in cn[key], (key, token)


def test_language_choice_from_tags_and_headers():
    assert normalise("zh-Hant-HK") == "zh-TW" and normalise("zh_TW") == "zh-TW" and normalise("zh-Hans") == "zh-CN"
    assert normalise("fr") == "en" and normalise(None) == "en"
    assert from_accept_language("zh-TW,zh;q=0.9,en-US;q=0.8") == "zh-TW"
    assert from_accept_language("fr-FR,zh-CN;q=0.8,en;q=0.9") == "en"  # highest q wins among ours
    assert from_accept_language("de-DE,zh;q=0.5") == "zh-CN"
    assert from_accept_language("") == "en" and from_accept_language(None) == "en"


def test_session_language_follows_the_switch_then_the_header():
    from types import SimpleNamespace

    from hwml.ui.lang import forget, lang_of, remember

    request = SimpleNamespace(session_hash="s-i18n", headers={"accept-language": "zh-CN,zh;q=0.9"})
    assert lang_of(request) == "zh-CN"
    assert remember("zh-TW", request) == "zh-TW" and lang_of(request) == "zh-TW"
    forget(request)
    assert lang_of(request) == "zh-CN"
    assert lang_of(None) == "en"


def test_server_lines_follow_the_language():
    from hwml.serve.who_is_speaking import classes_description, threshold_words

    config = {"class_names": [f"s{i}" for i in range(5)], "classes_description": "Five made-up speakers."}
    assert classes_description(config) == "Five made-up speakers."
    assert "5 位語者" in classes_description(config, "zh-TW")
    assert "5 位说话人" in classes_description(config, "zh-CN")
    info = {"threshold": 0.43, "calibrated": True, "eer": 0.05, "n_trials": 1200}
    assert threshold_words(info) == "0.43 (calibrated: equal error rate 5.0% over 1,200 validation pairs)"
    assert threshold_words(info, "zh-TW") == "0.43（已校準：等錯誤率 5.0%，根據 1,200 組驗證配對）"


def test_pitfall_demos_speak_the_session_language():
    from hwml.lessons.pitfalls import PITFALLS, run_pitfall_demo

    assert len(PITFALLS) == 10 and PITFALLS[3].title == "Padding without masks"
    en, tw = run_pitfall_demo(4), run_pitfall_demo(4, lang="zh-TW")
    assert "with a length mask it does not move" in en.headline
    assert "遮罩" in tw.headline and "池化方式" in tw.rows[0]
    assert [list(r.values())[1:] for r in en.rows] == [list(r.values())[1:] for r in tw.rows]  # same numbers


def test_figures_draw_chinese_with_the_bundled_font(monkeypatch):
    """Every character of both Chinese catalogues has its glyph in assets/fonts (no system font
    needed): matplotlib warns "Glyph ... missing" otherwise (then run assets/make_font.py)."""
    import matplotlib
    import matplotlib.pyplot as plt

    from hwml.ui import figures

    bundled = [f for f in figures.FONT_FAMILIES if f.startswith("hwml CJK")]
    assert bundled, figures.FONT_FAMILIES
    monkeypatch.setitem(matplotlib.rcParams, "font.family", ["DejaVu Sans", *bundled])
    for lang in ("zh-TW", "zh-CN"):
        # figure titles are built from many keys: check every character of the catalogue, 60 a line
        chars = "".join(sorted({c for text in catalogue(lang).values() for c in text if not c.isspace()}))
        fig, ax = plt.subplots(figsize=(4, 3))
        for i in range(0, len(chars), 60):
            ax.text(0, i, chars[i : i + 60])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fig.canvas.draw()
        plt.close(fig)
        fig = figures.score_scale(0.7, 0.5, True, lang)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fig.canvas.draw()
        assert figures.t("fig.same_speaker", lang) in [x.get_text() for x in fig.axes[0].texts]
