"""The page's language: static texts as `gr.I18n` keys (translated in the browser), the
session's language for what the server writes, and the visible switch.

How a session gets its language: on page load a little JavaScript picks the language chosen
earlier in this tab (sessionStorage), else the browser's preference (navigator.languages), tells
Gradio's frontend (its exported `changeLocale`, found by the URL of the module that exports it)
and sends it to the server, which keeps it per session (`remember`). The switch does the same
when clicked. Server-side text then asks `lang_of(request)`: the session's choice, else the
request's Accept-Language header, else English (gradio_client calls get English).
"""

from __future__ import annotations

import contextvars
import json
import threading

import gradio as gr

from hwml.i18n import LANG_NAMES, LANGS, catalogue, from_accept_language, normalise, t

I18N = gr.I18n(**{lang: catalogue(lang) for lang in LANGS})


def L(key: str):  # noqa: N802 (short on purpose: it wraps every label of the page)
    """A static text of the page: the browser shows it in the session's language."""
    catalogue("en")[key]  # an unknown key fails when the page is built, not silently in the browser
    return I18N(key)


_langs: dict[str, str] = {}
_lock = threading.Lock()
_current: contextvars.ContextVar[str] = contextvars.ContextVar("hwml_lang", default="en")


def current_lang() -> str:
    """The language of the event being handled, for code that has no request at hand (a panel's
    show_* helpers): `hwml.ui.widgets.user_errors` sets it from the event's gr.Request."""
    return _current.get()


def use_language_of(request) -> contextvars.Token:
    """Make `current_lang()` the request's language until `reset_language(token)`."""
    return _current.set(lang_of(request))


def reset_language(token: contextvars.Token) -> None:
    _current.reset(token)


def lang_of(request: gr.Request | None) -> str:
    """The language of a request's session: its switch, else its Accept-Language, else en."""
    session = getattr(request, "session_hash", None)
    with _lock:
        chosen = _langs.get(session) if session else None
    if chosen:
        return chosen
    headers = getattr(request, "headers", None)
    return from_accept_language(headers.get("accept-language") if headers is not None else None)


def remember(lang: str | None, request: gr.Request | None) -> str:
    """Keep a session's language (from the page's JavaScript); returns it, normalised."""
    lang = lang if lang in LANGS else normalise(lang)
    session = getattr(request, "session_hash", None)
    if session:
        with _lock:
            _langs[session] = lang
    return lang


def forget(request: gr.Request | None) -> None:
    """The tab closed: drop its language."""
    with _lock:
        _langs.pop(getattr(request, "session_hash", None), None)


def tr(request: gr.Request | None, key: str, **values) -> str:
    """`t` in the request's language."""
    return t(key, lang_of(request), **values)


# The page's JavaScript. SET_LOCALE finds Gradio's i18n module among the scripts the page loaded
# and switches its locale: every gr.I18n text re-renders at once, no reload.
SET_LOCALE = """
async (lang) => {
  try { sessionStorage.setItem('hwml-lang', lang); } catch (e) {}
  document.documentElement.lang = lang;
  const titles = %s;
  if (titles[lang]) document.title = titles[lang];
  const url = performance.getEntriesByType('resource').map(e => e.name)
      .find(n => /\\/assets\\/core-[^/]+\\.js$/.test(n));
  if (url) { try { const m = await import(url); await m.changeLocale(lang); } catch (e) { console.warn(e); } }
  return lang;
}""" % json.dumps({lang: t("app.title", lang) for lang in LANGS}, ensure_ascii=False)

ON_LOAD = """
async () => {
  const known = %s;
  let lang = null;
  try { lang = sessionStorage.getItem('hwml-lang'); } catch (e) {}
  if (!known.includes(lang)) {
    lang = 'en';
    const tags = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
    for (const tag of tags) {
      const l = tag.toLowerCase();
      if (l.startsWith('zh')) { lang = /(-tw|-hk|-mo|hant)/.test(l) ? 'zh-TW' : 'zh-CN'; break; }
      if (l.startsWith('en')) { lang = 'en'; break; }
    }
  }
  let projector = false;
  try { projector = sessionStorage.getItem('hwml-projector') === '1'; } catch (e) {}
  document.body.classList.toggle('hwml-projector', projector);
  return [await (%s)(lang), projector];
}""" % (list(LANGS), SET_LOCALE.strip())

PROJECTOR = """
(on) => {
  document.body.classList.toggle('hwml-projector', !!on);
  try { sessionStorage.setItem('hwml-projector', on ? '1' : '0'); } catch (e) {}
  return on;
}"""


def language_switch() -> tuple[gr.Radio, gr.Checkbox]:
    """The visible switch (one radio, language names in their own script) and projector mode."""
    radio = gr.Radio(
        [(LANG_NAMES[lang], lang) for lang in LANGS],
        value="en",
        label=L("app.language"),
        show_label=False,
        elem_id="hwml-lang",
        scale=0,
        min_width=280,
        container=False,
    )
    projector = gr.Checkbox(
        False, label=L("app.projector"), elem_id="hwml-projector", scale=0, min_width=200, container=False
    )
    return radio, projector


def wire_language(demo: gr.Blocks, radio: gr.Radio, projector: gr.Checkbox, refresh) -> None:
    """Page load and the switch: tell the frontend and the server, then `refresh(lang, request)`
    (a list of gr.update for `refresh.outputs`: what the server drew in the old language)."""
    outputs = list(getattr(refresh, "outputs", []))

    def on_load(lang, on, request: gr.Request):
        lang = remember(lang, request)
        return [gr.update(value=lang), gr.update(value=bool(on)), *refresh(lang, request)]

    def on_switch(lang, request: gr.Request):
        lang = remember(lang, request)
        return refresh(lang, request)

    demo.load(
        on_load, [radio, projector], [radio, projector, *outputs], js=ON_LOAD, api_visibility="private", queue=False
    )
    radio.input(on_switch, radio, outputs, js=SET_LOCALE, api_visibility="private", queue=False)
    projector.input(None, projector, None, js=PROJECTOR, api_visibility="private", queue=False)
    demo.unload(forget)


class Localized:
    """What the server drew into the page before it knew the session's language (empty tables'
    headers, first status lines): each item is drawn again on page load and on a switch. A
    switch therefore also clears a results table (its rows were made in the old language)."""

    def __init__(self):
        self.items: list[tuple[object, object]] = []

    def add(self, component, draw, with_request: bool = False):
        """`draw(lang)` (or `draw(lang, request)`) -> the component's new value (or a gr.update)."""
        self.items.append((component, draw if with_request else (lambda lang, request, draw=draw: draw(lang))))
        return component

    def table(self, component, header_keys: list[str]):
        """An empty table whose headers follow the language."""
        import pandas as pd

        return self.add(component, lambda lang: pd.DataFrame(columns=[t(k, lang) for k in header_keys]))

    @property
    def outputs(self) -> list:
        return [c for c, _ in self.items]

    def __call__(self, lang: str, request=None) -> list:
        return [draw(lang, request) for _, draw in self.items]


# Gradio's own keys that its zh-TW / zh-CN catalogues lack (Gradio shows the key itself there);
# hwml's catalogues fill them in.
GRADIO_GAPS = ("common.complete",)


def localized_tab(localized: Localized, key: str, **kwargs) -> gr.Tab:
    """A gr.Tab whose label follows the language: Gradio's tab bar keeps the label it first
    showed when the locale changes, so the server sets it again, as plain text, per session."""
    tab = gr.Tab(L(key), **kwargs)
    localized.add(tab, lambda lang: gr.update(label=t(key, lang)))
    return tab
