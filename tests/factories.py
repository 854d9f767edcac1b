"""Builders for valid domain objects, so each test states only what it cares about."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared.config import Settings
from shared.database import Repositories
from shared.fleet_trust import FleetTrust
from shared.models import (
    AgentCapability,
    ReportedResult,
    ResultStatus,
    SubTask,
    SubTaskResult,
    SubTaskStatus,
    Task,
    new_subtask_id,
    new_task_id,
)


def build_subtask(task_id: str, **fields: Any) -> SubTask:
    values = {"description": "One step of the work", "required_capabilities": [AgentCapability.DATA_ANALYSIS]}
    return SubTask(task_id=task_id, **{**values, **fields})


def build_task(*, subtasks: int = 1, chain: bool = False, **fields: Any) -> Task:
    """A task with `subtasks` subtasks; with `chain=True` each depends on the one before it."""
    task_id = fields.pop("id", new_task_id())
    plan: list[SubTask] = []
    for index in range(subtasks):
        plan.append(
            build_subtask(
                task_id,
                id=new_subtask_id(),
                description=f"Step {index + 1} of the work",
                dependencies=[plan[-1].id] if chain and plan else [],
            )
        )
    return Task(
        id=task_id, description=fields.pop("description", "Analyse the quarterly sales"), subtasks=plan, **fields
    )


def build_planned_task(plan: dict[str, list[str]], **fields: Any) -> Task:
    """A task whose subtasks are named by `plan`'s keys, each depending on the subtasks it lists.

    A subtask's id is `<task id>_<name>`; `subtask_id(task, name)` gives it back.
    """
    task = build_task(subtasks=0, **fields)
    task.subtasks = [
        build_subtask(task.id, id=subtask_id(task, name), dependencies=[subtask_id(task, dep) for dep in deps])
        for name, deps in plan.items()
    ]
    return task


def subtask_id(task: Task, name: str) -> str:
    return f"{task.id}_{name}"


# The orchestrator applies only results that answer an assignment its fleet signed; inside `results_signed_for`,
# the results built here carry that signature, as an agent's would.
_result_signer: FleetTrust | None = None


@contextmanager
def results_signed_for(settings: Settings) -> Iterator[None]:
    """Within it, `build_result` signs its results with the fleet of `settings` (its secret and tenant)."""
    global _result_signer
    _result_signer = FleetTrust.from_settings(settings)
    try:
        yield
    finally:
        _result_signer = None


def build_result(subtask: SubTask, *, attempt: int = 1, agent_id: str = "agent1", **fields: Any) -> SubTaskResult:
    """The result an agent reports for `subtask`, under the offer it was claimed with (its delivery token)."""
    status = fields.pop("status", ResultStatus.COMPLETED)
    outcome = {"output": "done"} if status is ResultStatus.COMPLETED else {"error": "it broke"}
    result = SubTaskResult(
        subtask_id=subtask.id,
        task_id=subtask.task_id,
        agent_id=agent_id,
        attempt=attempt,
        delivery_token=fields.pop("delivery_token", subtask.delivery_token),
        status=status,
        execution_time=fields.pop("execution_time", 0.25),
        **{**outcome, **fields},
    )
    return result if _result_signer is None else _result_signer.sign_result(result)


async def run_attempt(
    repos: Repositories, subtask_id: str, *, agent_id: str = "agent1", finish: SubTaskStatus | None = None
) -> SubTask:
    """Claim a queued subtask's current attempt on `agent_id` and, when `finish` is given, end it so."""
    queued = await repos.subtasks.get_subtask(subtask_id)
    assert queued is not None and queued.status is SubTaskStatus.QUEUED, queued
    running = await repos.subtasks.claim(subtask_id, queued.attempt_count, agent_id)
    assert running is not None
    if finish is None:
        return running
    finished = await repos.subtasks.finish_attempt(subtask_id, running.attempt_count, running.delivery_token, finish)
    assert finished is not None
    return finished


async def current_result(repos: Repositories, task: Task, name: str, **fields: Any) -> SubTaskResult:
    """The result the agent running the named subtask's current attempt reports, under its offer."""
    subtask = await repos.subtasks.get_subtask(subtask_id(task, name))
    assert subtask is not None
    return build_result(subtask, **{"attempt": subtask.attempt_count, **fields})


def plain_result(report: ReportedResult) -> SubTaskResult:
    """The result a report carries, without what only the report has (its seal, assignment, model and calls)."""
    return SubTaskResult(**report.model_dump(include=set(SubTaskResult.model_fields)))
