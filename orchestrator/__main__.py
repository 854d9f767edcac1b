"""`python -m orchestrator`: serve the orchestrator API with its background loops."""

import uvicorn

from orchestrator.app import create_app
from shared.config import load_settings
from shared.logging import configure_logging
from shared.runtime import tune_garbage_collector


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    app = create_app(settings)
    tune_garbage_collector()
    uvicorn.run(
        app,
        host=settings.orchestrator_host,
        port=settings.orchestrator_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
