"""Append-only audit: what agents logged and every tool call they made, each read only within its tenant.

An entry is written with the writer's tenant (an agent serves one tenant's fleet) and listed only for it, so another
tenant's task id as a filter finds nothing.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.database.executor import Executor
from shared.models import AgentLog, LogLevel, ToolCall

LOG_COLUMNS = "id, agent_id, task_id, subtask_id, trace_id, level, message, metadata, created_at"
TOOL_CALL_COLUMNS = (
    "id, agent_id, task_id, subtask_id, attempt, tool_name, arguments, is_error, outcome, duration_ms, created_at"
)


class AuditRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def log_agent_activity(
        self,
        agent_id: str,
        task_id: str | None,
        level: LogLevel,
        message: str,
        metadata: dict[str, Any] | None = None,
        *,
        subtask_id: str | None = None,
        trace_id: str | None = None,
    ) -> AgentLog:
        row = await self._executor.fetchrow(
            f"""
            INSERT INTO agent_logs (agent_id, task_id, subtask_id, level, message, metadata, tenant_id, trace_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            RETURNING {LOG_COLUMNS}
            """,
            agent_id,
            task_id,
            subtask_id,
            level.value,
            message,
            metadata or {},
            self._tenant_id,
            trace_id,
        )
        return AgentLog.model_validate(dict(row))

    async def log_agent_activities(self, entries: Sequence[AgentLog]) -> None:
        """Insert several entries, each dated when it happened, in one pipelined round trip: all of them or none."""
        await self._executor.executemany(
            """
            INSERT INTO agent_logs (agent_id, task_id, subtask_id, level, message, metadata, created_at, tenant_id,
                                    trace_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            [
                (
                    entry.agent_id,
                    entry.task_id,
                    entry.subtask_id,
                    entry.level.value,
                    entry.message,
                    entry.metadata,
                    entry.created_at,
                    self._tenant_id,
                    entry.trace_id,
                )
                for entry in entries
            ],
        )

    async def list_agent_logs(
        self,
        *,
        agent_id: str | None = None,
        task_id: str | None = None,
        subtask_id: str | None = None,
        trace_id: str | None = None,
        level: LogLevel | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AgentLog]:
        """This tenant's entries, newest first, each filter optional."""
        rows = await self._executor.fetch(
            f"""
            SELECT {LOG_COLUMNS} FROM agent_logs
            WHERE tenant_id = $7 AND ($1::text IS NULL OR agent_id = $1) AND ($2::text IS NULL OR task_id = $2)
              AND ($3::text IS NULL OR level = $3)
              AND ($4::timestamptz IS NULL OR created_at >= $4) AND ($5::timestamptz IS NULL OR created_at <= $5)
              AND ($8::text IS NULL OR subtask_id = $8) AND ($9::text IS NULL OR trace_id = $9)
            ORDER BY created_at DESC, id DESC
            LIMIT $6
            """,
            agent_id,
            task_id,
            level.value if level else None,
            since,
            until,
            limit,
            self._tenant_id,
            subtask_id,
            trace_id,
        )
        return [AgentLog.model_validate(dict(row)) for row in rows]

    async def record_tool_call(self, call: ToolCall) -> ToolCall:
        row = await self._executor.fetchrow(
            f"""
            INSERT INTO tool_calls (agent_id, task_id, subtask_id, attempt, tool_name, arguments, is_error, outcome,
                                    duration_ms, created_at, tenant_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            RETURNING {TOOL_CALL_COLUMNS}
            """,
            call.agent_id,
            call.task_id,
            call.subtask_id,
            call.attempt,
            call.tool_name,
            call.arguments,
            call.is_error,
            call.outcome,
            call.duration_ms,
            call.created_at,
            self._tenant_id,
        )
        return ToolCall.model_validate(dict(row))

    async def list_tool_calls(self, task_id: str) -> list[ToolCall]:
        """This tenant's tool calls of one task, by subtask, attempt and time."""
        rows = await self._executor.fetch(
            f"""
            SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE task_id = $1 AND tenant_id = $2
            ORDER BY subtask_id, attempt, created_at, id
            """,
            task_id,
            self._tenant_id,
        )
        return [ToolCall.model_validate(dict(row)) for row in rows]
