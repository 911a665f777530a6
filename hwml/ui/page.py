"""The page around the tabs: its Blocks (launched with the catalogues and the favicon), its
stylesheet and logo, all read from the top-level assets/ folder (nothing is fetched at run time)."""

from __future__ import annotations

import base64

import gradio as gr

from hwml.settings import ASSETS
from hwml.ui.lang import I18N

FAVICON = ASSETS / "favicon.png"
LOGO = ASSETS / "logo.svg"
STYLESHEET = ASSETS / "style.css"


def stylesheet() -> str:
    """The app's CSS (progress bar, projector mode, top bar)."""
    return STYLESHEET.read_text(encoding="utf-8") if STYLESHEET.is_file() else ""


def logo_html() -> str:
    """The logo as an image inlined in the page (a data URI: no extra request, sharp on a projector)."""
    if not LOGO.is_file():
        return ""
    data = base64.b64encode(LOGO.read_bytes()).decode("ascii")
    return f'<img src="data:image/svg+xml;base64,{data}" alt="hwml" class="hwml-logo">'


class AppBlocks(gr.Blocks):
    """gr.Blocks whose launch() defaults to hwml's translations (gr.I18n) and favicon, so every
    launcher (app.py, a test, a notebook) gets the page in the visitor's language."""

    def launch(self, *args, **kwargs):
        kwargs.setdefault("i18n", I18N)
        if FAVICON.is_file():
            kwargs.setdefault("favicon_path", str(FAVICON))
        return super().launch(*args, **kwargs)
