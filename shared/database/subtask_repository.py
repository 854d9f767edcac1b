"""Subtasks and their state machine.

Every transition is a conditional UPDATE that names the state (and, while an attempt is live, the
attempt number and the delivery token of its current offer) it moves from, so a duplicate, late, stale
or racing caller finds no row and changes nothing: delivery is at least once, but each attempt runs
on one agent at a time and completes exactly once.

Each claim draws a fresh delivery token. The agent accepts the offer (`accept_delivery`) before it runs
it, and only an offer nobody accepted can be taken back (`unclaim`), so an offer never reaches two
agents under one identity; results apply only with the token of the current offer.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.database.executor import Executor
from shared.models import QueuedSubtask, RunningAttempt, StatusReason, SubTask, SubTaskStatus

SUBTASK_COLUMNS = (
    "id, task_id, description, required_capabilities, dependencies, priority, estimated_duration, task_type, "
    "status, attempt_count, failed_agent_ids, assigned_agent, assigned_at, assignment_latency_ms, "
    "delivery_token, created_at, updated_at, trace_id, status_reason, attempt_base, last_error, not_before, "
    "provider_waits"
)
TOUCH = "updated_at = greatest(now(), updated_at)"
# An attempt waiting on the provider is not claimed before its not_before, whatever queue item names it (a stray
# copy from before its wait); the dispatcher holds its item until then by its own clock, which may run this far ahead.
CLOCK_SKEW_ALLOWANCE = "interval '1 second'"
# Nothing of a paused task is offered: its queued subtasks stay queued, and their queue items go stale.
NOT_PAUSED = "NOT EXISTS (SELECT FROM tasks paused WHERE paused.id = subtasks.task_id AND paused.status = 'paused')"
# queued → running for each (subtask id, attempt, agent id) of three parallel arrays, when that attempt is queued
# (and due, if it waited on the provider) and its task is not paused.
# One clock reading for assigned_at and the wait it ends, so queued_at = assigned_at - assignment_latency_ms exactly.
CLAIM = f"""
    UPDATE subtasks
    SET status = 'running', assigned_agent = claims.agent_id, assigned_at = moment.now,
        assignment_latency_ms = greatest(0, extract(epoch FROM moment.now - queued_at) * 1000),
        delivery_token = gen_random_uuid()::text, accepted_at = NULL, status_reason = NULL, not_before = NULL, {TOUCH}
    FROM unnest($1::text[], $2::int[], $3::text[]) AS claims (subtask_id, attempt, agent_id),
         (SELECT clock_timestamp() AS now) AS moment
    WHERE id = claims.subtask_id AND status = 'queued' AND attempt_count = claims.attempt AND {NOT_PAUSED}
      AND (not_before IS NULL OR not_before <= moment.now + {CLOCK_SKEW_ALLOWANCE})
    RETURNING {SUBTASK_COLUMNS}
"""

# Statements run for every subtask look their rows up by key as a lateral subquery per key (its LIMIT or GROUP BY
# keeps it from being flattened into a join), not with `key = ANY ($1)`: an asyncpg connection keeps the generic
# plan of a prepared statement, and one made while the table was small (a fresh database, not analyzed yet) reads it
# whole, so every statement would cost more as history grows. A probe by key is the cheaper plan at any size.
#
# The outputs of a claimed subtask's dependencies (their applied completions: one each), by dependency id: one index
# probe per dependency (`subtask_id = ANY (dependencies)` read subtask_results whole once per claimed row).
DEPENDENCY_OUTPUTS = """
    SELECT coalesce(jsonb_object_agg(dependency.id, completion.output), '{}'::jsonb)
    FROM unnest(claimed.dependencies) AS dependency (id)
    CROSS JOIN LATERAL (
        SELECT r.output FROM subtask_results r
        WHERE r.subtask_id = dependency.id AND r.applied AND r.status = 'completed'
        LIMIT 1
    ) AS completion
"""

# running → completed for each (subtask id, attempt, delivery token) of three parallel arrays, when that offer is the
# running one.
COMPLETE_ATTEMPTS = f"""
    UPDATE subtasks SET status = 'completed', {TOUCH}
    FROM unnest($1::text[], $2::int[], $3::text[]) AS finished (subtask_id, attempt, delivery_token)
    WHERE id = finished.subtask_id AND status = 'running' AND attempt_count = finished.attempt
      AND subtasks.delivery_token = finished.delivery_token
    RETURNING {", ".join(f"subtasks.{column.strip()}" for column in SUBTASK_COLUMNS.split(","))}
