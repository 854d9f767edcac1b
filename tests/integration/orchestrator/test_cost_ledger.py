"""The cost ledger as the lifecycle writes it (real PostgreSQL and Redis): every saved result's turns, late ones
too, never a forged one's; a result's cost is the sum of its rows; a price change leaves old rows as they were; a
planner's calls land with the task, or without one when the task is refused."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from orchestrator.fleet_view import FleetView
from orchestrator.lifecycle import TaskLifecycle
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.errors import TooManyRequestsError
from shared.fleet_trust import FleetTrust
from shared.ledger import CallPurpose, ModelCallUsage
from shared.models import ReportedResult, SubTask, SubTaskResult, TokenUsage
from shared.pricing import ModelPrice
from shared.redis_manager import RedisManager
from tests.factories import build_result, build_task, plain_result, run_attempt

CHEAP = ModelPrice(input=1.0, output=5.0)
DEAR = ModelPrice(input=3.0, output=15.0)
TURNS = [TokenUsage(input_tokens=2_000, output_tokens=40), TokenUsage(input_tokens=2_300, output_tokens=400)]


def own_model() -> str:
    """A model no other test prices: `model_prices` outlives each test."""
    return f"test-model-{uuid.uuid4().hex[:8]}"


def priced_with(settings: Settings, model: str, price: ModelPrice) -> Settings:
    return settings.model_copy(update={"model_prices": {**settings.model_prices, model: price}})


def lifecycle_of(settings: Settings, db: DatabaseManager, redis: RedisManager) -> TaskLifecycle:
    return TaskLifecycle(settings, db, redis, FleetView.of(redis, settings.heartbeat_ttl_seconds))


def with_turns(trust: FleetTrust, result: SubTaskResult, model: str, turns: Sequence[TokenUsage]) -> ReportedResult:
    """The result as an agent reports it: each turn's usage, sealed inside the report."""
    assert isinstance(result, ReportedResult)
    calls = [ModelCallUsage(purpose=CallPurpose.ATTEMPT, model=model, usage=usage) for usage in turns]
    total = sum(turns, TokenUsage())
    return trust.seal(result.model_copy(update={"model": model, "model_calls": calls, "token_usage": total}))


async def started(lifecycle: TaskLifecycle, repos: Repositories) -> SubTask:
    task = build_task(subtasks=1)
    await lifecycle.submit(task)
    return await run_attempt(repos, task.subtasks[0].id)


async def test_every_saved_result_s_turns_are_recorded_late_ones_too_and_a_forged_one_s_never(
    orchestrator_settings: Settings,
    db: DatabaseManager,
    test_redis: RedisManager,
) -> None:
    model = own_model()
    lifecycle = lifecycle_of(priced_with(orchestrator_settings, model, CHEAP), db, test_redis)
    running = await started(lifecycle, db.repositories())
    reported = with_turns(lifecycle.trust, build_result(running, cost_usd=9.99), model, TURNS)
    # The same attempt reported twice (a redelivery with another result id): the second changes nothing, but ran.
    late = with_turns(lifecycle.trust, build_result(running), model, TURNS[:1])
    outsider = FleetTrust(SecretStr("a-secret-this-fleet-never-had-0000000000"), orchestrator_settings.tenant_id)
    forged = with_turns(outsider, outsider.sign_result(plain_result(build_result(running))), model, TURNS * 50)

    first = await lifecycle.apply_results([reported])
    second = await lifecycle.apply_results([late, forged])

    assert len(first.applied) == 1 and second.applied == [] and list(second.rejected) == [1]
    rows = await db.repositories().ledger.task_calls(running.task_id)
    assert [(row.purpose, row.attempt, row.agent_id, row.tokens) for row in rows] == [
        (CallPurpose.ATTEMPT, 1, "agent1", TURNS[0]),
        (CallPurpose.ATTEMPT, 1, "agent1", TURNS[1]),
        (CallPurpose.ATTEMPT, 1, "agent1", TURNS[0]),
    ]
    assert [row.cost_usd for row in rows] == pytest.approx([CHEAP.cost_usd(usage) for usage in [*TURNS, TURNS[0]]])
    # Each stored result costs the sum of its rows (not the 9.99 its agent said), so the roll-up is their sum.
    stored = await db.repositories().results.get_subtask_results(running.task_id)
    assert [result.cost_usd for result in stored] == pytest.approx(
        [CHEAP.cost_usd(TURNS[0]) + CHEAP.cost_usd(TURNS[1]), CHEAP.cost_usd(TURNS[0])]
    )
    spent = await db.repositories().ledger.task_spend([running.task_id])
    assert spent[running.task_id] == pytest.approx(sum(result.cost_usd for result in stored))


