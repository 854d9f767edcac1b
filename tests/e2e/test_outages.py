"""The fleet across real outages of its stores, mid-run, with subtasks on the agents.

Redis: a private redis-server is killed and started again, empty. Everything Redis held is gone at once (queues,
in-flight lists, the registry) and every connection breaks. The orchestrator and agents reconnect, the agents
register again, queued work is rebuilt from PostgreSQL, and results of attempts that were running meanwhile still
count: every task completes, nothing runs twice. While Redis is down, the API says so with a 503 where it needs
Redis, and still takes new tasks.

PostgreSQL: every connection of the fleet goes through a link that is cut for a while (connections reset,
reconnects refused), as in a restart or a network cut. Every task completes, each subtask exactly once.

A stalled agent (SIGSTOP): its offers are not accepted in time and go elsewhere; once it wakes up it runs none of them.
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from shared.config import Settings
from shared.database import DatabaseManager
from shared.local_fleet import SEED_FLEET, LocalFleet, fleet_environment, free_port
from shared.redis.keys import OFFER_QUEUE, RedisKeys
from shared.redis.offers import OFFER_CONSUMER
from tests.e2e.conftest import api_client, follow, submit, wait_for_agents
from tests.network import CuttableLink, link_to
from tests.polling import eventually

pytestmark = pytest.mark.e2e

TASKS = 8
POSTGRES_OUTAGE_SECONDS = 10
# What a 10 s PostgreSQL outage may cost a service's log: one warning when the first of its loops loses the store
# (the others say so at info), one per request refused meanwhile, and a few about what was put right after it.
MAX_OUTAGE_WARNINGS = 5
CHAIN = [
    ("fetch", "DATABASE_OPERATIONS", []),
    ("analyse", "DATA_ANALYSIS", ["fetch"]),
    ("report", "CODE_GENERATION", ["analyse"]),
]
SCENARIOS = {
    "plans": [
        {
            "match": "outage chain",
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


FleetFactory = Callable[..., LocalFleet]


@pytest.fixture
def postgres_link(settings: Settings) -> Iterator[tuple[CuttableLink, str]]:
    """A cuttable link to the test database, and its URL; asked for before the fleet, so it closes after it."""
    link, url = link_to(settings.postgres_url)
    yield link, url
    link.close()


@pytest.fixture
def stub_fleet(settings: Settings, database: DatabaseManager, tmp_path: Path) -> Iterator[FleetFactory]:
    """`stub_fleet(postgres_url=..., redis_url=...)` starts the orchestrator, the seed's five agents on the stub
    executor (each subtask takes a moment) and the simulator, all healthy; they stop with the test."""
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text(yaml.safe_dump(SCENARIOS))
    with ExitStack() as stack:

        def start(postgres_url: str = settings.postgres_url, redis_url: str = settings.redis_url) -> LocalFleet:
            base_env = {
                **fleet_environment(postgres_url, redis_url, f"outage-{uuid.uuid4().hex[:8]}", tmp_path),
                "AGENT_EXECUTOR": "stub",
                "AGENT_STUB_DELAY_SECONDS": "0.3",
                "HEARTBEAT_INTERVAL_SECONDS": "1",
                "HEARTBEAT_TTL_SECONDS": "10",
                "RECOVERY_INTERVAL_SECONDS": "0.5",
                "ANTHROPIC_MAX_RETRIES": "0",
            }
            local = stack.enter_context(LocalFleet(base_env, tmp_path / "logs"))
            local.start_seed_fleet(scenarios)
            return local

        yield start


async def wait_until_some_run(database: DatabaseManager, task_ids: list[str]) -> None:
    """Until agents hold some of the tasks' subtasks: the outage must catch attempts in flight."""

    async def running() -> int:
        count: int = await database.pool.fetchval(
            "SELECT count(*) FROM subtasks WHERE task_id = ANY($1::text[]) AND status = 'running'", task_ids
        )
        return count

    await eventually(running, lambda count: count > 0)


async def results_of(database: DatabaseManager, task_ids: list[str]) -> list[dict[str, Any]]:
    rows = await database.pool.fetch(
        "SELECT subtask_id, attempt, agent_id, status, applied, error FROM subtask_results"
        " WHERE task_id = ANY($1::text[]) ORDER BY subtask_id, created_at",
        task_ids,
    )
    return [dict(row) for row in rows]


