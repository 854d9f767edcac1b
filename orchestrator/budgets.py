"""Budgets that pause, not kill: the rule that says when a task must pause, and why.

A task with `max_cost_usd` pauses when its next attempt would pass it: when what it spent (its decomposition and
every attempt that reported a result, by the cost ledger: shared/database/ledger_repository.py) plus what one more
attempt is projected to cost (the mean of its attempts so far; nothing before the first) exceeds the budget. A tenant
with a daily budget (TENANT_DAILY_BUDGET_USD) pauses all its running tasks once what it spent on the current UTC day
reaches it, and takes no new task until the next UTC midnight.

The task lifecycle asks this module inside the transactions where spend changes (a submit, a batch of results) and
before it resumes a task; pausing and resuming are its transitions (shared/database/budget_repository.py).
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from shared.config import Settings
from shared.database import Repositories
from shared.database.budget_repository import TaskBudget
from shared.errors import ConflictError, TooManyRequestsError
from shared.models import StatusReason, Task, TaskStatus

BUDGET_EXHAUSTED = "budget_exhausted"
TENANT_DAILY_BUDGET = "tenant_daily_budget"


def next_utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC) + timedelta(days=1)


def usd(amount: float) -> str:
    return f"${amount:.4f}"


def projected_attempt_cost(budget: TaskBudget, spent: float) -> float:
    """What one more attempt of the task is expected to cost: the mean of its attempts so far (0 before any)."""
    if budget.attempts == 0:
        return 0.0
    return max(spent - budget.decomposition_usd, 0.0) / budget.attempts


def task_over_budget(budget: TaskBudget, spent: float, max_cost_usd: float | None = None) -> StatusReason | None:
    """Why the task may not start another attempt under `max_cost_usd` (its own budget when None), if it may not."""
    limit = budget.max_cost_usd if max_cost_usd is None else max_cost_usd
    if limit is None:
        return None
    projected = projected_attempt_cost(budget, spent)
    if spent + projected <= limit:
        return None
    return StatusReason(
        code=BUDGET_EXHAUSTED,
        message=f"paused: spent {usd(spent)} of its {usd(limit)} budget, and its next attempt is projected at "
        f"{usd(projected)}; resume it with a higher max_cost_usd",
    )


@dataclass(frozen=True)
class DailySpend:
    """What the tenant spent on the current UTC day, against its daily budget."""

    spent: float
    budget: float
    day_ends_at: datetime

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.budget

    def seconds_left_in_day(self, now: datetime) -> int:
        return max(1, int((self.day_ends_at - now).total_seconds() + 0.999))

    def reason(self) -> StatusReason:
        return StatusReason(
            code=TENANT_DAILY_BUDGET,
            message=f"paused: the tenant spent {usd(self.spent)} of its {usd(self.budget)} daily budget today "
            f"(UTC); it resumes at {self.day_ends_at:%Y-%m-%d %H:%M} UTC or when the budget is raised",
        )


class BudgetRules:
    """The budget checks of one orchestrator (its tenant's daily budget comes from its settings)."""

    def __init__(self, settings: Settings) -> None:
        self.daily_budget = settings.tenant_daily_budget_usd or None  # 0 means none

    async def pause_over_budget(self, tx: Repositories, task_ids: Collection[str]) -> list[Task]:
        """Pause the running tasks among `task_ids` whose next attempt would pass their budget; the tasks paused."""
        over = await self.over_budget(tx, task_ids)
        return [change.task for change in await tx.budgets.pause(list(over.items())) if not change.was_paused]

    async def pause_reopened(self, tx: Repositories, task_id: str) -> list[Task]:
        """Pause a task an operator's retry set running again when its own budget or the tenant's daily budget is
        spent, so a retry is no way past a budget (a resume with a higher one is); the task, if it paused."""
        daily = await self.daily_spend(tx)
        if daily is not None and daily.exhausted:
            pauses = [(task_id, daily.reason())]
        else:
            pauses = list((await self.over_budget(tx, [task_id])).items())
        return [change.task for change in await tx.budgets.pause(pauses) if not change.was_paused]

    async def pause_tenant_work(self, tx: Repositories, daily: DailySpend) -> list[Task]:
        """Pause every running task of the tenant, its daily budget being spent; the tasks paused."""
        return await tx.budgets.pause_all(daily.reason())

    async def over_budget(
        self, tx: Repositories, task_ids: Collection[str], *, paused_too: bool = False
    ) -> dict[str, StatusReason]:
        """The tasks among `task_ids` (running ones, and paused ones with `paused_too`) whose next attempt would pass
        their budget, with why (two statements, the second only when one of them has a budget)."""
        budgets = {
            task_id: budget
            for task_id, budget in (await tx.budgets.budgets_of(task_ids)).items()
            if paused_too or budget.status is not TaskStatus.PAUSED
        }
        spent = await tx.ledger.task_spend(budgets) if budgets else {}
        reasons = {task_id: task_over_budget(budget, spent.get(task_id, 0.0)) for task_id, budget in budgets.items()}
        return {task_id: reason for task_id, reason in reasons.items() if reason is not None}

    async def daily_spend(self, tx: Repositories, now: datetime | None = None) -> DailySpend | None:
        """Today's spend against the daily budget; None when the tenant has none."""
        if self.daily_budget is None:
            return None
        today = (now or datetime.now(UTC)).date()
        return DailySpend(await tx.ledger.tenant_spend_on(today), self.daily_budget, next_utc_midnight(today))

    async def refuse_when_spent(self, tx: Repositories) -> None:
        """TooManyRequestsError, with Retry-After until the next UTC midnight, once today's budget is spent."""
        now = datetime.now(UTC)
        daily = await self.daily_spend(tx, now)
        if daily is not None and daily.exhausted:
            raise TooManyRequestsError(
                f"the tenant's daily budget is spent: {usd(daily.spent)} of {usd(daily.budget)} today (UTC); submit "
                "again after midnight UTC (Retry-After), or raise TENANT_DAILY_BUDGET_USD",
                retry_after_seconds=daily.seconds_left_in_day(now),
            )

    async def refuse_resume(self, tx: Repositories, task_id: str, max_cost_usd: float | None) -> None:
        """ConflictError when the paused task would pause again at once: its budget (or the new `max_cost_usd`)
        does not cover its next attempt, or the tenant's daily budget is still spent."""
        budget = (await tx.budgets.budgets_of([task_id], with_budget_only=False))[task_id]
        spent = (await tx.ledger.task_spend([task_id])).get(task_id, 0.0)
        reason = task_over_budget(budget, spent, max_cost_usd)
        if reason is not None:
            projected = projected_attempt_cost(budget, spent)
            raise ConflictError(
                f"task {task_id} has spent {usd(spent)} and its next attempt is projected at {usd(projected)}, "
                f"more than its budget of {usd(max_cost_usd or budget.max_cost_usd or 0)}: resume it with a "
                f"max_cost_usd above {usd(spent + projected)}"
            )
        daily = await self.daily_spend(tx)
        if daily is not None and daily.exhausted:
            raise ConflictError(
                f"the tenant's daily budget is still spent ({usd(daily.spent)} of {usd(daily.budget)} today, UTC): "
                f"task {task_id} can resume after midnight UTC or once TENANT_DAILY_BUDGET_USD is raised"
            )