"""


def _queue_ready(tasks: str, completed_meanwhile: str = "SELECT NULL::text WHERE false") -> str:
    """pending → queued (next attempt) for the subtasks `tasks` selects (a condition on `s`) whose dependencies have
    all completed: the one statement of the ready rule. `completed_meanwhile` selects ids to count as completed that
    the statement's snapshot does not show so yet (completed in the same statement); no RETURNING clause."""
    return f"""
        UPDATE subtasks s
        SET status = 'queued', attempt_count = s.attempt_count + 1, queued_at = clock_timestamp(), {TOUCH}
        WHERE {tasks} AND s.status = 'pending'
          AND NOT EXISTS (
              SELECT 1 FROM subtasks d
              WHERE d.task_id = s.task_id AND d.id = ANY (s.dependencies) AND d.status <> 'completed'
                AND d.id NOT IN ({completed_meanwhile})
          )
    """


def _by_priority(subtasks: Iterable[SubTask]) -> list[SubTask]:
    return sorted(subtasks, key=lambda subtask: -subtask.priority)


SUBTASK_FIELDS = [column.strip() for column in SUBTASK_COLUMNS.split(",")]


def subtask_from_row(row: Mapping[str, Any]) -> SubTask:
    return SubTask.model_validate(dict(row))


@dataclass(frozen=True)
class AttemptTimes:
    """When an attempt was queued and handed to its agent: what its result row records for the timeline."""

    queued_at: datetime | None = None
    assigned_at: datetime | None = None  # None when it ended without reaching an agent

    @classmethod
    def of(cls, subtask: SubTask) -> "AttemptTimes":
        """The times of the subtask's current attempt. The claim stores the wait it ended (assignment_latency_ms,
        measured from queued_at) beside assigned_at, so the queue time follows without another column."""
        if subtask.assigned_at is None or subtask.assignment_latency_ms is None:
            return cls()
        return cls(subtask.assigned_at - timedelta(milliseconds=subtask.assignment_latency_ms), subtask.assigned_at)


@dataclass(frozen=True)
class RetriedAttempt:
    """A failed attempt that was queued again as the next one: the subtask as it is now, and the failed attempt's
    times (the retry clears them from the subtask)."""

    subtask: SubTask
    failed_attempt: AttemptTimes


@dataclass(frozen=True)
class CancelledSubtask:
    """A subtask a cancel or a deadline ended, and the attempt an agent was running for it, if one was."""

    task_id: str
    subtask_id: str
    running: RunningAttempt | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> "CancelledSubtask":
        running = None
        if row["was"] == SubTaskStatus.RUNNING and row["delivery_token"] and row["assigned_agent"]:
            running = RunningAttempt(
                task_id=row["task_id"],
                subtask_id=row["id"],
                attempt=row["attempt_count"],
                delivery_token=row["delivery_token"],
                agent_id=row["assigned_agent"],
            )
        return cls(row["task_id"], row["id"], running)


@dataclass(frozen=True)
class ClaimedAttempt:
    """A claimed attempt and what its execution request needs besides the subtask."""

    subtask: SubTask
    task_description: str
    dependency_outputs: dict[str, str]  # subtask id -> output, for the dependencies that have one
    context_pack_id: str | None = None  # the task's context pack, if it names one


@dataclass(frozen=True)
class LockedTasks:
    """Tasks locked for a transaction: whose each subtask is, and which of them have a budget (max_cost_usd)."""

    owners: dict[str, str]  # subtask id -> task id
    budgeted: set[str]


def _subtask_part(row: Mapping[str, Any]) -> dict[str, Any]:
    return {column: row[column] for column in SUBTASK_FIELDS}


def _attempt_arrays(
    attempts: Sequence[tuple[str, int, str | None]],
) -> tuple[list[str], list[int], list[str | None]]:
    """(subtask id, attempt, agent id or delivery token) triples as the three parallel arrays the statements take."""
    return (
        [subtask_id for subtask_id, _, _ in attempts],
        [attempt for _, attempt, _ in attempts],
        [third for _, _, third in attempts],
    )


class SubtaskRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def _fetch_one(self, query: str, *args: Any) -> SubTask | None:
        row = await self._executor.fetchrow(query, *args)
        return None if row is None else subtask_from_row(row)

    async def get_subtask(self, subtask_id: str) -> SubTask | None:
        return await self._fetch_one(f"SELECT {SUBTASK_COLUMNS} FROM subtasks WHERE id = $1", subtask_id)

    async def list_for_task(self, task_id: str) -> list[SubTask]:
        rows = await self._executor.fetch(
            f"SELECT {SUBTASK_COLUMNS} FROM subtasks WHERE task_id = $1 ORDER BY position", task_id
        )
        return [subtask_from_row(row) for row in rows]

    async def queue_ready(self, task_id: str) -> list[SubTask]:
        """pending → queued (next attempt) for every subtask of the task whose dependencies have all completed.

        Callers that complete subtasks of the same task concurrently must hold the task's row lock
        (TaskRepository.lock_task); otherwise each may miss the other's uncommitted completion.
        """
        return await self.queue_ready_in([task_id])

    async def queue_ready_in(self, task_ids: Collection[str]) -> list[SubTask]:
        """`queue_ready` for several tasks in one statement, highest priority first."""
        if not task_ids:
            return []
        rows = await self._executor.fetch(
            f"{_queue_ready('s.task_id = ANY ($1::text[])')} RETURNING {SUBTASK_COLUMNS}", list(task_ids)
        )
        return _by_priority(subtask_from_row(row) for row in rows)

    async def claim(self, subtask_id: str, attempt: int, agent_id: str) -> SubTask | None:
        """queued → running on `agent_id`, recording when and how long after queueing it was assigned."""
        claimed = await self.claim_many([(subtask_id, attempt, agent_id)])
        return claimed[0] if claimed else None

    async def claim_many(self, claims: Sequence[tuple[str, int, str]]) -> list[SubTask]:
        """`claim` for several (subtask id, attempt, agent id) triples at once; returns the subtasks now running.

        A triple whose attempt is no longer queued is left out, and of two triples for one attempt only one wins.
        """
        if not claims:
            return []
        rows = await self._executor.fetch(CLAIM, *_attempt_arrays(claims))
        return [subtask_from_row(row) for row in rows]

    async def claim_for_delivery(self, claims: Sequence[tuple[str, int, str]]) -> list["ClaimedAttempt"]:
        """`claim_many`, and in the same round trip: mark the claimed subtasks' tasks in progress (once) and
        fetch what their execution requests carry besides the subtask: the task's description and the outputs
        of the dependencies (their counted completions)."""
        if not claims:
            return []
        rows = await self._executor.fetch(
            f"""
            WITH claimed AS ({CLAIM}),
            started AS (
                UPDATE tasks SET status = 'in_progress', updated_at = greatest(now(), updated_at)
                WHERE id IN (SELECT task_id FROM claimed) AND status = 'pending'
            )
            SELECT claimed.*, tasks.description AS task_description, tasks.context_pack_id,
                   ({DEPENDENCY_OUTPUTS}) AS dependency_outputs
            FROM claimed JOIN tasks ON tasks.id = claimed.task_id
            """,
            *_attempt_arrays(claims),
        )
        return [
            ClaimedAttempt(
                subtask_from_row(_subtask_part(row)),
                row["task_description"],
                row["dependency_outputs"],
                row["context_pack_id"],
            )
            for row in rows
        ]

    async def accept_delivery(self, subtask_id: str, delivery_token: str, agent_id: str) -> bool:
        """The agent takes the offer: only the current offer, made to this agent, that nobody took back."""
        accepted = await self._executor.fetchval(
            """
            UPDATE subtasks SET accepted_at = clock_timestamp()
            WHERE id = $1 AND status = 'running' AND delivery_token = $2 AND assigned_agent = $3
              AND accepted_at IS NULL
            RETURNING true
            """,
            subtask_id,
            delivery_token,
            agent_id,
        )
        return bool(accepted)

    async def unclaim(self, subtask_id: str, delivery_token: str) -> SubTask | None:
        """running → queued, same attempt, when its agent never accepted the offer (it refused, could not be
        reached, or has not answered yet); None when it did accept, or the offer is no longer current."""
        return await self._fetch_one(
            f"""
            UPDATE subtasks
            SET status = 'queued', assigned_agent = NULL, assigned_at = NULL, delivery_token = NULL, {TOUCH}
            WHERE id = $1 AND status = 'running' AND delivery_token = $2 AND accepted_at IS NULL
            RETURNING {SUBTASK_COLUMNS}
            """,
            subtask_id,
            delivery_token,
        )

    async def finish_attempt(
        self,
        subtask_id: str,
        attempt: int,
        delivery_token: str | None,
        status: SubTaskStatus,
        error: str | None = None,
    ) -> SubTask | None:
        """The running offer `delivery_token` of attempt N → completed or failed (with its `error`, kept as the
        subtask's last error), only if it is still current."""
        if status not in (SubTaskStatus.COMPLETED, SubTaskStatus.FAILED):
            raise ValueError(f"an attempt finishes as completed or failed, not {status}")
        return await self._fetch_one(
            f"""
            UPDATE subtasks SET status = $4, last_error = coalesce($5, last_error), {TOUCH}
            WHERE id = $1 AND status = 'running' AND attempt_count = $2 AND delivery_token = $3
            RETURNING {SUBTASK_COLUMNS}
            """,
            subtask_id,
            attempt,
            delivery_token,
            status.value,
            error,
        )

    async def complete_attempts_and_queue_ready(
        self, attempts: Sequence[tuple[str, int, str | None]]
    ) -> tuple[dict[str, SubTask], list[SubTask]]:
        """`finish_attempt(..., COMPLETED)` for several (subtask id, attempt, delivery token) of distinct subtasks,
        then `queue_ready_in` the tasks of those that completed, in one statement (under the same task locks): the
        subtasks that completed, by id (one whose offer is no longer the running one is left out), and those
        queued, highest priority first."""
        if not attempts:
            return {}, []
        # The queueing part reads the statement's snapshot, where what it completes is still running: it counts them
        # as completed by name.
        returned = ", ".join(SUBTASK_FIELDS)
        rows = await self._executor.fetch(
            f"""
            WITH completed AS ({COMPLETE_ATTEMPTS}),
            queued AS (
                {_queue_ready("s.task_id IN (SELECT task_id FROM completed)", "SELECT id FROM completed")}
                RETURNING {SUBTASK_COLUMNS}
            )
            SELECT true AS completed, {returned} FROM completed
            UNION ALL SELECT false, {returned} FROM queued
            """,
            *_attempt_arrays(attempts),
        )
        completed = {row["id"]: subtask_from_row(_subtask_part(row)) for row in rows if row["completed"]}
        queued = _by_priority(subtask_from_row(_subtask_part(row)) for row in rows if not row["completed"])
        return completed, queued

    async def retry_attempt(
        self,
        subtask_id: str,
        attempt: int,
        delivery_token: str | None,
        failed_agent_id: str,
        *,
        error: str | None = None,
        max_attempts: int | None = None,
    ) -> RetriedAttempt | None:
        """The running offer of attempt N → queued attempt N+1, remembering the agent it failed on and its `error`
        (the reason of the retry); None when the offer is not current, or when the subtask has had `max_attempts`
        since its attempt base (an operator's retry starts the count again). The new attempt names no agent: the
        one it failed on is not running it. The failed attempt's queue and assignment times come back from the same
        statement."""
        row = await self._executor.fetchrow(
            f"""
            UPDATE subtasks
            SET status = 'queued', attempt_count = attempt_count + 1, queued_at = clock_timestamp(),
                failed_agent_ids = CASE WHEN $4 = ANY (failed_agent_ids) THEN failed_agent_ids
                                        ELSE array_append(failed_agent_ids, $4) END,
                assigned_agent = NULL, assigned_at = NULL, assignment_latency_ms = NULL, delivery_token = NULL,
                last_error = coalesce($5, last_error), {TOUCH}
            FROM (SELECT queued_at AS was_queued_at, assigned_at AS was_assigned_at FROM subtasks WHERE id = $1) was
            WHERE id = $1 AND status = 'running' AND attempt_count = $2 AND delivery_token = $3
              AND ($6::int IS NULL OR attempt_count - attempt_base < $6)
            RETURNING {SUBTASK_COLUMNS}, was.was_queued_at, was.was_assigned_at
            """,
            subtask_id,
            attempt,
            delivery_token,
            failed_agent_id,
            error,
            max_attempts,
        )
        if row is None:
            return None
        retried = subtask_from_row(_subtask_part(row))
        return RetriedAttempt(retried, AttemptTimes(row["was_queued_at"], row["was_assigned_at"]))

    async def reopen_failed(self, task_id: str, subtask_ids: Collection[str] | None = None) -> list[SubTask]:
        """failed → pending for an operator's retry, for every failed subtask of the task (or those of
        `subtask_ids`): the attempts they had become their attempt base, so MAX_RETRIES counts afresh while the
        attempt numbers go on growing. `queue_ready` then queues them (their dependencies completed before)."""
        rows = await self._executor.fetch(
            f"""
            UPDATE subtasks
            SET status = 'pending', attempt_base = attempt_count, status_reason = NULL, assigned_agent = NULL,
                assigned_at = NULL, assignment_latency_ms = NULL, delivery_token = NULL, {TOUCH}
            WHERE task_id = $1 AND status = 'failed' AND ($2::text[] IS NULL OR id = ANY ($2::text[]))
            RETURNING {SUBTASK_COLUMNS}
            """,
            task_id,
            None if subtask_ids is None else list(subtask_ids),
        )
        return [subtask_from_row(row) for row in rows]

    async def unblock(self, task_id: str) -> list[str]:
        """blocked → pending for every blocked subtask of the task that no failed subtask is upstream of any more
        (after an operator's retry); the ids of those unblocked."""
        rows = await self._executor.fetch(
            f"""
            WITH RECURSIVE still_blocked (id) AS (
                SELECT s.id FROM subtasks s JOIN subtasks f ON f.id = ANY (s.dependencies)
                WHERE s.task_id = $1 AND f.task_id = $1 AND f.status = 'failed'
                UNION
                SELECT s.id FROM subtasks s JOIN still_blocked b ON b.id = ANY (s.dependencies)
                WHERE s.task_id = $1
            )
            UPDATE subtasks SET status = 'pending', status_reason = NULL, {TOUCH}
            WHERE task_id = $1 AND status = 'blocked' AND id NOT IN (SELECT id FROM still_blocked)
            RETURNING id
            """,
            task_id,
        )
        return [row["id"] for row in rows]

    async def block_dependents(self, task_id: str, failed_subtask_id: str) -> list[str]:
        """Every subtask that depends, directly or transitively, on a failed one can never run: blocked."""
        rows = await self._executor.fetch(
            f"""
            WITH RECURSIVE downstream (id) AS (
                SELECT s.id FROM subtasks s WHERE s.task_id = $1 AND $2 = ANY (s.dependencies)
                UNION
                SELECT s.id FROM subtasks s JOIN downstream d ON d.id = ANY (s.dependencies)
                WHERE s.task_id = $1
            )
            UPDATE subtasks SET status = 'blocked', {TOUCH}
            WHERE id IN (SELECT id FROM downstream) AND status = 'pending'
            RETURNING id
            """,
            task_id,
            failed_subtask_id,
        )
        return [row["id"] for row in rows]

    async def set_status_reasons(self, reasons: Sequence[tuple[str, int, StatusReason | None]]) -> list[str]:
        """Set (or clear, with None) the status reason of each (subtask id, attempt) still queued at that attempt;
        returns the ids of the subtasks changed.

        A subtask claimed meanwhile is left alone: the claim cleared its reason, and it no longer waits."""
        if not reasons:
            return []
        rows = await self._executor.fetch(
            f"""
            UPDATE subtasks SET status_reason = change.reason, {TOUCH}
            FROM unnest($1::text[], $2::int[], $3::jsonb[]) AS change (subtask_id, attempt, reason)
            WHERE id = change.subtask_id AND status = 'queued' AND attempt_count = change.attempt
              AND status_reason IS DISTINCT FROM change.reason
            RETURNING id
            """,
            [subtask_id for subtask_id, _, _ in reasons],
            [attempt for _, attempt, _ in reasons],
            [reason.model_dump(mode="json") if reason else None for _, _, reason in reasons],
        )
        return [row["id"] for row in rows]

    async def cancel_unfinished(self, task_ids: Collection[str]) -> list[CancelledSubtask]:
        """pending, queued and running → cancelled, for each of the tasks; a result that arrives later finds no live
        attempt. Each cancelled subtask with the attempt an agent was running, if one was (it is to be stopped)."""
        rows = await self._executor.fetch(
            f"""
            WITH unfinished AS (
                SELECT id, status FROM subtasks
                WHERE task_id = ANY ($1::text[]) AND status IN ('pending', 'queued', 'running')
                ORDER BY id FOR UPDATE
            )
            UPDATE subtasks SET status = 'cancelled', status_reason = NULL, {TOUCH}
            FROM unfinished WHERE subtasks.id = unfinished.id
            RETURNING subtasks.id, subtasks.task_id, unfinished.status AS was, subtasks.attempt_count,
                      subtasks.delivery_token, subtasks.assigned_agent
            """,
            list(task_ids),
        )
        return [CancelledSubtask.of(row) for row in rows]

    async def lock_tasks_of(self, subtask_ids: Collection[str]) -> "LockedTasks":
        """The task of each of the subtasks that exists and is this tenant's, by subtask id; those tasks' row locks
        are taken for the caller's transaction, in id order (TaskRepository.lock_tasks), in the same round trip,
        which also says which of them have a budget (read from the locked rows, so as they are now)."""
        rows = await self._executor.fetch(
            """
            WITH owners AS (
                SELECT owner.id, owner.task_id FROM unnest($1::text[]) AS wanted (id)
                CROSS JOIN LATERAL (
                    SELECT id, task_id FROM subtasks WHERE id = wanted.id AND tenant_id = $2 LIMIT 1
                ) AS owner
            ),
            locked AS (  -- one task after the other in id order, each locked as it is reached
                SELECT task.id, task.budgeted FROM (SELECT DISTINCT task_id FROM owners ORDER BY task_id) AS owner
                CROSS JOIN LATERAL (
                    SELECT id, max_cost_usd IS NOT NULL AS budgeted FROM tasks WHERE id = owner.task_id FOR UPDATE
                ) AS task
            )
            SELECT owners.id, owners.task_id, locked.budgeted FROM owners JOIN locked ON locked.id = owners.task_id
            """,
            list(subtask_ids),
            self._tenant_id,
        )
        return LockedTasks(
            {row["id"]: row["task_id"] for row in rows}, {row["task_id"] for row in rows if row["budgeted"]}
        )

    async def count_by_status(self, task_id: str) -> dict[SubTaskStatus, int]:
        return (await self.count_by_status_in([task_id])).get(task_id, {})

    async def count_by_status_in(self, task_ids: Collection[str]) -> dict[str, dict[SubTaskStatus, int]]:
        """Subtasks per status, for each of the tasks."""
        if not task_ids:
            return {}
        rows = await self._executor.fetch(
            """
            SELECT wanted.task_id, counted.status, counted.n FROM unnest($1::text[]) AS wanted (task_id)
            CROSS JOIN LATERAL (
                SELECT status, count(*) AS n FROM subtasks WHERE task_id = wanted.task_id GROUP BY status
            ) AS counted
            """,
            list(set(task_ids)),
        )
        counts: dict[str, dict[SubTaskStatus, int]] = {}
        for row in rows:
            counts.setdefault(row["task_id"], {})[SubTaskStatus(row["status"])] = row["n"]
        return counts

    async def count_queued(self) -> int:
        """This tenant's subtasks waiting for an agent: the measure of backpressure on its queue."""
        count: int = await self._executor.fetchval(
            "SELECT count(*) FROM subtasks WHERE tenant_id = $1 AND status = 'queued'", self._tenant_id
        )
        return count

    async def list_queued(self) -> list[QueuedSubtask]:
        """This tenant's queued subtasks that may be offered (their task is not paused), oldest first."""
        rows = await self._executor.fetch(
            f"""
            SELECT {SUBTASK_COLUMNS} FROM subtasks
            WHERE tenant_id = $1 AND status = 'queued' AND {NOT_PAUSED}
            ORDER BY queued_at
            """,
            self._tenant_id,
        )
        return [QueuedSubtask.for_subtask(subtask_from_row(row)) for row in rows]

    async def list_running(self) -> list[SubTask]:
        """This tenant's running subtasks."""
        rows = await self._executor.fetch(
            f"SELECT {SUBTASK_COLUMNS} FROM subtasks WHERE tenant_id = $1 AND status = 'running'", self._tenant_id
        )
        return [subtask_from_row(row) for row in rows]

    async def list_running_on(self, agent_id: str) -> list[SubTask]:
        """This tenant's subtasks running on `agent_id` (offered to it, whether it accepted yet or not)."""
        rows = await self._executor.fetch(
            f"""
            SELECT {SUBTASK_COLUMNS} FROM subtasks
            WHERE tenant_id = $1 AND status = 'running' AND assigned_agent = $2
            """,
            self._tenant_id,
            agent_id,
        )
        return [subtask_from_row(row) for row in rows]
