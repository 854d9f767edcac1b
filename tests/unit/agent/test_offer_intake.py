"""The agent takes its offers from its own Redis queue: a batch is accepted in one statement and run, its in-flight
copies go with the results; a forged offer changes nothing; a refusal goes back to the orchestrator; offers a dead
process under the same id held are looked at again on start, and run only if no process accepted them before."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from agent.runner import SubtaskRunner
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.models import AgentCapability, ReportedResult, SubTaskStatus, TaskExecutionRequest
from shared.redis.offers import OFFER_CONSUMER, OfferRefusal
from shared.redis_manager import RedisManager
from tests.polling import eventually
from tests.unit.agent.fixtures import OfferFactory, SettingsFactory, serving
from tests.unit.agent.test_api import another_prompt, assert_nothing_ran, expired


@pytest.fixture
async def agent(agent_settings: Settings, db: DatabaseManager) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serving(agent_settings) as served:
        yield served


async def results(redis: RedisManager, count: int) -> list[ReportedResult]:
    async def pushed() -> list[str]:
        return await redis.client.lrange(redis.result_queue.key, 0, -1)  # type: ignore[no-any-return]

    payloads = await eventually(pushed, lambda items: len(items) >= count)
    return [ReportedResult.model_validate_json(payload) for payload in payloads]


async def offer(redis: RedisManager, agent_id: str, *requests: TaskExecutionRequest) -> None:
    await redis.offers.of(agent_id).push_many([request.model_dump_json() for request in requests])


async def test_a_batch_of_offers_is_accepted_in_one_statement_run_and_its_in_flight_copies_go_with_the_results(
    agent_settings_factory: SettingsFactory,
    db: DatabaseManager,
    agent_redis: RedisManager,
    offered_request: OfferFactory,
) -> None:
    agent_settings = agent_settings_factory(agent_concurrency=3)
    offers = [
        await offered_request(f"Summarise the figures of region {n}", agent_id=agent_settings.agent_id)
        for n in range(3)
    ]
    await offer(agent_redis, agent_settings.agent_id, *offers)  # waiting when the agent starts: taken at once

    async with serving(agent_settings):
        reported = await results(agent_redis, 3)
        await eventually(lambda: agent_redis.offers.waiting(agent_settings.agent_id), lambda held: held == [])

    assert sorted(r.subtask_id for r in reported) == sorted(o.subtask.id for o in offers)
    assert {r.delivery_token for r in reported} == {o.subtask.delivery_token for o in offers}
    accepted = await db.pool.fetch(
        "SELECT accepted_at FROM subtasks WHERE id = ANY ($1::text[])", [o.subtask.id for o in offers]
    )
    assert len({row["accepted_at"] for row in accepted}) == 1  # one statement: one statement_timestamp()
    for request in offers:
        logs = await Repositories(db.pool, agent_settings.tenant_id).audit.list_agent_logs(
            subtask_id=request.subtask.id
        )
        assert "subtask started" in [log.message for log in logs]  # written by the accept statement


@pytest.mark.parametrize("forge", [another_prompt, expired])
async def test_an_offer_the_fleet_did_not_sign_as_it_is_changes_nothing(
    agent: tuple[FastAPI, httpx.AsyncClient],
    agent_settings: Settings,
    db: DatabaseManager,
    agent_redis: RedisManager,
    offered_request: OfferFactory,
    forge: object,
) -> None:
    """Pushed straight into the agent's queue by anyone who can write to Redis: refused on its signature, it runs
    nowhere; only an assignment that merely expired is handed back to the orchestrator, to be offered afresh."""
    app, _ = agent
    genuine = await offered_request()
    forged = forge(genuine, agent_settings)  # type: ignore[operator]

    await offer(agent_redis, agent_settings.agent_id, forged)

    await eventually(lambda: agent_redis.offers.waiting(agent_settings.agent_id), lambda held: held == [])
    refusals = [OfferRefusal.model_validate_json(r) for r in await agent_redis.offers.refusals.waiting_and_inflight()]
    if forge is expired:
        assert [(r.subtask_id, r.delivery_token) for r in refusals] == [
            (genuine.subtask.id, genuine.subtask.delivery_token)
        ]
    else:
        assert refusals == []
    await assert_nothing_ran(app, genuine, agent_settings, db, agent_redis)


async def test_an_offer_the_agent_cannot_run_is_refused_back_to_the_orchestrator(
    agent_settings_factory: SettingsFactory,
    db: DatabaseManager,
    agent_redis: RedisManager,
    offered_request: OfferFactory,
) -> None:
    settings = agent_settings_factory(agent_capabilities=[AgentCapability.FILE_PROCESSING])
    request = await offered_request(agent_id=settings.agent_id)  # needs DATA_ANALYSIS

    async with serving(settings) as (app, _):
        await offer(agent_redis, settings.agent_id, request)
        [refusal] = await eventually(agent_redis.offers.refusals.waiting_and_inflight, bool)
        runner: SubtaskRunner = app.state.runner
        assert runner.current_tasks == []

    declined = OfferRefusal.model_validate_json(refusal)
    assert (declined.subtask_id, declined.attempt, declined.agent_id) == (request.subtask.id, 1, settings.agent_id)
    assert "lacks required capabilities" in declined.reason
    [subtask] = await db.repositories().subtasks.list_for_task(request.task_id)
    assert subtask.status is SubTaskStatus.RUNNING  # unaccepted: the orchestrator takes it back on the refusal


async def test_offers_a_dead_process_held_run_once_under_the_same_id(
    agent_settings: Settings, db: DatabaseManager, agent_redis: RedisManager, offered_request: OfferFactory
) -> None:
    """Its in-flight list still holds an offer it had accepted (and ran) and one it took but never accepted: the
    process that starts under its id runs the second, and not the first again."""
    ran, taken = await offered_request("Summarise the old figures"), await offered_request("Summarise the new ones")
    assert await db.repositories().subtasks.accept_delivery(
        ran.subtask.id, ran.subtask.delivery_token or "", agent_settings.agent_id
    )
    inflight = agent_redis.offers.of(agent_settings.agent_id).inflight_key(OFFER_CONSUMER)
    await agent_redis.client.rpush(inflight, ran.model_dump_json(), taken.model_dump_json())

    async with serving(agent_settings):
        [result] = await results(agent_redis, 1)
        await eventually(lambda: agent_redis.offers.waiting(agent_settings.agent_id), lambda held: held == [])

    assert result.subtask_id == taken.subtask.id
    assert await agent_redis.result_queue.length() == 1
