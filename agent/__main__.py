"""`python -m agent`: serve one agent (AGENT_ID, AGENT_PORT, AGENT_CAPABILITIES) until SIGTERM drains it."""

import uvicorn

from agent.app import create_app
from agent.executors.sdk import require_claude_access
from shared.config import load_settings
from shared.fleet_trust import require_fleet_secret
from shared.logging import configure_logging
from shared.runtime import tune_garbage_collector


def main() -> None:
    settings = load_settings()
    require_fleet_secret(settings)  # checked again where it is used; here it stops the agent before it serves
    if settings.agent_executor == "sdk":
        require_claude_access(settings)
    configure_logging(settings.log_level, settings.log_json)
    app = create_app(settings)
    tune_garbage_collector()
    uvicorn.run(
        app,
        host=settings.agent_host,
        port=settings.agent_port,
        log_config=None,
        access_log=False,
        # Requests are short (/execute only accepts); the subtasks' own drain happens in the lifespan.
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
