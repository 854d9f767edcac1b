"""`python -m agent` stops in one line, without a traceback: without FLEET_SECRET (saying how to set it), and when
the registry refuses it because the pool is full (exit code 4)."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from agent.__main__ import EXIT_POOL_FULL
from shared.config import Settings
from shared.local_fleet import free_port
from shared.models import AgentCapability
from tests.orchestrator_harness import Fleet

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_an_agent_without_a_fleet_secret_does_not_start(tmp_path: Path) -> None:
    environment = {name: value for name, value in os.environ.items() if name != "FLEET_SECRET"}
    environment |= {"AGENT_EXECUTOR": "stub", "AGENT_PORT": "8016", "PYTHONPATH": str(REPO_ROOT)}

    run = subprocess.run(
        [sys.executable, "-m", "agent"], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )

    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("invalid configuration: FLEET_SECRET is not set")
    assert "scripts/start.sh generates one" in run.stderr and "Traceback" not in run.stderr


async def test_an_agent_the_full_pool_refuses_stops_with_one_line_and_exit_code_4(
    fleet: Fleet, orchestrator_settings: Settings, tmp_path: Path
) -> None:
    await fleet.add("already-there", AgentCapability.DATA_ANALYSIS)  # MAX_POOL_SIZE=1: the pool is full
    environment = {**os.environ, **orchestrator_settings.as_environment(), "PYTHONPATH": str(REPO_ROOT)}
    environment |= {"MAX_POOL_SIZE": "1", "AGENT_EXECUTOR": "stub", "AGENT_ID": "one-too-many", "LOG_JSON": "true"}
    environment |= {"AGENT_HOST": "127.0.0.1", "AGENT_PORT": str(free_port())}

    run = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agent"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode == EXIT_POOL_FULL == 4, run.stdout + run.stderr
    output = run.stdout + run.stderr
    errors = [line for line in output.splitlines() if '"level": "error"' in line]
    assert len(errors) == 1 and '"event": "agent_refused_pool_full"' in errors[0], output
    assert "the pool is full: 1 agents are live (MAX_POOL_SIZE)" in errors[0]
    assert "Traceback" not in output and "agent_started" not in output
    assert [agent.agent_id for agent in await fleet.redis.get_agents()] == ["already-there"]
