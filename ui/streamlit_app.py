"""Entry point: `streamlit run ui/streamlit_app.py`. The page itself lives in ui.app."""

import sys
from pathlib import Path

# `streamlit run` puts only this file's folder (ui/) on sys.path; the dashboard imports the project's packages.
PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
if PROJECT_ROOT not in sys.path:
    sys.path.insert(0, PROJECT_ROOT)

from ui.app import main  # noqa: E402 (needs the path above)

main()
