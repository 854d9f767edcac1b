"""An attacker on the fleet's network, holding no FLEET_SECRET: what Redis (unauthenticated on that network) and the
plain HTTP between the orchestrator and its agents let them do to a tenant's tasks.

The fleet is real processes (simulator, orchestrator, one agent running the SDK). The attacker's Redis connection
carries no credentials of the fleet's: if Redis ever asks for some, the attacker is shut out at the first step.
Reading what passes through Redis is still open to whoever reaches it (docs/security.md, "Not protected yet").
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Monitor
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from shared.config import Settings
from shared.local_fleet import LocalFleet
from shared.models import AgentCapability, TaskExecutionRequest
from shared.redis.keys import OFFER_QUEUE, RESULT_QUEUE, RedisKeys
from shared.redis.offers import OFFER_CONSUMER
from shared.redis.registry import encode_agent_status
from tests.e2e.conftest import api_client, e2e_scenarios, follow, sdk_fleet_environment, submit, wait_for_agents
from tests.fake_agent import FakeAgent, result_for, serving
from tests.network import CuttableLink
from tests.polling import eventually

FORGED = "FORGED BY THE ATTACKER"
AGENT_ID = "agent1"


def without_credentials(redis_url: str) -> str:
    """The fleet's Redis address as an attacker on the network knows it: host, port and database, no password."""
    parts = urlsplit(redis_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@pytest.fixture(scope="module")
def relay_and_fleet(fleet_settings: Settings, fleet_settings_dir: Path) -> Iterator[tuple[LocalFleet, CuttableLink]]:
    work = fleet_settings_dir
    with LocalFleet(sdk_fleet_environment(fleet_settings, work), work / "logs") as fleet:
        simulator = fleet.add_simulator(e2e_scenarios(work / "scenarios.yaml"))
        fleet.start("simulator")
        fleet.base_env["ANTHROPIC_BASE_URL"] = simulator.url
        fleet.add_orchestrator()
        agent = fleet.add_agent(AGENT_ID, "DATA_ANALYSIS,DATABASE_OPERATIONS")
        relay = CuttableLink("127.0.0.1", agent.port, record=True)
        agent.env["AGENT_PUBLIC_URL"] = f"http://127.0.0.1:{relay.port}"  # the orchestrator reaches it through the tap
        try:
            fleet.start("orchestrator", AGENT_ID)
            yield fleet, relay
        finally:
            relay.close()


@pytest.fixture
async def api(relay_and_fleet: tuple[LocalFleet, CuttableLink]) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(relay_and_fleet[0]) as client:
        await wait_for_agents(client, 1)
        yield client


@pytest.fixture
async def attacker_redis(fleet_settings: Settings) -> AsyncIterator[Redis | None]:
    """The attacker's connection to the fleet's Redis; None when Redis refuses a client without credentials, which
    ends every attack below at its first step."""
    client = Redis.from_url(without_credentials(fleet_settings.redis_url))
    try:
        await client.ping()
    except (AuthenticationError, NoPermissionError):
        yield None
    except ResponseError as error:
        if "NOAUTH" not in str(error):
            raise
        yield None
    else:
        yield client
    finally:
        await client.aclose()


async def read_by_the_orchestrator(commands: Monitor, key: str) -> None:
    """Until the orchestrator has read `key` from Redis: MONITOR shows every client's commands to anyone."""
    async with asyncio.timeout(30):
        async for command in commands.listen():
            if command["command"].upper().startswith("HGETALL ") and key in command["command"]:
                return


def forged_outputs(detail: dict[str, Any]) -> list[str]:
    outputs = [result.get("output") or "" for result in detail["subtask_results"]]
    outputs += [entry.get("output") or "" for entry in (detail["task"].get("result") or {}).get("outputs", [])]
    return [output for output in outputs if FORGED in output]


async def test_an_agent_registered_through_redis_without_the_fleet_secret_gets_no_work(
    api: httpx.AsyncClient, attacker_redis: Redis | None, fleet_settings: Settings
) -> None:
    """A rogue agent written into the registry (a hash and a set member, no secret) is offered the tenant's
    subtasks, signed for it, and the result it pushes for them applies: the task ends with the attacker's output."""
    if attacker_redis is None:
        return  # Redis refuses the attacker: nothing can be written into the registry
    keys = RedisKeys(fleet_settings.tenant_id)
    rogue = FakeAgent("aaa-rogue", [AgentCapability.DATABASE_OPERATIONS], slots=8)
    with serving(rogue):
        fields = encode_agent_status(rogue.status())
        async with attacker_redis.monitor() as commands:
            async with attacker_redis.pipeline(transaction=True) as pipe:
                pipe.hset(keys.agent(rogue.agent_id), mapping=fields)  # type: ignore[arg-type]
                pipe.expire(keys.agent(rogue.agent_id), 120)
                pipe.sadd(keys.active_agents(), rogue.agent_id)
                pipe.publish(keys.registry_changed(), rogue.agent_id)
                await pipe.execute()
            await read_by_the_orchestrator(commands, keys.agent(rogue.agent_id))
        try:
            task_id = await submit(api, "Calculate the factorial of 10 using Python")

            rogue_queue = keys.key(OFFER_QUEUE, rogue.agent_id)  # where the dispatcher would put its offers

            async def offered_to_the_rogue() -> list[TaskExecutionRequest]:
                offers = await attacker_redis.lrange(rogue_queue, 0, -1)  # type: ignore[misc]
                return [TaskExecutionRequest.model_validate_json(offer) for offer in offers]

            async def rogue_offered_or_task_ended() -> bool:
                if await offered_to_the_rogue():
                    return True
                return (await api.get(f"/tasks/{task_id}")).json()["task"]["status"] in {"completed", "failed"}

            await eventually(rogue_offered_or_task_ended, bool, timeout=60)
            rogue.received = await offered_to_the_rogue()
            for offer in list(rogue.received):
                forged = result_for(offer, rogue.agent_id, output=FORGED)
                await attacker_redis.rpush(keys.queue(RESULT_QUEUE), forged.model_dump_json())
            final, _ = await follow(api, task_id)
        finally:
            await attacker_redis.delete(keys.agent(rogue.agent_id))
            await attacker_redis.srem(keys.active_agents(), rogue.agent_id)

    sent_to_the_rogue = [offer.task_context.get("task_description") for offer in rogue.received]
    assert (sent_to_the_rogue, forged_outputs(final)) == ([], []), (
        f"the rogue agent was sent the tenant's work; the task ended {final['task']['status']}"
    )


async def test_an_overheard_offer_does_not_let_anyone_report_the_attempts_result(
    api: httpx.AsyncClient, attacker_redis: Redis | None, relay_and_fleet: tuple[LocalFleet, CuttableLink]
) -> None:
    """The offer crosses Redis in the clear (it waits in the agent's in-flight list while the attempt runs); its
    assignment is all a result needs to apply, and it binds nothing of the result (status, output). Pushed before the
    agent finishes, a forged completion applies."""
    if attacker_redis is None:
        return  # Redis refuses the attacker: no result can be pushed
    fleet = relay_and_fleet[0]
    keys = RedisKeys(fleet.base_env["TENANT_ID"])
    task_id = await submit(api, "Run the slow inventory count")

    offers = await eventually(lambda: _offers_of(attacker_redis, keys, task_id), bool, timeout=30)
    offer = offers[0]
    forged = result_for(offer, AGENT_ID, output=FORGED)
    await attacker_redis.rpush(keys.queue(RESULT_QUEUE), forged.model_dump_json())
    final, _ = await follow(api, task_id)

    assert forged_outputs(final) == [], f"the task ended {final['task']['status']} with the attacker's output"


async def _offers_of(redis: Redis, keys: RedisKeys, task_id: str) -> list[TaskExecutionRequest]:
    """The task's offers as anyone reading the fleet's Redis sees them: waiting for the agent or held by it."""
    waiting = await redis.lrange(keys.key(OFFER_QUEUE, AGENT_ID), 0, -1)  # type: ignore[misc]
    held = await redis.lrange(keys.key(OFFER_QUEUE, AGENT_ID, "inflight", OFFER_CONSUMER), 0, -1)  # type: ignore[misc]
    offers = [TaskExecutionRequest.model_validate_json(offer) for offer in [*waiting, *held]]
    return [offer for offer in offers if offer.task_id == task_id]
