"""Work waiting on the model's provider: a subtask's attempt handed back to the queue, and a task whose planning
waits, each until a time of its own (the provider's retry-after, else a capped exponential back-off with full
jitter, grown by the waits in a row).

Each statement names the state it moves from, like every transition (subtask_repository.py): a stale or duplicate
provider wait finds no row and changes nothing. The wait is computed in the statement, from the waits in a row it
reads there, so it costs no extra round trip; its status reason ends with the time of the next try.
"""

from dataclasses import dataclass
from datetime import datetime

from shared.database.executor import Executor
from shared.database.subtask_repository import SUBTASK_FIELDS, AttemptTimes, RetriedAttempt
from shared.database.task_repository import TASK_COLUMNS, insert_plan, plan_entry, task_from_row
from shared.models import PROVIDER_UNAVAILABLE, SubTask, Task


@dataclass(frozen=True)
class Backoff:
    """How long the next wait is: the provider's retry-after when it gave one (plus a random share of the base, so
    the work a fleet-wide block held back does not all come back at once), else a random share (`jitter`, drawn in
    [0, 1)) of base * 2^(waits in a row), capped."""

    retry_after: float | None
    jitter: float
    base_seconds: float
    max_seconds: float

    def sql(self, waits_column: str, first: int) -> str:
        """The wait in seconds as an SQL expression over `waits_column`, its four values bound from `$first`."""
        retry_after, jitter, base, cap = (f"${first + offset}::float8" for offset in range(4))
        backoff = f"{jitter} * least({cap}, {base} * power(2, least({waits_column}, 30)))"
        return f"coalesce({retry_after} + {jitter} * {base}, {backoff})"

    def values(self) -> tuple[float | None, float, float, float]:
        return self.retry_after, self.jitter, self.base_seconds, self.max_seconds


def _reason(prefix: str, until: str) -> str:
    """The status reason of work waiting until `until` (an SQL timestamp), its message ending with that time."""
    return f"""jsonb_build_object(
        'code', '{PROVIDER_UNAVAILABLE}',
        'message', {prefix} || to_char({until} AT TIME ZONE 'UTC', 'HH24:MI:SS') || ' UTC'
    )"""


class ProviderWaitRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def requeue_attempt(
        self, subtask_id: str, attempt: int, delivery_token: str | None, backoff: Backoff, reason_prefix: str
    ) -> RetriedAttempt | None:
        """The running offer of attempt N → queued, still attempt N (the provider, not the attempt, failed), to be
        offered again at `not_before`; None when the offer is not current. The attempt's queue and assignment times
        come back for its result row."""
        row = await self._executor.fetchrow(
            f"""
            UPDATE subtasks
            SET status = 'queued', queued_at = clock_timestamp(), not_before = wait.until,
                provider_waits = subtasks.provider_waits + 1, status_reason = {_reason("$4", "wait.until")},
                assigned_agent = NULL, assigned_at = NULL, assignment_latency_ms = NULL, delivery_token = NULL,
                accepted_at = NULL, updated_at = greatest(now(), subtasks.updated_at)
            FROM (SELECT clock_timestamp() + make_interval(secs => {backoff.sql("provider_waits", 5)}) AS until,
                         queued_at AS was_queued_at, assigned_at AS was_assigned_at
                  FROM subtasks WHERE id = $1) wait
            WHERE id = $1 AND status = 'running' AND attempt_count = $2 AND delivery_token = $3
            RETURNING {", ".join(f"subtasks.{column}" for column in SUBTASK_FIELDS)}, wait.was_queued_at,
                      wait.was_assigned_at
            """,
            subtask_id,
            attempt,
            delivery_token,
            reason_prefix,
            *backoff.values(),
        )
        if row is None:
            return None
        requeued = SubTask.model_validate({column: row[column] for column in SUBTASK_FIELDS})
        return RetriedAttempt(requeued, AttemptTimes(row["was_queued_at"], row["was_assigned_at"]))

    async def defer_plan(self, task_id: str, backoff: Backoff, reason_prefix: str) -> datetime | None:
        """A pending task without a plan waits on the provider until the time returned (None: it is not such a task
        any more: planned, cancelled or gone)."""
        until: datetime | None = await self._executor.fetchval(
            f"""
            UPDATE tasks
            SET plan_not_before = wait.until, plan_waits = tasks.plan_waits + 1,
                status_reason = {_reason("$3", "wait.until")}, updated_at = greatest(now(), tasks.updated_at)
            FROM (SELECT clock_timestamp() + make_interval(secs => {backoff.sql("plan_waits", 4)}) AS until
                  FROM tasks WHERE id = $1) wait
            WHERE id = $1 AND tenant_id = $2 AND status = 'pending'
              AND NOT EXISTS (SELECT FROM subtasks WHERE task_id = $1)
            RETURNING wait.until
            """,
            task_id,
            self._tenant_id,
            reason_prefix,
            *backoff.values(),
        )
        return until

    async def plans_due(self, limit: int) -> tuple[list[Task], datetime | None]:
        """This tenant's tasks whose planning waited on the provider and may be tried now (longest due first, at
        most `limit`), and when the next of the others comes due (None: none, or more are due than `limit`)."""
        rows = await self._executor.fetch(
            f"""
            SELECT {TASK_COLUMNS}, plan_not_before, plan_not_before <= clock_timestamp() AS due FROM tasks
            WHERE tenant_id = $1 AND plan_not_before IS NOT NULL AND status = 'pending'
            ORDER BY plan_not_before LIMIT $2 + 1
            """,
            self._tenant_id,
            limit,
        )
        columns = TASK_COLUMNS.split(", ")
        due = [task_from_row({column: row[column] for column in columns}) for row in rows if row["due"]][:limit]
        later = [row["plan_not_before"] for row in rows if not row["due"]]
        return due, min(later, default=None)

    async def store_plan(self, task: Task) -> bool:
        """The plan of a task whose planning waited: stored, and the task's wait ended, only while it is still
        pending without subtasks (a cancel or a deadline may have ended it meanwhile); False when it was not."""
        decomposition = task.decomposition.model_dump(mode="json") if task.decomposition else None
        subtasks = insert_plan(
            "(SELECT id FROM planned)", plan="$5", trace_id="(SELECT trace_id FROM planned)", tenant_id="$4"
        )
        stored = await self._executor.fetchval(
            f"""
            WITH planned AS (
                UPDATE tasks
                SET plan_not_before = NULL, plan_waits = 0, status_reason = NULL, decomposition = $2,
                    decomposition_fallback = $3, updated_at = greatest(now(), updated_at)
                WHERE id = $1 AND tenant_id = $4 AND status = 'pending' AND plan_not_before IS NOT NULL
                  AND NOT EXISTS (SELECT FROM subtasks WHERE task_id = $1)
                RETURNING id, trace_id
            ),
            stored AS ({subtasks} WHERE EXISTS (SELECT FROM planned))
            SELECT count(*) > 0 FROM planned
            """,
            task.id,
            decomposition,
            task.decomposition_fallback,
            self._tenant_id,
            [plan_entry(subtask, position) for position, subtask in enumerate(task.subtasks)],
        )
        return bool(stored)
