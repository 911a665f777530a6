"""Start the app: `python app.py` in a clone, `hwml-app` from an installed package, `launch()` in a
notebook.

Gradio makes a public share link by itself only inside a notebook kernel on Colab or another
hosted notebook; `python app.py` run from a Colab cell is a plain process there, so its page
is unreachable. `hwml-app --share` (or GRADIO_SHARE=true) asks for the link; in a notebook,
`launch(block=False)` returns at once and the cell shows the page inline (README: Run it in
Colab or Kaggle). The share link is Gradio's tunnel: the only network the app ever uses, and
only when asked for.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from hwml import settings
from hwml.serve.jobs import JobRegistry
from hwml.serve.workspace import Workspace
from hwml.ui import CSS, build_app, theme, warm_up
from hwml.ui.widgets import AppContext


def launch(share: bool | None = None, block: bool = True, **launch_kwargs):
    """Build and serve the app; returns the Blocks. share=None: Gradio's choice (on in a hosted
    notebook, else GRADIO_SHARE). block=False: return once served (a notebook cell), the app
    keeps running until `demo.close()`; block=True: serve until interrupted, then stop the runs."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    ctx = AppContext(workspace=Workspace.from_env(), jobs=JobRegistry())
    # every temporary folder this process makes lives under the runs root, where the disk budget
    # counts it; a killed server's leftovers there (and in scratch/) go now, before anything runs
    ctx.workspace.clear_leftovers()
    tempfile.tempdir = str(ctx.workspace.temp_dir())
    demo, ctx = build_app(ctx)
    try:
        demo.queue(default_concurrency_limit=settings.concurrency()).launch(
            theme=theme(),
            css=CSS,
            ssr_mode=False,
            footer_links=["api", "settings"],
            max_file_size=settings.max_upload_bytes(),  # audio, feature files, small course zips
            prevent_thread_lock=True,
            share=share,
            **launch_kwargs,
        )
        ctx.workspace.watch_disk()  # the disk budget, also between the prunes events make
        warm_up(ctx)  # the page is served: now load the shipped models, before the first student asks
        if block:
            demo.block_thread()
    finally:
        if block:
            ctx.jobs.stop_all()
    return demo


def main(argv: list[str] | None = None) -> None:
    """The `hwml-app` console script."""
    parser = argparse.ArgumentParser(prog="hwml-app", description="Serve the hwml app (http://127.0.0.1:7860).")
    parser.add_argument("--share", action="store_true", help="also make a public gradio.live link (Colab, Kaggle)")
    args = parser.parse_args(argv)
    launch(share=True if args.share else None)
