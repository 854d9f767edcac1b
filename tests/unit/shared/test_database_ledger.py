"""The cost ledger in PostgreSQL: versioned prices, rows that keep the price they were recorded with, and roll-ups
per task, tenant and UTC day."""

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.database import DatabaseManager, Repositories
from shared.ledger import LedgerEntry, PriceBook
from shared.models import CallPurpose, ModelCallUsage, TokenUsage
from shared.pricing import ModelPrice

CHEAP = ModelPrice(input=1.0, output=5.0, cache_read=0.1, cache_write=1.25)
DEAR = ModelPrice(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)
USAGE = TokenUsage(input_tokens=1_000, output_tokens=200, cache_read_input_tokens=500, cache_creation_input_tokens=40)


def own_model() -> str:
    """A model no other test prices: `model_prices` outlives each test."""
    return f"test-model-{uuid.uuid4().hex[:8]}"


async def sync(db: DatabaseManager, prices: dict[str, ModelPrice]) -> PriceBook:
    async with db.transaction() as tx:
        return PriceBook(await tx.ledger.sync_prices(prices))


def planned(model: str) -> ModelCallUsage:
    return ModelCallUsage(purpose=CallPurpose.DECOMPOSITION, model=model, usage=USAGE)


async def record_at(repos: Repositories, entries: list[LedgerEntry], when: datetime) -> None:
    """Record the rows as if at `when` (the ledger stamps rows with the time of their transaction)."""
    before: int = await repos.executor.fetchval("SELECT coalesce(max(id), 0) FROM model_calls")
    await repos.ledger.record(entries)
    await repos.executor.execute("UPDATE model_calls SET created_at = $1 WHERE id > $2", when, before)


async def test_a_price_is_stored_once_and_each_change_is_a_new_version(db: DatabaseManager) -> None:
    model = own_model()

    first = (await sync(db, {model: CHEAP})).versions[model]
    again = (await sync(db, {model: CHEAP})).versions[model]
    changed = (await sync(db, {model: DEAR})).versions[model]
    back = (await sync(db, {model: CHEAP})).versions[model]

    assert again == first and first.version == 1 and first.price == CHEAP
    assert (changed.version, changed.price) == (2, DEAR)
    assert (back.version, back.price) == (3, CHEAP)  # a change back is a change too
    stored = await db.pool.fetchval("SELECT count(*) FROM model_prices WHERE model = $1", model)
    assert stored == 3


async def test_rows_keep_the_price_they_were_recorded_with_when_the_price_changes(db: DatabaseManager) -> None:
    repos = db.repositories()
    model = own_model()
    before = (await sync(db, {model: CHEAP})).planning_entries("task_priced", [planned(model)])
    await repos.ledger.record(before)
    after = (await sync(db, {model: DEAR})).planning_entries("task_priced", [planned(model)])
    await repos.ledger.record(after)

    rows = await repos.ledger.task_calls("task_priced")

    assert [(row.price_version, row.cost_usd) for row in rows] == [
        (1, pytest.approx(CHEAP.cost_usd(USAGE))),
        (2, pytest.approx(DEAR.cost_usd(USAGE))),
    ]
    assert (await repos.ledger.task_spend(["task_priced"]))["task_priced"] == pytest.approx(
        CHEAP.cost_usd(USAGE) + DEAR.cost_usd(USAGE)
    )


async def test_prices_stay_apart_from_a_model_without_one(db: DatabaseManager) -> None:
    book = await sync(db, {})
    [row] = book.planning_entries("task_unpriced", [planned("claude-unpriced-1")])

    assert (row.cost_usd, row.price_id) == (0.0, None)


