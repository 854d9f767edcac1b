"""A follow-up subtask: what a coordinator's attempt asks the orchestrator to add to its own task's plan.

The request names the attempt it comes from with that attempt's signed assignment (shared/fleet_trust.py), and the
agent signs the whole body with FLEET_SECRET (header `X-Fleet-Signature`): the orchestrator adds the subtask only to
the task of an attempt that is the current one in PostgreSQL. The model chooses the subtask's content, never which
task it joins. The subtask's id is drawn by the agent, so a request delivered twice adds it once.
"""

from collections import Counter
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from shared.models import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    TASK_DESCRIPTION_MAX,
    AgentCapability,
    Assignment,
    DomainModel,
    Identifier,
    SubTask,
    SubTaskStatus,
    TaskType,
    new_subtask_id,
)

FLEET_SIGNATURE_HEADER = "X-Fleet-Signature"


def _storable(value: str) -> str:
    # The model writes this text, and PostgreSQL's text cannot hold NUL: refused here as invalid, not failed there.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


StorableText = Annotated[str, AfterValidator(_storable)]


class AttemptCredential(DomainModel):
    """The attempt a request comes from, and the orchestrator's signature of its offer."""

    task_id: Identifier
    subtask_id: Identifier
    attempt: int = Field(ge=1)
    delivery_token: str = Field(min_length=1, max_length=64)
    agent_id: Identifier
    assignment: Assignment


class FollowUpSubtask(DomainModel):
    """The subtask to add, validated like a subtask of a plan."""

    id: Identifier = Field(default_factory=new_subtask_id, description="Drawn by the agent: a retry adds it once")
    description: StorableText = Field(min_length=1, max_length=TASK_DESCRIPTION_MAX)
    required_capabilities: list[AgentCapability] = Field(min_length=1, max_length=len(AgentCapability))
    dependencies: list[Identifier] = Field(
        default_factory=list, description="Ids of subtasks of the same task (the requesting one among them)"
    )
    priority: int = Field(5, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    task_type: TaskType | None = Field(None, description="Unset: the task's own type")

    @field_validator("dependencies", "required_capabilities")
    @classmethod
    def _each_once(cls, entries: list[str]) -> list[str]:
        # Each dependency puts its whole output into the offer: a repeated one would multiply it.
        repeated = sorted(str(entry) for entry, count in Counter(entries).items() if count > 1)
        if repeated:
            raise ValueError(f"{', '.join(map(repr, repeated))} listed more than once; list each once")
        return entries

    def to_subtask(self, task_id: str) -> SubTask:
        """The subtask to store; one naming no type takes its task's when stored (FollowUpRepository.add_subtask)."""
        return SubTask(
            task_id=task_id, **self.model_dump(exclude={"task_type"}), task_type=self.task_type or TaskType.GENERAL
        )


class FollowUpRequest(DomainModel):
    attempt: AttemptCredential
    subtask: FollowUpSubtask


class FollowUpResponse(DomainModel):
    task_id: str
    subtask_id: str
    status: SubTaskStatus = Field(description="queued when its dependencies are done, else pending until they are")
    subtasks_in_task: int = Field(ge=1)
