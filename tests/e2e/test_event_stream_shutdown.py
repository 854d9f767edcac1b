"""An orchestrator process told to stop (SIGTERM) closes its open event streams at once, each with a reconnection
hint, instead of holding its shutdown until uvicorn's graceful timeout cuts them off."""

import asyncio
import signal
from pathlib import Path

import pytest

from shared.config import Settings
from shared.local_fleet import LocalFleet, fleet_environment
from tests.e2e.conftest import api_client, e2e_scenarios, submit
from tests.event_streams import following
from tests.polling import eventually

pytestmark = pytest.mark.e2e


async def test_sigterm_ends_open_streams_cleanly_and_the_orchestrator_exits(
    fleet_settings: Settings, fleet_settings_dir: Path
) -> None:
    work = fleet_settings_dir
    base_env = {
        **fleet_environment(fleet_settings.postgres_url, fleet_settings.redis_url, fleet_settings.tenant_id, work),
        "ANTHROPIC_MAX_RETRIES": "0",
    }
    with LocalFleet(base_env, work / "logs") as local:
        simulator = local.add_simulator(e2e_scenarios(work / "scenarios.yaml"))
        local.start("simulator")
        local.base_env["ANTHROPIC_BASE_URL"] = simulator.url
        orchestrator = local.add_orchestrator()
        local.start("orchestrator")
        async with api_client(local) as client:
            task_id = await submit(client, "Calculate factorial of 10")  # no agent: it stays queued
            async with (
                following(client, f"/tasks/{task_id}/events") as task_reader,
                following(client, "/events") as tenant_reader,
            ):

                async def answered() -> bool:
                    return task_reader.status_code == tenant_reader.status_code == 200

                await eventually(answered, bool)
                exit_code = await asyncio.to_thread(orchestrator.stop)

    # uvicorn re-raises the signal once its graceful shutdown is done (a hung one would have been SIGKILLed).
    assert exit_code == -signal.SIGTERM
    for reader in (task_reader, tenant_reader):
        assert reader.closed  # the body ended properly, not cut off
        assert reader.messages[-1].retry == 3000
    log = orchestrator.log_path.read_text()
    assert "timeout graceful shutdown exceeded" not in log
    assert "ASGI callable returned without completing response" not in log
