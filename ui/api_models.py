"""The dashboard's reading of the orchestrator's answers that are not shared domain models.

These models ignore fields they do not know, and give the fields newer orchestrators added a default, so one
dashboard reads an older orchestrator (the field is missing: the view says so) and a newer one (an added field is
skipped) alike. The domain models in shared.models refuse unknown fields on purpose; a view must not.
"""

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.models import CostEstimate, LogLevel, StatusReason, TaskStatus, TaskType, TokenUsage


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TaskRow(Lenient):
    """One row of GET /tasks."""

    id: str
    user_id: str | None = None
    description: str
    task_type: TaskType = TaskType.GENERAL
    status: TaskStatus
    status_reason: StatusReason | None = None
    error: str | None = None
    decomposition_fallback: bool = False
    created_at: datetime
    updated_at: datetime
    subtasks_total: int = 0
    subtasks_completed: int = 0
    subtasks_failed: int | None = None  # None: the orchestrator does not say
    cost_usd: float | None = None
    total_tokens: int | None = None


class TaskPage(Lenient):
    tasks: list[TaskRow]
    total: int
    limit: int = 50
    offset: int = 0
    retention_days: int | None = None
    retention_known: bool = False  # whether the orchestrator said anything about retention at all


class SubtaskNotes(Lenient):
    """What a task's detail says about one subtask beyond the shared model: why it was retried or is blocked."""

    last_error: str | None = None
    blocked_by: list[str] = Field(default_factory=list)


class AttemptSpan(Lenient):
    """One attempt of one subtask: queued -> assigned -> running -> ended (GET /tasks/{id}/timeline)."""

    subtask_id: str
    attempt: int
    agent_id: str | None = None
    status: str
    queued_at: datetime | None = None
    assigned_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    wait_ms: float | None = None
    run_ms: float | None = None
    error: str | None = None
    task_id: str | None = None  # in an agent's attempts, which task the attempt served


class ToolCallRecord(Lenient):
    tool_name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    is_error: bool = False
    outcome: str = ""
    duration_ms: float = 0.0
    created_at: datetime | None = None


class AttemptToolCalls(Lenient):
    subtask_id: str | None = None
    attempt: int | None = None
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)


class AgentRecord(Lenient):
    """An agent as the tenant's work remembers it (GET /agents/history), alive or not."""

    agent_id: str
    role: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    alive: bool = False
    subtasks_completed: int = 0
    subtasks_failed: int = 0
    last_error: str | None = None


class HistoryBucket(Lenient):
    """One minute of GET /metrics/history."""

    minute: datetime
    subtasks_completed: int = 0
    subtasks_failed: int = 0
    tasks_completed: int = 0
    tasks_failed: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    queue_depth: int = 0
    failure_rate: float | None = None
    cost_usd: float = 0.0


class CallTotals(Lenient):
    """What a group of model calls cost and used, by the cost ledger."""

    cost_usd: float = 0.0
    calls: int = 0
    tokens: TokenUsage = Field(default_factory=TokenUsage)


class AttemptCost(Lenient):
    subtask_id: str
    attempt: int
    agent_id: str | None = None
    totals: CallTotals = Field(default_factory=CallTotals)


class SubtaskCost(Lenient):
    subtask_id: str
    totals: CallTotals = Field(default_factory=CallTotals)
    attempts: list[AttemptCost] = Field(default_factory=list)


class ModelCall(Lenient):
    """One row of the cost ledger: one call to Claude."""

    purpose: str
    subtask_id: str | None = None
    attempt: int | None = None
    agent_id: str | None = None
    model: str
    tokens: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    price_version: int | None = None
    created_at: datetime | None = None


class TaskCost(Lenient):
    """GET /tasks/{id}/cost: what a task cost, its planning and its attempts apart, by subtask and by call."""

    task_id: str
    total_usd: float = 0.0
    decomposition_usd: float = 0.0
    attempts_usd: float = 0.0
    total: CallTotals = Field(default_factory=CallTotals)
    by_purpose: dict[str, CallTotals] = Field(default_factory=dict)
    subtasks: list[SubtaskCost] = Field(default_factory=list)
    model_calls: list[ModelCall] = Field(default_factory=list)

    def subtask(self, subtask_id: str) -> SubtaskCost | None:
        return next((item for item in self.subtasks if item.subtask_id == subtask_id), None)

    def attempt(self, subtask_id: str, attempt: int) -> AttemptCost | None:
        subtask = self.subtask(subtask_id)
        return next((item for item in subtask.attempts if item.attempt == attempt), None) if subtask else None


