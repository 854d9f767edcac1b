"""`python -m orchestrator`: serve the orchestrator API with its background loops.

`python -m orchestrator api-keys ...` manages API keys instead (see orchestrator.api_key_commands).
"""

import argparse
import sys

import uvicorn

from orchestrator import api_key_commands
from orchestrator.app import create_app
from shared.config import Settings, load_settings
from shared.fleet_trust import require_fleet_secret
from shared.logging import configure_logging
from shared.runtime import tune_garbage_collector


def serve(settings: Settings) -> None:
    require_fleet_secret(settings)  # checked again where it is used; here it stops the start with one line
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


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator", description="With no command: serve the API.")
    api_key_commands.add_commands(parser.add_subparsers(dest="command_name"))
    args = parser.parse_args()
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    if args.command_name is None:
        serve(settings)
        return 0
    return api_key_commands.main(settings, args)


if __name__ == "__main__":
    sys.exit(main())
