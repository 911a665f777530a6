"""hwml's Gradio app: `python app.py` (also the Hugging Face Space entry point).

Honours GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (Gradio reads them), needs no network at run
time and sends no analytics. Its settings (all optional, `HWML_*` environment variables) are
documented in `hwml/settings.py` and the README's Settings table.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from hwml import settings  # noqa: E402
from hwml.ui import CSS, build_app, theme, warm_up  # noqa: E402


def main() -> None:
    max_file_size = settings.max_upload_bytes()  # audio, feature files, small course zips; not a multi-GB folder
    concurrency = settings.concurrency()
    demo, ctx = build_app()
    try:
        demo.queue(default_concurrency_limit=concurrency).launch(
            theme=theme(),
            css=CSS,
            ssr_mode=False,
            footer_links=["api", "settings"],
            max_file_size=max_file_size,
            prevent_thread_lock=True,
        )
        warm_up(ctx)  # the page is served: now load the shipped models, before the first student asks
        demo.block_thread()
    finally:
        ctx.jobs.stop_all()


if __name__ == "__main__":
    main()