async def test_every_task_completes_across_a_redis_restart(
    redis_server: RedisServer,
    stub_fleet: FleetFactory,
    database: DatabaseManager,  # the fleet stops first
) -> None:
    fleet = stub_fleet(redis_url=redis_server.url)
    async with api_client(fleet) as api:
        await wait_for_agents(api, len(SEED_FLEET))
        task_ids = [await submit(api, f"Run outage chain number {n}") for n in range(TASKS)]
        await wait_until_some_run(database, task_ids)

        redis_server.kill()
        down = await api.get("/agents")  # the registry is in Redis: a clear 503 to retry, not a 500
        assert (down.status_code, down.json()["detail"]) == (503, {"store": "Redis"}), down.text
        # Stored in PostgreSQL meanwhile; the recovery loop queues it once Redis is back.
        task_ids.append(await submit(api, "Run outage chain submitted while Redis is down"))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(redis_server.start)

        finals = [(await follow(api, task_id, timeout=60))[0] for task_id in task_ids]
        await wait_for_agents(api, len(SEED_FLEET))  # every agent registered again

    assert [final["task"]["status"] for final in finals] == ["completed"] * len(task_ids)
    results = await results_of(database, task_ids)
    # One attempt per subtask, whose result counted: no live agent was mistaken for a dead one.
    assert len(results) == len(task_ids) * len(CHAIN), [r for r in results if r["attempt"] > 1 or not r["applied"]]
    assert {(r["attempt"], r["status"], r["applied"]) for r in results} == {(1, "completed", True)}


async def test_every_task_completes_across_a_postgresql_outage(
    postgres_link: tuple[CuttableLink, str], stub_fleet: FleetFactory, database: DatabaseManager
) -> None:
    link, postgres_url = postgres_link
    fleet = stub_fleet(postgres_url=postgres_url)
    async with api_client(fleet) as api:
        await wait_for_agents(api, len(SEED_FLEET))
        task_ids = [await submit(api, f"Run outage chain number {n}") for n in range(TASKS)]
        await wait_until_some_run(database, task_ids)

        link.cut()
        down = await api.get("/tasks")
        assert (down.status_code, down.json()["detail"]) == (503, {"store": "PostgreSQL"}), down.text
        await asyncio.sleep(POSTGRES_OUTAGE_SECONDS)  # the outage itself: nothing to wait for but time
        link.restore()

        finals = [(await follow(api, task_id, timeout=60))[0] for task_id in task_ids]

    assert [final["task"]["status"] for final in finals] == ["completed"] * len(task_ids)
    results = await results_of(database, task_ids)
    # Exactly one completion counted per subtask. (A claim whose commit the cut hid may be retried as a lost
    # delivery, so a second attempt is allowed; a second counted completion is not.)
    counted = [r["subtask_id"] for r in results if r["applied"] and r["status"] == "completed"]
    assert sorted(counted) == sorted(set(counted)) and len(counted) == len(task_ids) * len(CHAIN), results
    # Calm: every service's log is JSON lines, a few warnings each, no traceback.
    for service in fleet.services.values():
        lines = [json.loads(line) for line in service.log_path.read_text().splitlines()]
        warnings = [line for line in lines if line["level"] == "warning"]
        assert len(warnings) <= MAX_OUTAGE_WARNINGS, (service.name, warnings)
        assert not [line for line in lines if "exception" in line or line["level"] == "error"], service.name


async def test_a_stalled_agent_never_runs_an_attempt_another_agent_took_over(
    stub_fleet: FleetFactory, database: DatabaseManager
) -> None:
    """agent3 is SIGSTOPped: the offers in its queue are not accepted in time, are taken back and go to agent5, which
    completes them. When agent3 wakes up, whatever offer still waits in its queue is no longer its: it runs nothing,
    reports nothing (or its queue was dropped while its registry entry was gone)."""
    fleet = stub_fleet()
    stalled = fleet.services["agent3"]
    async with api_client(fleet) as api:
        await wait_for_agents(api, len(SEED_FLEET))
        os.kill(stalled.pid, signal.SIGSTOP)
        try:
            # DATABASE_OPERATIONS: agent3 and agent5; the dispatcher offers agent3 first (same load, name order).
            task_ids = [await submit(api, f"Run outage chain number {n}") for n in range(3)]
            finals = [(await follow(api, task_id, timeout=60))[0] for task_id in task_ids]
        finally:
            os.kill(stalled.pid, signal.SIGCONT)
        log = stalled.log_path
        keys = RedisKeys(fleet.base_env["TENANT_ID"])
        waiting, held = keys.key(OFFER_QUEUE, "agent3"), keys.key(OFFER_QUEUE, "agent3", "inflight", OFFER_CONSUMER)
        client = redis.Redis.from_url(fleet.base_env["REDIS_URL"])

        async def offers_left() -> int:
            return int(client.llen(waiting)) + int(client.llen(held))  # type: ignore[arg-type]

        # Once awake, agent3 takes what waited in its queue (if the queue outlived its absence): refused or run.
        try:
            await wait_for_agents(api, len(SEED_FLEET))
            await eventually(offers_left, lambda count: count == 0, timeout=20)
        finally:
            client.close()

    assert [final["task"]["status"] for final in finals] == ["completed"] * len(task_ids)
    results = await results_of(database, task_ids)
    assert "agent3" not in {r["agent_id"] for r in results}
    assert "subtask_accepted" not in log.read_text()
    # Each subtask ran once, under one offer: one result each, applied.
    assert len(results) == len(task_ids) * len(CHAIN) and all(r["applied"] for r in results), results
