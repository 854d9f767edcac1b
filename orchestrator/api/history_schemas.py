"""Response bodies of the history endpoints (orchestrator/api/history.py)."""

from pydantic import BaseModel, Field

from shared.database.agent_record_repository import AgentHistory
from shared.database.attempt_repository import AttemptRecord
from shared.database.history_repository import MinuteBucket


class MetricsHistoryResponse(BaseModel):
    window_minutes: int = Field(ge=1, le=1440)
    buckets: list[MinuteBucket] = Field(description="One per minute, oldest first, the current minute last")


class AgentHistoryResponse(BaseModel):
    agents: list[AgentHistory] = Field(description="Agents that ran this tenant's work, alive or not, and live agents")


class AgentAttemptsResponse(BaseModel):
    agent_id: str
    attempts: list[AttemptRecord] = Field(description="Newest first, running attempts first")


class TaskTimelineResponse(BaseModel):
    task_id: str
    attempts: list[AttemptRecord] = Field(
        description="By subtask (plan order) then attempt, the current unfinished attempt included"
    )
