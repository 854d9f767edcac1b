"""`python -m agent`: serve one agent (AGENT_ID, AGENT_PORT, AGENT_CAPABILITIES) until SIGTERM drains it.

Exit codes: 0 after a drain, 1 for a configuration error, 4 when the registry refused the agent because the pool
already has MAX_POOL_SIZE live agents (the orchestrator's pool reads it: orchestrator/pool.py).
"""

import sys

import uvicorn

from agent.app import create_app
from agent.executors.sdk import require_claude_access
from shared.config import load_settings
from shared.fleet_trust import require_fleet_secret
from shared.logging import configure_logging
from shared.runtime import tune_garbage_collector

EXIT_POOL_FULL = 4
STARTUP_FAILURE = 3


def main() -> None:
    settings = load_settings()
    require_fleet_secret(settings)  # checked again where it is used; here it stops the agent before it serves
    if settings.agent_executor == "sdk":
        require_claude_access(settings)
    configure_logging(settings.log_level, settings.log_json)
    app = create_app(settings)
    tune_garbage_collector()
    config = uvicorn.Config(
        app,
        host=settings.agent_host,
        port=settings.agent_port,
        log_config=None,
        access_log=False,
        # Requests are short (/execute only accepts); the subtasks' own drain happens in the lifespan.
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    app.state.server = server  # the lifespan ends the server itself when the registry refuses the agent
    server.run()
    if getattr(app.state, "refusal", None) is not None:
        sys.exit(EXIT_POOL_FULL)
    if not server.started:
        sys.exit(STARTUP_FAILURE)  # what uvicorn.run answers a failed start-up with


if __name__ == "__main__":
    main()
