"""hwml's Gradio app: `python app.py` (also the Hugging Face Space entry point; `hwml-app` once installed).

Honours GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (Gradio reads them), needs no network at run
time and sends no analytics. Its settings (all optional, `HWML_*` environment variables) are
documented in `hwml/settings.py` and the README's Settings table. The launching is
`hwml.ui.launch` (share links for Colab and Kaggle: README).
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from hwml.ui.launch import main  # noqa: E402

if __name__ == "__main__":
    main()
