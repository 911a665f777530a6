"""The app in Chinese, as a student's browser sees it: Debian Chromium with locale zh-TW and
zh-CN opens `python app.py`, visits every tab and sub-tab, and reads the page's visible text.

Measured per view: the lines of `document.body.innerText` that hold a letter (lines of only
digits and symbols, such as axis ticks and timers, say nothing in any language); a line is
Chinese when it holds a CJK character. Asserted: at least 95% Chinese over all views, and no
English sentence (three English words in a row) on a line without Chinese. Also the visible
switch (繁體中文 -> 简体中文 without a reload, and the server's own lines follow), English for an
English browser, and projector mode at 1280x720 without horizontal scrolling. Screenshots go to
test-output/i18n-*.png.
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api")
from browser_helpers import OUT, TIMEOUT_MS, chromium, needs_chromium  # noqa: E402

from hwml.i18n import catalogue  # noqa: E402

pytestmark = needs_chromium

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LETTER = re.compile(r"[A-Za-z\u3400-\u9fff]")
ENGLISH_WORD = re.compile(r"^[A-Za-z]{2,}[,.:;!?]?$")
TOP_TABS = (
    "() => Array.from(document.querySelectorAll('.tabs')[0].querySelectorAll(':scope > .tab-wrapper button[role=tab]'))"
)


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def open_page(browser, url: str, locale: str, viewport=(1400, 1000)):
    context = browser.new_context(locale=locale, viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#phoneme-train-start")
    return context, page


def settled(page, lang: str) -> None:
    """Wait until the page's load events drew the server's lines in `lang` (train hint and progress)."""
    hint, progress = catalogue(lang)["train.hint"], catalogue(lang)["progress.not_started"]
    page.wait_for_function(
        "([a, b]) => document.body.innerText.includes(a) && document.body.innerText.includes(b)", arg=[hint, progress]
    )
    page.wait_for_timeout(500)


def english_sentence(line: str) -> bool:
    """Three English words in a row on a line without Chinese (technical tokens are single words)."""
    if CJK.search(line):
        return False
    run = 0
    for word in line.split():
        run = run + 1 if ENGLISH_WORD.match(word) else 0
        if run >= 3:
            return True
    return False


def visit_every_view(page, tag: str):
    """Click every top tab and each sub-tab; yield (view name, visible lines with a letter)."""
    n_top = page.evaluate(TOP_TABS + ".length")
    assert n_top == 5
    for i in range(n_top):
        page.evaluate(TOP_TABS + f"[{i}].click()")
        page.wait_for_timeout(600)
        subs = page.locator(".tabs .tabs button[role=tab]:visible")
        n_sub = subs.count()
        for j in range(max(n_sub, 1)):
            if n_sub:
                subs.nth(j).click()
                page.wait_for_timeout(600)
            name = page.evaluate(TOP_TABS + f"[{i}].innerText") + (f" / {subs.nth(j).inner_text()}" if n_sub else "")
            page.screenshot(path=str(OUT / f"i18n-{tag}-{i}-{j}.png"), full_page=True)
            lines = [s.strip() for s in page.evaluate("() => document.body.innerText").split("\n")]
            yield name, [s for s in lines if s and LETTER.search(s)]


@pytest.mark.parametrize("locale", ["zh-TW", "zh-CN"])
def test_every_tab_reads_in_chinese(browser, app_server, locale):
    context, page = open_page(browser, app_server.url, locale)
    try:
        settled(page, locale)
        assert page.locator("#hwml-lang input:checked").get_attribute("value") == locale
        total, chinese, report, sentences = 0, 0, [], []
        for name, lines in visit_every_view(page, locale):
            n_cjk = sum(bool(CJK.search(s)) for s in lines)
            total, chinese = total + len(lines), chinese + n_cjk
            report.append(f"{name}: {n_cjk}/{len(lines)}")
            sentences += [(name, s) for s in lines if english_sentence(s)]
        share = chinese / total
        print(f"{locale}: {chinese}/{total} visible lines Chinese ({share:.1%}); " + "; ".join(report))
        assert not sentences, sentences[:10]
        assert share >= 0.95, (share, report)
    finally:
        context.close()


def test_the_switch_changes_the_language_for_the_session(browser, app_server):
    context, page = open_page(browser, app_server.url, "zh-TW")
    try:
        settled(page, "zh-TW")
        tw, cn = catalogue("zh-TW"), catalogue("zh-CN")
        assert page.locator("#phoneme-train-start").inner_text().strip() == tw["train.start"]
        page.locator("#hwml-lang").get_by_text("简体中文").click()
        page.wait_for_function(
            "(t) => document.querySelector('#phoneme-train-start').innerText.trim() === t", arg=cn["train.start"]
        )
        settled(page, "zh-CN")  # the server redrew its own lines in the new language
        assert page.title() == cn["app.title"]
        tabs = page.evaluate(TOP_TABS + ".map(b => b.innerText.trim())")
        assert tabs == [cn[k] for k in ("tab.phoneme", "tab.speaker", "tab.live", "tab.runs", "tab.learn")]
        page.evaluate(TOP_TABS + "[4].click()")  # Learn
        page.get_by_text(cn["pitfall.4.heading"]).click()
        page.locator("#learn-pitfall-4").click()  # a server-side result: the demo's headline
        page.get_by_text("加上长度掩码就完全不会动").wait_for()
        page.screenshot(path=str(OUT / "i18n-switched-to-zh-CN.png"), full_page=True)
        page.reload()  # the choice holds for the session (this tab)
        page.wait_for_selector("#phoneme-train-start")
        settled(page, "zh-CN")
    finally:
        context.close()


def test_an_english_browser_gets_english(browser, app_server):
    context, page = open_page(browser, app_server.url, "en-US")
    try:
        settled(page, "en")
        assert page.locator("#hwml-intro").inner_text().startswith("Re-creates HW2")
        lines = [s for s in page.evaluate("() => document.body.innerText").split("\n") if CJK.search(s)]
        assert set(lines) <= {"繁體中文", "简体中文"}, lines  # the switch names each language in its own script
    finally:
        context.close()


def test_projector_mode_fits_a_classroom_screen(browser, app_server):
    context, page = open_page(browser, app_server.url, "zh-TW", viewport=(1280, 720))
    try:
        settled(page, "zh-TW")
        size = page.evaluate(
            "() => parseFloat(getComputedStyle(document.querySelector('#phoneme-train-status')).fontSize)"
            " * (parseFloat(getComputedStyle(document.querySelector('gradio-app')).zoom) || 1)"
        )
        page.locator("#hwml-projector input[type=checkbox]").check()
        page.wait_for_function("() => document.body.classList.contains('hwml-projector')")
        bigger = page.evaluate(
            "() => parseFloat(getComputedStyle(document.querySelector('#phoneme-train-status')).fontSize)"
            " * (parseFloat(getComputedStyle(document.querySelector('gradio-app')).zoom) || 1)"
        )
        assert bigger >= 1.25 * size, (size, bigger)
        for i in range(4):
            page.evaluate(TOP_TABS + f"[{i}].click()")
            page.wait_for_timeout(500)
            width = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert width[0] <= width[1], (i, width)  # no horizontal scrolling
        page.evaluate(TOP_TABS + "[0].click()")
        page.wait_for_timeout(500)
        page.screenshot(path=str(OUT / "i18n-projector-1280x720.png"))
    finally:
        context.close()


def test_the_server_answers_in_the_callers_language(app_server):
    """No browser: an API caller's Accept-Language picks the language of the server's messages
    (a mistake the page names; a package error gets a translated lead-in); English by default."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    for header, want in (
        ({"Accept-Language": "zh-TW,zh;q=0.9"}, catalogue("zh-TW")["learn.sentence_error"]),
        ({}, catalogue("en")["learn.sentence_error"]),
    ):
        with pytest.raises(AppError, match=re.escape(want)):
            Client(app_server.url, verbose=False, headers=header).predict("", api_name="/learn_features")
    client = Client(app_server.url, verbose=False, headers={"Accept-Language": "zh-CN"})
    with pytest.raises(AppError, match="无法完成（原始信息）：.*not one of your runs"):
        client.predict("run:no-such-run", "Built-in corpus", "", None, "test", api_name="/phoneme_evaluate")
