"""Attempts as a timeline: when each attempt of a subtask was queued, handed to its agent, started and ended.

A finished attempt is its applied result row (which carries its queue and assignment times, copied when the result
was recorded; an attempt the provider could not serve has one more such row per wait, with the status
`provider_wait`); the attempt under way is the subtask's current one (queued, running, or cancelled before it ended).
Its agent started it `execution_time` seconds before it reported; a running attempt started when its agent accepted
the offer. Late and duplicate results changed nothing and are not attempts.
"""

from datetime import datetime

from pydantic import BaseModel, Field

from shared.database.executor import Executor

# An applied result (alias r), joined with its subtask (alias s): one finished attempt.
FINISHED_ATTEMPT = """
    r.subtask_id, r.task_id, r.attempt, r.agent_id,
    CASE WHEN r.provider_wait IS NULL THEN r.status ELSE 'provider_wait' END AS status, r.queued_at, r.assigned_at,
    r.created_at - make_interval(secs => r.execution_time) AS started_at, r.created_at AS ended_at,
    extract(epoch FROM r.assigned_at - r.queued_at) * 1000 AS wait_ms, r.execution_time * 1000 AS run_ms, r.error,
    s.position
"""
# A subtask (alias s) whose current attempt has no applied result: queued, running, or cancelled before it ended. A
# queued attempt's wait is the time it has waited so far; one cancelled on the queue waited until it was cancelled.
CURRENT_ATTEMPT = """
    s.id AS subtask_id, s.task_id, s.attempt_count AS attempt, s.assigned_agent AS agent_id, s.status, s.queued_at,
    s.assigned_at, s.accepted_at AS started_at, CASE WHEN s.status = 'cancelled' THEN s.updated_at END AS ended_at,
    extract(epoch FROM coalesce(s.assigned_at, CASE s.status WHEN 'queued' THEN clock_timestamp()
                                                              WHEN 'cancelled' THEN s.updated_at END)
                       - s.queued_at) * 1000 AS wait_ms,
    NULL::float8 AS run_ms, NULL::text AS error, s.position
"""
# The subtask (alias s) has a current attempt that has not ended with a result (queued, running, or cancelled).
UNFINISHED = """
    s.attempt_count > 0 AND s.status NOT IN ('completed', 'failed')
    AND NOT EXISTS (
        SELECT FROM subtask_results done
        WHERE done.subtask_id = s.id AND done.attempt = s.attempt_count AND done.applied AND done.provider_wait IS NULL
    )
"""
ATTEMPT_FIELDS = (
    "subtask_id, task_id, attempt, agent_id, status, queued_at, assigned_at, started_at, ended_at, wait_ms, run_ms, "
    "error"
)


class AttemptRecord(BaseModel):
    """One attempt of one subtask, as the timeline shows it."""

    subtask_id: str
    task_id: str
    attempt: int = Field(ge=1)
    agent_id: str | None = Field(description="The agent it was handed to; null while it waits on the queue")
    status: str = Field(
        description="completed or failed once it ended, provider_wait when the provider could not serve it (the same "
        "attempt then runs again); else its subtask's: queued, running, cancelled"
    )
    queued_at: datetime | None = Field(description="When it was queued; null for results recorded before 0015")
    assigned_at: datetime | None = Field(description="When an agent took it; null if none did")
    started_at: datetime | None = Field(description="When its agent started it (a running attempt: accepted it)")
    ended_at: datetime | None = Field(description="When its result was reported, or it was cancelled")
    wait_ms: float | None = Field(description="Queued -> assigned; for a queued attempt, its wait so far")
    run_ms: float | None = Field(description="How long its agent ran it, for an attempt that ended")
    error: str | None = Field(description="Why it failed, for a failed attempt")


class AttemptRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def task_timeline(self, task_id: str) -> list[AttemptRecord] | None:
        """Every attempt of the task's subtasks, by subtask (plan order) then attempt; None when the task is not this
        tenant's. Cost: the task's primary key, then its results and subtasks through their task_id indexes (well
        under a millisecond); a second statement only for a task that has no attempt yet."""
        rows = await self._executor.fetch(
            f"""
            WITH task AS (SELECT id FROM tasks WHERE id = $1 AND tenant_id = $2)
            SELECT {ATTEMPT_FIELDS} FROM (
                SELECT {FINISHED_ATTEMPT} FROM subtask_results r JOIN subtasks s ON s.id = r.subtask_id
                WHERE r.task_id = (SELECT id FROM task) AND r.applied
                UNION ALL
                SELECT {CURRENT_ATTEMPT} FROM subtasks s WHERE s.task_id = (SELECT id FROM task) AND {UNFINISHED}
            ) attempts
            ORDER BY position, attempt, ended_at NULLS LAST
            """,
            task_id,
            self._tenant_id,
        )
        if not rows:
            found = await self._executor.fetchval(
                "SELECT true FROM tasks WHERE id = $1 AND tenant_id = $2", task_id, self._tenant_id
            )
            return [] if found else None
        return [AttemptRecord.model_validate(dict(row)) for row in rows]

    async def agent_attempts(self, agent_id: str, limit: int) -> list[AttemptRecord]:
        """The agent's `limit` newest attempts of this tenant's work, those running first. Cost: `limit` applied
        results through subtask_results_tenant_agent_idx (each with its subtask, by primary key) and the agent's
        running attempts through subtasks_assigned_agent_idx (well under a millisecond over 60,000 results)."""
        rows = await self._executor.fetch(
            f"""
            SELECT {ATTEMPT_FIELDS} FROM (
                (SELECT {CURRENT_ATTEMPT} FROM subtasks s
                 WHERE s.assigned_agent = $1 AND s.status = 'running' AND s.tenant_id = $2)
                UNION ALL
                (SELECT {FINISHED_ATTEMPT} FROM subtask_results r JOIN subtasks s ON s.id = r.subtask_id
                 WHERE r.tenant_id = $2 AND r.agent_id = $1 AND r.applied
                 ORDER BY r.created_at DESC LIMIT $3)
            ) attempts
            ORDER BY ended_at DESC NULLS FIRST, assigned_at DESC
            LIMIT $3
            """,
            agent_id,
            self._tenant_id,
            limit,
        )
        return [AttemptRecord.model_validate(dict(row)) for row in rows]
