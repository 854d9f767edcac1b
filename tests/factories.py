"""Builders for valid domain objects, so each test states only what it cares about."""

from typing import Any

from shared.models import AgentCapability, ResultStatus, SubTask, SubTaskResult, Task, new_subtask_id, new_task_id


def build_task(*, subtasks: int = 1, chain: bool = False, **fields: Any) -> Task:
    """A task with `subtasks` subtasks; with `chain=True` each depends on the one before it."""
    task_id = fields.pop("id", new_task_id())
    plan: list[SubTask] = []
    for index in range(subtasks):
        plan.append(
            SubTask(
                id=new_subtask_id(),
                task_id=task_id,
                description=f"Step {index + 1} of the work",
                required_capabilities=[AgentCapability.DATA_ANALYSIS],
                dependencies=[plan[-1].id] if chain and plan else [],
            )
        )
    return Task(
        id=task_id, description=fields.pop("description", "Analyse the quarterly sales"), subtasks=plan, **fields
    )


def build_result(subtask: SubTask, *, attempt: int = 1, agent_id: str = "agent1", **fields: Any) -> SubTaskResult:
    status = fields.pop("status", ResultStatus.COMPLETED)
    outcome = {"output": "done"} if status is ResultStatus.COMPLETED else {"error": "it broke"}
    return SubTaskResult(
        subtask_id=subtask.id,
        task_id=subtask.task_id,
        agent_id=agent_id,
        attempt=attempt,
        status=status,
        execution_time=fields.pop("execution_time", 0.25),
        **{**outcome, **fields},
    )