class ModelSpend(Lenient):
    model: str
    totals: CallTotals = Field(default_factory=CallTotals)


class DaySpend(Lenient):
    day: date
    totals: CallTotals = Field(default_factory=CallTotals)
    models: list[ModelSpend] = Field(default_factory=list)


class TenantSpend(Lenient):
    tenant_id: str
    totals: CallTotals = Field(default_factory=CallTotals)
    today_usd: float = 0.0


class SpendReport(Lenient):
    """GET /spend: the tenant's spend per UTC day against its daily budget, or (an operator's) every tenant's."""

    by: str = "day"
    days: int = 1
    since: date
    today_usd: float = 0.0
    daily_budget_usd: float | None = None  # None: no daily budget, or an orchestrator that does not say
    left_today_usd: float | None = None
    total: CallTotals = Field(default_factory=CallTotals)
    daily: list[DaySpend] = Field(default_factory=list)
    tenants: list[TenantSpend] = Field(default_factory=list)


class PlannedStep(Lenient):
    """One subtask of a dry run's plan: nothing of it is stored."""

    id: str
    description: str
    required_capabilities: list[str] = Field(default_factory=list)
    dependencies: list[str] = Field(default_factory=list)
    priority: int = 5


class PlanningCall(Lenient):
    duration_ms: float = 0.0
    token_usage: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float | None = None


class DryRun(Lenient):
    """POST /tasks?dry_run=true: the plan and what it may cost, before anything is stored or run."""

    subtasks: list[PlannedStep] = Field(default_factory=list)
    estimate: CostEstimate | None = None
    decomposition_fallback: bool = False
    decomposition: PlanningCall = Field(default_factory=PlanningCall)


@dataclass(frozen=True)
class TaskRequest:
    """What the submit form sends: POST /tasks's body, for a task or a dry run of it."""

    description: str
    user_id: str | None = None
    task_type: TaskType = TaskType.GENERAL
    max_cost_usd: float | None = None
    deadline_seconds: int | None = None

    def body(self) -> dict[str, Any]:
        values = {
            "description": self.description,
            "user_id": self.user_id or None,
            "task_type": self.task_type.value,
            "max_cost_usd": self.max_cost_usd,
            "deadline_seconds": self.deadline_seconds,
        }
        return {name: value for name, value in values.items() if value is not None}


class LogLine(Lenient):
    id: int | None = None
    agent_id: str
    task_id: str | None = None
    subtask_id: str | None = None
    trace_id: str | None = None
    level: LogLevel = LogLevel.INFO
    message: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


@dataclass(frozen=True)
class TaskQuery:
    """A search of GET /tasks: text or id, user, status, creation dates, and one page of the matches."""

    text: str = ""
    user_id: str = ""
    status: TaskStatus | None = None
    reason: str | None = None  # a status_reason code, of the task or one of its subtasks
    created_from: date | None = None
    created_to: date | None = None  # inclusive: the whole day
    limit: int = 25
    offset: int = 0

    def params(self) -> dict[str, str | int]:
        values: dict[str, str | int | None] = {
            "q": self.text.strip() or None,
            "user_id": self.user_id.strip() or None,
            "status": self.status.value if self.status else None,
            "reason": self.reason,
            "created_after": _day_start(self.created_from),
            "created_before": _day_start(self.created_to, next_day=True),
            "limit": self.limit,
            "offset": self.offset,
        }
        return {name: value for name, value in values.items() if value is not None}


def _day_start(day: date | None, *, next_day: bool = False) -> str | None:
    """Local midnight of a day (or of the day after), as the ISO datetime with offset that the API takes."""
    if day is None:
        return None
    moment = datetime.combine(day, time.min).astimezone()
    if next_day:
        moment = datetime.combine(date.fromordinal(day.toordinal() + 1), time.min).astimezone()
    return moment.isoformat()


@dataclass(frozen=True)
class LogQuery:
    agent_id: str | None = None
    task_id: str | None = None
    subtask_id: str | None = None
    trace_id: str | None = None
    level: LogLevel | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200

    def params(self) -> dict[str, str | int]:
        values = {
            "agent_id": self.agent_id,
            "task_id": self.task_id,
            "subtask_id": self.subtask_id,
            "trace_id": self.trace_id,
            "level": self.level.value if self.level else None,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "limit": self.limit,
        }
        return {name: value for name, value in values.items() if value is not None}