async def test_a_price_change_prices_new_rows_and_leaves_recorded_ones_as_they_were(
    orchestrator_settings: Settings,
    db: DatabaseManager,
    test_redis: RedisManager,
) -> None:
    model = own_model()
    before = lifecycle_of(priced_with(orchestrator_settings, model, CHEAP), db, test_redis)
    first = await started(before, db.repositories())
    await before.apply_results([with_turns(before.trust, build_result(first), model, TURNS)])
    # MODEL_PRICES changed, the orchestrator restarted.
    after = lifecycle_of(priced_with(orchestrator_settings, model, DEAR), db, test_redis)
    second = await started(after, db.repositories())
    await after.apply_results([with_turns(after.trust, build_result(second), model, TURNS)])

    old_rows = await db.repositories().ledger.task_calls(first.task_id)
    new_rows = await db.repositories().ledger.task_calls(second.task_id)

    assert [(row.price_version, row.cost_usd) for row in old_rows] == [
        (1, pytest.approx(CHEAP.cost_usd(usage))) for usage in TURNS
    ]
    assert [(row.price_version, row.cost_usd) for row in new_rows] == [
        (2, pytest.approx(DEAR.cost_usd(usage))) for usage in TURNS
    ]


async def test_an_unpriced_model_keeps_the_cost_its_agent_reported(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    running = await started(lifecycle, db.repositories())
    result = with_turns(lifecycle.trust, build_result(running, cost_usd=0.42), "claude-unpriced-1", TURNS)

    await lifecycle.apply_results([result])

    rows = await db.repositories().ledger.task_calls(running.task_id)
    assert [(row.price_id, row.cost_usd) for row in rows] == [(None, 0.0), (None, pytest.approx(0.42))]


async def test_a_submit_records_its_planning_calls_and_a_refused_one_records_them_without_a_task(
    orchestrator_settings: Settings,
    db: DatabaseManager,
    test_redis: RedisManager,
) -> None:
    model = orchestrator_settings.claude_model
    price = orchestrator_settings.model_prices[model]
    usage = TokenUsage(input_tokens=1_500, output_tokens=300)
    calls = [
        ModelCallUsage(purpose=CallPurpose.DECOMPOSITION, model=model, usage=usage),
        ModelCallUsage(purpose=CallPurpose.REPAIR, model=model, usage=usage),
    ]
    lifecycle = lifecycle_of(orchestrator_settings.model_copy(update={"max_queue_depth": 1}), db, test_redis)
    stored = build_task(subtasks=1, decomposition={"model": model, "token_usage": usage + usage})
    refused = build_task(subtasks=1)

    await lifecycle.submit(stored, calls)
    with pytest.raises(TooManyRequestsError):
        await lifecycle.submit(refused, calls)

    ledger = db.repositories().ledger
    rows = await ledger.task_calls(stored.id)
    assert [row.purpose for row in rows] == [CallPurpose.DECOMPOSITION, CallPurpose.REPAIR]
    task = await db.repositories().tasks.get_task(stored.id)
    assert task is not None and task.decomposition is not None
    assert task.decomposition.cost_usd == pytest.approx(2 * price.cost_usd(usage))
    assert await ledger.task_calls(refused.id) == []
    # Both submits' calls count toward the tenant's day, the refused one's without a task.
    assert await ledger.tenant_spend_on(datetime.now(UTC).date()) == pytest.approx(4 * price.cost_usd(usage))


async def test_planning_calls_of_no_task_are_recorded_and_their_cost_returned(
    lifecycle: TaskLifecycle, db: DatabaseManager, orchestrator_settings: Settings
) -> None:
    model = orchestrator_settings.claude_model
    usage = TokenUsage(input_tokens=800, output_tokens=120)

    cost = await lifecycle.record_model_calls(None, [ModelCallUsage(purpose="estimate", model=model, usage=usage)])

    assert cost == pytest.approx(orchestrator_settings.model_prices[model].cost_usd(usage))
    assert await db.repositories().ledger.tenant_spend_on(datetime.now(UTC).date()) == pytest.approx(cost)


async def test_a_result_delivered_again_is_recorded_in_the_ledger_once(
    orchestrator_settings: Settings,
    db: DatabaseManager,
    test_redis: RedisManager,
) -> None:
    model = own_model()
    lifecycle = lifecycle_of(priced_with(orchestrator_settings, model, CHEAP), db, test_redis)
    running = await started(lifecycle, db.repositories())
    reported = with_turns(lifecycle.trust, build_result(running), model, TURNS)

    # Delivered twice in one batch, then once more later (an orchestrator that died before acknowledging it, an
    # agent's push retried after a reply was lost): the same report, the same result id, one attempt's spend.
    first = await lifecycle.apply_results([reported, reported])
    again = await lifecycle.apply_results([reported])

    assert len(first.applied) == 1 and again.applied == [] and not first.rejected and not again.rejected
    rows = await db.repositories().ledger.task_calls(running.task_id)
    assert [row.tokens for row in rows] == TURNS
    spent = await db.repositories().ledger.task_spend([running.task_id])
    assert spent[running.task_id] == pytest.approx(sum(CHEAP.cost_usd(usage) for usage in TURNS))
