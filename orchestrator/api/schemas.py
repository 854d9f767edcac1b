"""Response bodies of the orchestrator API (the domain models are in shared.models)."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.models import AgentLog, AgentStatus, SubTaskResult, Task, TaskStatus, TaskSummary, ToolCall


class TaskDetailResponse(BaseModel):
    task: Task
    subtask_results: list[SubTaskResult]


class TaskListResponse(BaseModel):
    tasks: list[TaskSummary]
    total: int = Field(ge=0)
    limit: int
    offset: int


class TaskCancelledResponse(BaseModel):
    task_id: str
    status: TaskStatus
    subtasks_cancelled: int = Field(ge=0)


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


class AgentLogListResponse(BaseModel):
    logs: list[AgentLog]


class DependencyHealth(BaseModel):
    status: Literal["up", "down"]
    error: str | None = None


class HealthResponse(BaseModel):
    status: Literal["healthy", "unhealthy"]
    postgres: DependencyHealth
    redis: DependencyHealth