async def test_tenant_spend_is_per_utc_day_and_the_tenant_s_own(db: DatabaseManager) -> None:
    ours, theirs = Repositories(db.pool, "acme"), Repositories(db.pool, "globex")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    priced = [LedgerEntry(CallPurpose.ATTEMPT, "m1", USAGE, 0.25), LedgerEntry(CallPurpose.REPAIR, "m2", USAGE, 0.5)]
    await record_at(ours, priced, today + timedelta(minutes=1))
    await record_at(ours, [LedgerEntry(CallPurpose.ESTIMATE, "m1", USAGE, 2.0)], today - timedelta(seconds=1))
    await record_at(theirs, [LedgerEntry(CallPurpose.ATTEMPT, "m1", USAGE, 4.0)], today + timedelta(minutes=2))

    assert await ours.ledger.tenant_spend_on(today.date()) == pytest.approx(0.75)
    assert await ours.ledger.tenant_spend_on(today.date() - timedelta(days=1)) == pytest.approx(2.0)
    assert await theirs.ledger.tenant_spend_on(today.date()) == pytest.approx(4.0)
    [yesterday, this_day] = await ours.ledger.daily_spend(today.date() - timedelta(days=6))
    assert (yesterday.day, yesterday.totals.cost_usd, yesterday.totals.calls) == (
        today.date() - timedelta(days=1),
        pytest.approx(2.0),
        1,
    )
    assert (this_day.totals.cost_usd, this_day.totals.tokens) == (pytest.approx(0.75), USAGE + USAGE)
    assert [(share.model, share.totals.cost_usd) for share in this_day.models] == [
        ("m1", pytest.approx(0.25)),
        ("m2", pytest.approx(0.5)),
    ]
    tenants = {spend.tenant_id: spend for spend in await ours.ledger.spend_by_tenant(today.date(), today.date())}
    assert {tenant: (spend.totals.cost_usd, spend.today_usd) for tenant, spend in tenants.items()} == {
        "acme": (pytest.approx(0.75), pytest.approx(0.75)),
        "globex": (pytest.approx(4.0), pytest.approx(4.0)),
    }


async def test_a_task_rolls_up_by_purpose_subtask_and_attempt(db: DatabaseManager) -> None:
    repos = db.repositories()
    rows = [
        LedgerEntry(CallPurpose.DECOMPOSITION, "m", USAGE, 0.01, task_id="task_r"),
        LedgerEntry(CallPurpose.REPAIR, "m", USAGE, 0.02, task_id="task_r"),
        *(LedgerEntry(CallPurpose.ATTEMPT, "m", USAGE, 0.1, None, "task_r", "sub_a", 1, "agent1") for _ in range(3)),
        LedgerEntry(CallPurpose.ATTEMPT, "m", USAGE, 0.2, None, "task_r", "sub_a", 2, "agent2"),
        LedgerEntry(CallPurpose.ATTEMPT, "m", USAGE, 0.4, None, "task_r", "sub_b", 1, "agent1"),
        LedgerEntry(CallPurpose.ATTEMPT, "m", USAGE, 9.0, None, "task_other", "sub_c", 1, "agent1"),
    ]
    await repos.ledger.record(rows)

    rollup = await repos.ledger.task_rollup("task_r")

    assert (rollup.total.cost_usd, rollup.total.calls) == (pytest.approx(0.93), 7)
    assert {purpose: totals.cost_usd for purpose, totals in rollup.by_purpose.items()} == {
        CallPurpose.DECOMPOSITION: pytest.approx(0.01),
        CallPurpose.REPAIR: pytest.approx(0.02),
        CallPurpose.ATTEMPT: pytest.approx(0.9),
    }
    assert {subtask: totals.cost_usd for subtask, totals in rollup.by_subtask.items()} == {
        "sub_a": pytest.approx(0.5),
        "sub_b": pytest.approx(0.4),
    }
    assert [(a.subtask_id, a.attempt, a.agent_id, a.totals.calls) for a in rollup.attempts] == [
        ("sub_a", 1, "agent1", 3),
        ("sub_a", 2, "agent2", 1),
        ("sub_b", 1, "agent1", 1),
    ]
    assert await repos.ledger.task_spend(["task_r", "task_none"]) == {"task_r": pytest.approx(0.93), "task_none": 0.0}
    assert (await Repositories(db.pool, "globex").ledger.task_rollup("task_r")).total.calls == 0


@pytest.mark.parametrize(
    ("column", "value"),
    [("purpose", "lunch"), ("cost_usd", -1), ("input_tokens", -5), ("tenant_id", "Not A Tenant")],
)
async def test_the_table_refuses_rows_no_call_could_make(db: DatabaseManager, column: str, value: object) -> None:
    values = {"tenant_id": "acme", "purpose": "attempt", "model": "m", "cost_usd": 0, "input_tokens": 0}
    values[column] = value
    with pytest.raises(asyncpg.CheckViolationError):
        await db.pool.execute(
            "INSERT INTO model_calls (tenant_id, purpose, model, cost_usd, input_tokens) VALUES ($1, $2, $3, $4, $5)",
            *values.values(),
        )
