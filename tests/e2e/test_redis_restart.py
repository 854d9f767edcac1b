"""The fleet across a real Redis restart: a private redis-server is killed mid-run and started again, empty.

Everything Redis held is gone at once (queues, in-flight lists, the registry) and every connection breaks. The
orchestrator and agents must reconnect, the agents register again, queued work is rebuilt from PostgreSQL, and
results of attempts that were running meanwhile must still count: every task completes, nothing runs twice. While
Redis is down, the API says so with a 503 where it needs Redis, and still takes new tasks.
"""

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from shared.config import Settings
from shared.database import DatabaseManager
from shared.local_fleet import SEED_FLEET, LocalFleet, fleet_environment, free_port
from tests.e2e.conftest import follow, submit, wait_for_agents
from tests.polling import eventually

pytestmark = pytest.mark.e2e

TASKS = 8
CHAIN = [
    ("fetch", "DATABASE_OPERATIONS", []),
    ("analyse", "DATA_ANALYSIS", ["fetch"]),
    ("report", "CODE_GENERATION", ["analyse"]),
]
SCENARIOS = {
    "plans": [
        {
            "match": "restart chain",
            "plan": {
                "subtasks": [
                    {"id": sid, "description": f"{sid} step", "required_capabilities": [cap], "dependencies": deps}
                    for sid, cap, deps in CHAIN
                ]
            },
        }
    ]
}


class RedisServer:
    """A redis-server of the test's own, without persistence: a restart brings it back empty."""

    def __init__(self, port: int, work_dir: Path) -> None:
        self.port = port
        self._work_dir = work_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (scripts/test.sh installs Debian's redis-server)"
        arguments = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(
            [binary, *arguments, "--dir", str(self._work_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()

    def kill(self) -> None:
        assert self._process is not None
        self._process.kill()
        self._process.wait()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def stub_fleet(
    settings: Settings, database: DatabaseManager, redis_server: RedisServer, tmp_path: Path
) -> Iterator[LocalFleet]:
    """Orchestrator, the seed's five agents on the stub executor (each subtask takes a moment) and the simulator."""
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text(yaml.safe_dump(SCENARIOS))
    base_env = {
        **fleet_environment(settings.postgres_url, redis_server.url, f"restart-{uuid.uuid4().hex[:8]}", tmp_path),
        "AGENT_EXECUTOR": "stub",
        "AGENT_STUB_DELAY_SECONDS": "0.3",
        "HEARTBEAT_INTERVAL_SECONDS": "1",
        "HEARTBEAT_TTL_SECONDS": "10",
        "RECOVERY_INTERVAL_SECONDS": "0.5",
        "ANTHROPIC_MAX_RETRIES": "0",
    }
    with LocalFleet(base_env, tmp_path / "logs") as local:
        local.start_seed_fleet(scenarios)
        yield local


async def test_every_task_completes_across_a_redis_restart(
    stub_fleet: LocalFleet, redis_server: RedisServer, database: DatabaseManager
) -> None:
    async with httpx.AsyncClient(base_url=stub_fleet.services["orchestrator"].url, timeout=30) as api:
        await wait_for_agents(api, len(SEED_FLEET))
        task_ids = [await submit(api, f"Run restart chain number {n}") for n in range(TASKS)]

        async def running() -> int:
            count: int = await database.pool.fetchval(
                "SELECT count(*) FROM subtasks WHERE task_id = ANY($1::text[]) AND status = 'running'", task_ids
            )
            return count

        await eventually(running, lambda count: count > 0)  # attempts are on agents when Redis goes
        redis_server.kill()
        down = await api.get("/agents")  # the registry is in Redis: a clear 503 to retry, not a 500
        assert (down.status_code, down.json()["detail"]) == (503, {"store": "Redis"}), down.text
        # Stored in PostgreSQL meanwhile; the recovery loop queues it once Redis is back.
        task_ids.append(await submit(api, "Run restart chain submitted while Redis is down"))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(redis_server.start)

        finals = [(await follow(api, task_id, timeout=60))[0] for task_id in task_ids]
        await wait_for_agents(api, len(SEED_FLEET))  # every agent registered again

    assert [final["task"]["status"] for final in finals] == ["completed"] * len(task_ids)
    results = await database.pool.fetch(
        "SELECT subtask_id, attempt, agent_id, status, applied, error FROM subtask_results"
        " WHERE task_id = ANY($1::text[]) ORDER BY subtask_id, created_at",
        task_ids,
    )
    # One attempt per subtask, whose result counted: no live agent was mistaken for a dead one.
    assert len(results) == len(task_ids) * len(CHAIN), [
        dict(row) for row in results if row["attempt"] > 1 or not row["applied"]
    ]
    assert {(row["attempt"], row["status"], row["applied"]) for row in results} == {(1, "completed", True)}
