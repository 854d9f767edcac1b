"""What tasks and tenants spent, in USD: the roll-ups budgets are checked against.

A task's spend is its decomposition's cost plus the cost of every result reported for its attempts, applied or not
(a late or superseded attempt spent money too). A tenant's spend on a UTC day is the same sum over the results
reported and the tasks decomposed that day.
"""

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta

from shared.database.executor import Executor

DECOMPOSITION_COST = "coalesce((t.decomposition ->> 'cost_usd')::float8, 0)"


def utc_day_bounds(day: date) -> tuple[datetime, datetime]:
    """The first moment of the UTC day and of the next."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


class SpendRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def task_spend(self, task_ids: Collection[str]) -> dict[str, float]:
        """What each of this tenant's tasks spent so far, by id (an unknown id is left out)."""
        if not task_ids:
            return {}
        rows = await self._executor.fetch(
            f"""
            SELECT t.id, {DECOMPOSITION_COST} + coalesce(
                       (SELECT sum(r.cost_usd) FROM subtask_results r WHERE r.task_id = t.id), 0) AS spent
            FROM tasks t WHERE t.id = ANY ($1::text[]) AND t.tenant_id = $2
            """,
            list(task_ids),
            self._tenant_id,
        )
        return {row["id"]: float(row["spent"]) for row in rows}

    async def tenant_spend_on(self, day: date) -> float:
        """What this tenant spent on the UTC day `day`."""
        start, end = utc_day_bounds(day)
        spent = await self._executor.fetchval(
            f"""
            SELECT (SELECT coalesce(sum(cost_usd), 0) FROM subtask_results
                    WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3)
                 + (SELECT coalesce(sum({DECOMPOSITION_COST}), 0) FROM tasks t
                    WHERE t.tenant_id = $1 AND t.created_at >= $2 AND t.created_at < $3)
            """,
            self._tenant_id,
            start,
            end,
        )
        return float(spent)
