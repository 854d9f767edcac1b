"""The whole fleet as real processes: simulator, orchestrator and five agents running the Claude Agent SDK CLI.

One fleet serves the module's tests (starting it costs seconds); a test that kills a process starts it again.
"""

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.config import Settings
from shared.database import DatabaseManager, apply_migrations
from shared.local_fleet import SEED_FLEET, LocalFleet, fleet_environment
from shared.redis_manager import RedisManager
from tests.conftest import drop_database
from tests.polling import eventually

REPO_ROOT = Path(__file__).resolve().parents[2]
FLEET = SEED_FLEET
TERMINAL = {"completed", "failed", "cancelled"}


def e2e_scenarios(path: Path) -> Path:
    """The end-to-end scenarios (tests/e2e/scenarios/) ahead of the demo's, in one file at `path`."""
    files = [*sorted((Path(__file__).parent / "scenarios").glob("*.yaml")), REPO_ROOT / "simulator/scenarios/demo.yaml"]
    loaded = [yaml.safe_load(file.read_text()) for file in files]
    path.write_text(
        yaml.safe_dump({key: [entry for data in loaded for entry in data[key]] for key in ("plans", "subtasks")})
    )
    return path


@pytest.fixture(scope="module")
async def fleet_settings(settings: Settings) -> AsyncIterator[Settings]:
    """A database of the fleet's own, created for the module and dropped after it: the fleet's processes outlive
    single tests, whose `db` fixture empties the session's database."""
    own = settings.model_copy(
        update={"tenant_id": f"e2e-{uuid.uuid4().hex[:10]}", "postgres_url": f"{settings.postgres_url}_e2e"}
    )
    await apply_migrations(own.postgres_url)
    yield own
    await drop_database(own.postgres_url)


@pytest.fixture(scope="module")
def fleet_settings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the fleet keeps its logs, workspaces and CLI configuration."""
    return tmp_path_factory.mktemp("fleet")


def sdk_fleet_environment(fleet_settings: Settings, work: Path) -> dict[str, str]:
    """A test fleet whose agents run the SDK against the simulator, failing fast instead of retrying the model."""
    return {
        **fleet_environment(fleet_settings.postgres_url, fleet_settings.redis_url, fleet_settings.tenant_id, work),
        "AGENT_EXECUTOR": "sdk",
        "AGENT_CLI_ENV": json.dumps({"CLAUDE_CODE_MAX_RETRIES": "0"}),
        "HEARTBEAT_INTERVAL_SECONDS": "1",
        # Long enough that a machine busy starting processes never lets a live agent expire.
        "HEARTBEAT_TTL_SECONDS": "10",
        "ANTHROPIC_MAX_RETRIES": "0",
    }


@pytest.fixture(scope="module")
def process_fleet(fleet_settings: Settings, fleet_settings_dir: Path) -> Iterator[LocalFleet]:
    work = fleet_settings_dir
    base_env = {
        **sdk_fleet_environment(fleet_settings, work),
        "RECOVERY_INTERVAL_SECONDS": "0.5",
        "AGENT_SHUTDOWN_GRACE_SECONDS": "2",
    }
    with LocalFleet(base_env, work / "logs") as local:
        local.start_seed_fleet(e2e_scenarios(work / "scenarios.yaml"))
        yield local


def api_client(fleet: LocalFleet, timeout: float = 30) -> httpx.AsyncClient:
    """A client of the fleet's orchestrator, sending the fleet's operator key."""
    headers = {"Authorization": f"Bearer {fleet.api_key}"}
    return httpx.AsyncClient(base_url=fleet.services["orchestrator"].url, headers=headers, timeout=timeout)


@pytest.fixture
async def api(process_fleet: LocalFleet) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(process_fleet) as client:
        await wait_for_agents(client, len(FLEET))
        yield client


@pytest.fixture
async def fleet_redis(fleet_settings: Settings) -> AsyncIterator[RedisManager]:
    manager = RedisManager(fleet_settings)
    await manager.connect()
    yield manager
    await manager.disconnect()


async def wait_for_agents(client: httpx.AsyncClient, count: int) -> None:
    async def registered() -> int:
        return len((await client.get("/agents")).json()["agents"])

    await eventually(registered, lambda n: n >= count, timeout=30)


async def submit(client: httpx.AsyncClient, description: str) -> str:
    response = await client.post("/tasks", params={"description": description, "user_id": "e2e"})
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def follow(client: httpx.AsyncClient, task_id: str, timeout: float = 90.0) -> tuple[dict[str, Any], list[str]]:
    """Poll the task until it ends; returns its final state and every status seen on the way."""
    seen: list[str] = []

    async def state() -> dict[str, Any]:
        current: dict[str, Any] = (await client.get(f"/tasks/{task_id}")).json()
        if not seen or seen[-1] != current["task"]["status"]:
            seen.append(current["task"]["status"])
        return current

    final = await eventually(state, lambda current: current["task"]["status"] in TERMINAL, timeout=timeout)
    return final, seen


async def wait_until_running(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """The task's first subtask once an agent has it."""

    async def first_subtask() -> dict[str, Any]:
        subtask: dict[str, Any] = (await client.get(f"/tasks/{task_id}")).json()["task"]["subtasks"][0]
        return subtask

    return await eventually(first_subtask, lambda subtask: subtask["status"] == "running", timeout=30)


@pytest.fixture(scope="module")
async def fleet_database(fleet_settings: Settings) -> AsyncIterator[DatabaseManager]:
    """The fleet's database, for tests that check what was stored."""
    manager = DatabaseManager(fleet_settings)
    await manager.connect()
    yield manager
    await manager.disconnect()
