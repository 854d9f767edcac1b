"""How the lifecycle reads results, as pure functions: which completions take the batch path, how a task whose
subtasks are all done ends, what a stranded attempt's failure says, and the log context of a result."""

from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from orchestrator.aggregation import aggregate_results, describe_failure
from shared import tracing
from shared.database.task_repository import StatusChange
from shared.models import ReportedResult, ResultStatus, SubTask, SubTaskResult, SubTaskStatus, Task, TaskStatus


def split_fast_path(results: Sequence[SubTaskResult]) -> tuple[list[int], list[int]]:
    """Positions of the completions of subtasks that have no other result in the batch, and of the rest."""
    per_subtask = Counter(result.subtask_id for result in results)
    fast: list[int] = []
    careful: list[int] = []
    for position, result in enumerate(results):
        alone = per_subtask[result.subtask_id] == 1
        (fast if alone and result.status is ResultStatus.COMPLETED else careful).append(position)
    return fast, careful


def task_ending(task: Task, results: Sequence[SubTaskResult], counts: dict[SubTaskStatus, int]) -> StatusChange:
    """How a task none of whose subtasks can run any more ends: completed with their aggregated outputs when all
    of them completed, otherwise failed with what went wrong (`results`: those that counted; a wait on the provider
    went wrong for nobody)."""
    if counts.get(SubTaskStatus.COMPLETED, 0) == len(task.subtasks):
        completed = [result for result in results if result.status is ResultStatus.COMPLETED]
        return StatusChange(task.id, TaskStatus.COMPLETED, result=aggregate_results(task.subtasks, completed))
    failures = [result for result in results if result.status is ResultStatus.FAILED and result.provider_wait is None]
    error = describe_failure(task.subtasks, failures, counts.get(SubTaskStatus.BLOCKED, 0))
    return StatusChange(task.id, TaskStatus.FAILED, error=error)


def bound_to_result(result: SubTaskResult) -> AbstractContextManager[None]:
    """The log lines of the block carry the result's trace (its offer's, sealed into the report), ids and agent."""
    trace_id = result.trace_id if isinstance(result, ReportedResult) else None
    return tracing.bound(
        trace_id, task_id=result.task_id, subtask_id=result.subtask_id, attempt=result.attempt, agent_id=result.agent_id
    )


def stranded_failure(subtask: SubTask, reason: str, now: datetime) -> SubTaskResult:
    """The result a running attempt gets when no live agent runs it any more: failed, and worth another try."""
    started = subtask.assigned_at or now
    return SubTaskResult(
        subtask_id=subtask.id,
        task_id=subtask.task_id,
        agent_id=subtask.assigned_agent or "unknown",
        attempt=subtask.attempt_count,
        delivery_token=subtask.delivery_token,
        status=ResultStatus.FAILED,
        error=reason,
        retryable=True,
        execution_time=max((now - started).total_seconds(), 0.001),
    )
