"""hwml's Gradio app: `python app.py` (also the Hugging Face Space entry point).

Honours GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (Gradio reads them), needs no network at run
time and sends no analytics. Settings, all optional: HWML_RUNS_DIR (runs root, default ./runs),
HWML_RUNS_DISK_MB (prune old runs past this, default 1000), HWML_MAX_TRAINING (runs training at
once, default 1 on CPU), HWML_MAX_RUN_SECONDS (training time cap per run, default 600),
HWML_MAX_UPLOAD_MB (largest uploaded file, default 200: a bigger one is refused before it is
stored), HWML_CONCURRENCY (other events at once, each, default 2), HWML_PREDICT_WORKERS
(predictions at once, all tasks together, default: the usable cores, at most 8; the rest
queue), HWML_TIMINGS (a file that gets each prediction's stage timings), HWML_CORPUS_SIZE
(built-in corpus: default | small), HWML_CHECKPOINTS_DIR (shipped models, default
./checkpoints), HWML_ALLOW_LOCAL_PATHS (typing server folder paths; off on a Space).
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from hwml.jobs import env_number  # noqa: E402
from hwml.ui import CSS, build_app, theme, warm_up  # noqa: E402

MAX_UPLOAD_MB = 200  # per file: audio, feature files, small course zips; multi-GB course folders are for a local run


def main() -> None:
    max_file_size = int(env_number("HWML_MAX_UPLOAD_MB", MAX_UPLOAD_MB) * 2**20)
    concurrency = int(env_number("HWML_CONCURRENCY", 2, int))
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
