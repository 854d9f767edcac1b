"""What GET /isolation-report reads in PostgreSQL: each recorded attempt's isolation facts, every audited tool call
with the task its subtask really belongs to, and every agent the tenant's audit has seen.

Newest first and capped: the report says when it looked at only the latest rows.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.database.executor import Executor

ATTEMPTS_SQL = """
SELECT r.agent_id, r.task_id, r.subtask_id, r.attempt, r.delivery_token, r.role_config_hash, r.claude_session_id,
       r.claude_config_dir, r.allowed_tools, r.created_at
FROM subtask_results r JOIN tasks t ON t.id = r.task_id
WHERE t.tenant_id = $1
ORDER BY r.created_at DESC, r.result_id
LIMIT $2
"""

TOOL_CALLS_SQL = """
SELECT c.id, c.agent_id, c.task_id, c.subtask_id, c.attempt, c.tool_name, c.arguments, c.is_error,
       s.task_id AS subtask_task_id
FROM tool_calls c LEFT JOIN subtasks s ON s.id = c.subtask_id
WHERE c.tenant_id = $1
ORDER BY c.created_at DESC, c.id DESC
LIMIT $2
"""

AGENTS_SEEN_SQL = """
SELECT r.agent_id FROM subtask_results r JOIN tasks t ON t.id = r.task_id WHERE t.tenant_id = $1
UNION SELECT agent_id FROM tool_calls WHERE tenant_id = $1
UNION SELECT agent_id FROM agent_logs WHERE tenant_id = $1
"""


@dataclass(frozen=True)
class RecordedAttempt:
    """One result as reported: which attempt it was and what isolated it (None: not recorded)."""

    agent_id: str
    task_id: str
    subtask_id: str
    attempt: int
    delivery_token: str | None
    role_config_hash: str | None
    claude_session_id: str | None
    claude_config_dir: str | None
    allowed_tools: list[str] | None
    created_at: datetime


@dataclass(frozen=True)
class AuditedToolCall:
    """A tool call as audited, with the task its subtask belongs to (None: no such subtask)."""

    id: int
    agent_id: str
    task_id: str
    subtask_id: str | None
    attempt: int | None
    tool_name: str
    arguments: dict[str, Any]
    is_error: bool
    subtask_task_id: str | None


class IsolationRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def latest_attempts(self, limit: int) -> list[RecordedAttempt]:
        """The tenant's latest `limit` results, newest first."""
        rows = await self._executor.fetch(ATTEMPTS_SQL, self._tenant_id, limit)
        return [RecordedAttempt(**dict(row)) for row in rows]

    async def latest_tool_calls(self, limit: int) -> list[AuditedToolCall]:
        """The tenant's latest `limit` tool calls, newest first."""
        rows = await self._executor.fetch(TOOL_CALLS_SQL, self._tenant_id, limit)
        return [AuditedToolCall(**dict(row)) for row in rows]

    async def agents_seen(self) -> set[str]:
        """Every agent id in the tenant's results, tool calls and agent logs."""
        return {row["agent_id"] for row in await self._executor.fetch(AGENTS_SEEN_SQL, self._tenant_id)}
