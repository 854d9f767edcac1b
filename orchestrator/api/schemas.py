"""Response bodies of the orchestrator API (the domain models are in shared.models)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.database.ledger_repository import CallTotals
from shared.models import (
    AgentCapability,
    AgentLog,
    AgentStatus,
    CostEstimate,
    DecompositionInfo,
    MaxCostUsd,
    SubTask,
    SubTaskResult,
    Task,
    TaskStatus,
    TaskSummary,
    TaskType,
    ToolCall,
)


class TaskDetailResponse(BaseModel):
    task: Task
    subtask_results: list[SubTaskResult]
    cost_usd: float = Field(
        0.0,
        ge=0,
        description="What the task cost so far, by the cost ledger: its planning calls and every result's turns, in "
        "USD (GET /tasks/{task_id}/cost has each call)",
    )
    total_tokens: int = Field(0, ge=0, description="Tokens of every model call of the task, planning included")

    @classmethod
    def of(cls, task: Task, results: list[SubTaskResult], spent: CallTotals) -> "TaskDetailResponse":
        """The detail with its totals from the ledger, counting every call (each attempt cost what it cost)."""
        return cls(task=task, subtask_results=results, cost_usd=spent.cost_usd, total_tokens=spent.tokens.total_tokens)


class PlannedSubtask(BaseModel):
    """One subtask of a plan, as Claude made it (no attempt has run)."""

    id: str
    description: str
    required_capabilities: list[AgentCapability]
    dependencies: list[str] = Field(description="Ids of the subtasks of this plan it waits for")
    priority: int
    task_type: TaskType
    estimated_duration: int | None = Field(None, description="Estimated seconds of work, when the plan gives one")

    @classmethod
    def of(cls, subtask: SubTask) -> "PlannedSubtask":
        return cls.model_validate(subtask.model_dump(include=set(cls.model_fields)))


class TaskDryRunResponse(BaseModel):
    """What POST /tasks?dry_run=true answers: the plan and its estimate; nothing was stored, queued or run."""

    status: Literal["dry_run"] = "dry_run"
    subtasks_count: int = Field(ge=0)
    subtasks: list[PlannedSubtask] = Field(description="The plan in order; its ids are not stored anywhere")
    estimate: CostEstimate | None = Field(
        description="What the plan may cost; null when a model it would run on has no price in MODEL_PRICES"
    )
    decomposition_fallback: bool = Field(description="True when Claude's plan was replaced by one subtask")
    decomposition: DecompositionInfo = Field(description="The planning call: its time, tokens and cost")
    trace_id: str = Field(description="The trace of the request; also its X-Request-ID")

    @classmethod
    def of(cls, task: Task, estimate: CostEstimate | None, trace_id: str) -> "TaskDryRunResponse":
        assert task.decomposition is not None
        return cls(
            subtasks_count=len(task.subtasks),
            subtasks=[PlannedSubtask.of(subtask) for subtask in task.subtasks],
            estimate=estimate,
            decomposition_fallback=task.decomposition_fallback,
            decomposition=task.decomposition,
            trace_id=trace_id,
        )


class TaskListResponse(BaseModel):
    tasks: list[TaskSummary]
    total: int = Field(ge=0)
    limit: int
    offset: int
    retention_days: int | None = Field(
        description="Ended tasks are removed this many days after they ended (RETENTION_DAYS); null: kept forever"
    )


class TaskCancelledResponse(BaseModel):
    task_id: str
    status: TaskStatus
    subtasks_cancelled: int = Field(ge=0)


class TaskRetriedResponse(BaseModel):
    """What an operator's retry did (POST /tasks/{task_id}/retry, POST /tasks/{task_id}/subtasks/{subtask_id}/retry)."""

    task_id: str
    status: TaskStatus = Field(description="The task's status after the retry: in_progress")
    subtasks_requeued: int = Field(ge=0, description="Failed subtasks that got a fresh attempt, queued now")


class TaskResumeRequest(BaseModel):
    """The body of POST /tasks/{task_id}/resume (optional; the query parameter works too)."""

    model_config = ConfigDict(extra="forbid")

    max_cost_usd: MaxCostUsd | None = None


class TaskResumedResponse(BaseModel):
    """What resuming a paused task did (POST /tasks/{task_id}/resume)."""

    task_id: str
    status: TaskStatus = Field(description="The task's status now: in_progress, or pending when nothing of it ran yet")
    max_cost_usd: float | None = Field(description="The task's budget in USD now")
    subtasks_requeued: int = Field(ge=0, description="Queued subtasks put on the queue again")


class AttemptToolCalls(BaseModel):
    """The tool calls one attempt of one subtask made, oldest first."""

    subtask_id: str | None
    attempt: int | None
    tool_calls: list[ToolCall]


class TaskToolCallsResponse(BaseModel):
    task_id: str
    attempts: list[AttemptToolCalls]


class AgentListResponse(BaseModel):
    agents: list[AgentStatus]


class AvailableAgentsResponse(BaseModel):
    available_agents: list[AgentStatus]


class AgentFailedResponse(BaseModel):
    """What declaring an agent failed did (POST /agents/{agent_id}/fail)."""

    agent_id: str
    status: Literal["failed"] = "failed"
    attempts_handed_back: int = Field(
        ge=0,
        description="Attempts the agent was running that were taken from it now: queued again for another agent "
        "(or failed, when it was their subtask's last try); 0 when it was declared failed already",
    )
    agent_notified: bool = Field(description="Whether the agent itself took the order to drain (POST /drain)")
    notification: str = Field(description="What became of telling the agent, in words; why not, when it was not")


class AgentRecord(BaseModel):
    completed: int = Field(ge=0, description="Results of this agent's that completed their subtask")
    failed: int = Field(ge=0, description="Results of this agent's that failed their attempt")


class MetricsResponse(BaseModel):
    """The pool's figures (seed 004): from PostgreSQL, so they survive restarts of agents and orchestrators, and the
    registry's live load."""

    tasks_pending: int = Field(ge=0, description="Tasks not ended yet: pending, in progress or paused")
    tasks_completed: int = Field(ge=0)
    tasks_failed: int = Field(ge=0)
    avg_assignment_latency_ms: float | None = Field(
        description="Mean time a subtask waited on the queue before an agent took it; null before any was taken"
    )
    utilization: float = Field(
        ge=0,
        le=1,
        description="Busy slots of the agents taking work (not failed or draining) over their slots; 0 when none",
    )
    live_agents: int = Field(ge=0)
    queue_depth_by_capability: dict[str, int] = Field(
        description="Queued subtasks per capability they need (one needing two capabilities counts under each)"
    )
    agents: dict[str, AgentRecord] = Field(description="Each agent's applied results, by agent id, restarts included")


class AgentLogListResponse(BaseModel):
    logs: list[AgentLog]


class DependencyHealth(BaseModel):
    status: Literal["up", "down"]
    error: str | None = None


class HealthResponse(BaseModel):
    status: Literal["healthy", "unhealthy"]
    postgres: DependencyHealth
    redis: DependencyHealth
