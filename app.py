"""hwml's Gradio app: `python app.py` (also the Hugging Face Space entry point).

Honours GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (Gradio reads them), needs no network at run
time and sends no analytics. Settings, all optional: HWML_RUNS_DIR (runs root, default ./runs),
HWML_RUNS_DISK_MB (prune old runs past this, default 1000), HWML_MAX_TRAINING (runs training at
once, default 1 on CPU), HWML_MAX_RUN_SECONDS (training time cap per run, default 600),
HWML_CORPUS_SIZE (built-in corpus: default | small), HWML_CHECKPOINTS_DIR (shipped models,
default ./checkpoints), HWML_ALLOW_LOCAL_PATHS (typing server folder paths; off on a Space).
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from hwml.ui import CSS, build_app, theme  # noqa: E402


def main() -> None:
    demo, ctx = build_app()
    try:
        demo.queue(default_concurrency_limit=int(os.environ.get("HWML_CONCURRENCY", "2"))).launch(
            theme=theme(), css=CSS, ssr_mode=False, footer_links=["api", "settings"])
    finally:
        ctx.jobs.stop_all()


if __name__ == "__main__":
    main()
