"""What the cost ledger's endpoints answer: a task's cost, and spend per UTC day or per tenant."""

from datetime import UTC, date, datetime, timedelta

from orchestrator.api.cost_schemas import SpendGrouping, SpendResponse, SubtaskSpend, TaskCostResponse
from shared.database import DatabaseManager
from shared.database.ledger_repository import CallTotals, DaySpend
from shared.errors import NotFoundError
from shared.models import CallPurpose

PLANNING = (CallPurpose.DECOMPOSITION, CallPurpose.REPAIR)


def utc_today() -> date:
    return datetime.now(UTC).date()


def combined(parts: list[CallTotals]) -> CallTotals:
    """Several groups of calls as one."""
    tokens = parts[0].tokens if parts else CallTotals().tokens
    for part in parts[1:]:
        tokens = tokens + part.tokens
    return CallTotals(
        cost_usd=round(sum(part.cost_usd for part in parts), 10), calls=sum(part.calls for part in parts), tokens=tokens
    )


async def task_cost(db: DatabaseManager, task_id: str) -> TaskCostResponse:
    """The task's roll-ups and rows; NotFoundError for a task that is not this tenant's."""
    repos = db.repositories()
    if not await repos.tasks.task_exists(task_id):
        raise NotFoundError(f"no task with id {task_id!r}")
    rollup = await repos.ledger.task_rollup(task_id)
    calls = await repos.ledger.task_calls(task_id)
    planning = combined([rollup.by_purpose[purpose] for purpose in PLANNING if purpose in rollup.by_purpose])
    subtasks = [
        SubtaskSpend(
            subtask_id=subtask_id,
            totals=totals,
            attempts=[attempt for attempt in rollup.attempts if attempt.subtask_id == subtask_id],
        )
        for subtask_id, totals in sorted(rollup.by_subtask.items())
    ]
    return TaskCostResponse(
        task_id=task_id,
        total_usd=rollup.total.cost_usd,
        decomposition_usd=planning.cost_usd,
        attempts_usd=rollup.by_purpose.get(CallPurpose.ATTEMPT, CallTotals()).cost_usd,
        total=rollup.total,
        by_purpose=rollup.by_purpose,
        subtasks=subtasks,
        model_calls=calls,
    )


async def spend(
    db: DatabaseManager, days: int, by: SpendGrouping, daily_budget_usd: float | None = None
) -> SpendResponse:
    """The tenant's spend per UTC day of the last `days` (today included) against its daily budget, or every
    tenant's (by=tenant: other tenants' budgets are their own orchestrators' settings, so none is shown)."""
    today = utc_today()
    since = today - timedelta(days=days - 1)
    ledger = db.repositories().ledger
    if by == "tenant":
        tenants = await ledger.spend_by_tenant(since, today)
        return SpendResponse(
            by=by,
            days=days,
            since=since,
            today_usd=round(sum(tenant.today_usd for tenant in tenants), 10),
            total=combined([tenant.totals for tenant in tenants]),
            daily=[],
            tenants=tenants,
        )
    spent = {day.day: day for day in await ledger.daily_spend(since)}
    daily = [
        spent.get(day, DaySpend(day=day, totals=CallTotals(), models=[]))
        for day in (since + timedelta(days=offset) for offset in range(days))
    ]
    today_usd = daily[-1].totals.cost_usd
    return SpendResponse(
        by=by,
        days=days,
        since=since,
        today_usd=today_usd,
        daily_budget_usd=daily_budget_usd,
        left_today_usd=None if daily_budget_usd is None else round(max(daily_budget_usd - today_usd, 0.0), 10),
        total=combined([day.totals for day in daily]),
        daily=daily,
        tenants=[],
    )
