"""What a tool call knows: the subtask attempt it serves (tools are built per attempt) and the clients it may use."""

from dataclasses import dataclass
from typing import Any

import structlog

from agent.tools.data_source import DataSourcePool
from agent.tools.workspace import Workspace
from shared.config import Settings
from shared.database import DatabaseManager
from shared.models import Assignment, ToolCall
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)

# The audit keeps enough of each argument and outcome to see what happened, not whole file contents.
MAX_AUDITED_ARGUMENT_CHARS = 2000
MAX_AUDITED_OUTCOME_CHARS = 500


@dataclass(frozen=True)
class ToolContext:
    settings: Settings
    db: DatabaseManager
    redis: RedisManager
    data_source: DataSourcePool  # database_query's only database; `db` is the control plane's, for the audit
    workspace: Workspace
    agent_id: str
    task_id: str
    subtask_id: str
    attempt: int
    # The attempt's offer and the orchestrator's signature of it: what proves to the orchestrator which attempt a
    # tool's request comes from (submit_follow_up_subtask).
    delivery_token: str | None = None
    assignment: Assignment | None = None
    trace_id: str | None = None  # the offer's: the log lines of the tool calls carry it

    async def record_call(
        self, tool_name: str, arguments: dict[str, Any], *, is_error: bool, outcome: str, duration_ms: float
    ) -> None:
        """Append the call to `tool_calls`; an audit failure is logged and never fails the tool call."""
        call = ToolCall(
            agent_id=self.agent_id,
            task_id=self.task_id,
            subtask_id=self.subtask_id,
            attempt=self.attempt,
            tool_name=tool_name,
            arguments={name: _shorten(value) for name, value in arguments.items()},
            is_error=is_error,
            outcome=_shorten(outcome, MAX_AUDITED_OUTCOME_CHARS),
            duration_ms=duration_ms,
        )
        try:
            await self.db.repositories().audit.record_tool_call(call)
        except Exception as error:  # the database being down must not cost the subtask its tool
            log.warning("tool_call_audit_failed", tool=tool_name, subtask_id=self.subtask_id, error=repr(error))


class ToolBinding:
    """The attempt a tool server serves, bound when the attempt begins: a warm CLI gets its tool server before it
    knows which attempt it will run, so the tools look their context up here at each call."""

    def __init__(self, context: ToolContext | None = None) -> None:
        self._context = context

    @property
    def context(self) -> ToolContext | None:
        return self._context

    def bind(self, context: ToolContext) -> None:
        self._context = context

    def unbind(self) -> None:
        """No attempt any more: a call now (a CLI outliving its attempt) is refused, never run for the last one."""
        self._context = None


def _shorten(value: Any, limit: int = MAX_AUDITED_ARGUMENT_CHARS) -> Any:
    """What the audit keeps of a value: long text cut, and what PostgreSQL text cannot hold (NUL, a lone surrogate)
    spelled out, since a call whose arguments could not be stored would go unaudited."""
    if isinstance(value, str):
        value = _storable(value)
        return f"{value[:limit]}... [{len(value) - limit} more characters]" if len(value) > limit else value
    if isinstance(value, dict):
        return {_storable(str(key)): _shorten(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [_shorten(item, limit) for item in value]
    return value


def _storable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
