"""The lifecycle events of the orchestrator's transitions: pure functions from what a committed transition changed
to the events that tell it (contracts/events.yaml says what each carries).

The task lifecycle (orchestrator/lifecycle.py) publishes them after the transition commits, in the same Redis round
trip as the enqueue of the attempts it made ready, under the one outage policy of its effects: PostgreSQL is the
truth and Redis is transport, so events Redis cannot take are logged once per batch (a warning) and dropped, never
retried inline, never raised, never holding up the enqueue. A late, duplicate or forged result changed nothing and
so tells nothing. AGENT_STARTED is the agent's own (agent/reporting.py): only the agent knows when it starts.

Each event carries its task's trace id, and its payload names what a reader needs without asking the API.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from shared.artifacts import ArtifactRef
from shared.models import ResultStatus, SubTask, SubTaskResult, SubTaskStatus, Task, TaskStatus
from shared.redis import EventType, TaskEvent

_TASK_ENDINGS = {
    TaskStatus.COMPLETED: EventType.TASK_COMPLETED,
    TaskStatus.FAILED: EventType.TASK_FAILED,
    TaskStatus.CANCELLED: EventType.TASK_CANCELLED,
}


def submitted(task: Task) -> list[TaskEvent]:
    """A stored task and its plan (the attempts its submit queued are `queued`'s)."""
    return received(task) + planned(task)


def received(task: Task) -> list[TaskEvent]:
    """A stored task, planned or not yet (its planning waits on the provider)."""
    data = {
        "description": task.description,
        "user_id": task.user_id,
        "task_type": task.task_type.value,
        "context_pack_id": task.context_pack_id,
    }
    return [TaskEvent(EventType.TASK_SUBMITTED, task.id, data, trace_id=task.trace_id)]


def planned(task: Task) -> list[TaskEvent]:
    """A stored task's plan: at submit, or once the provider answered a planning that waited on it."""
    decomposition = task.decomposition.model_dump(mode="json") if task.decomposition else None
    data = {
        "subtasks": [_planned(subtask) for subtask in task.subtasks],
        "fallback_used": task.decomposition_fallback,
        "decomposition": decomposition,
    }
    return [TaskEvent(EventType.TASK_PLANNED, task.id, data, trace_id=task.trace_id)]


def follow_up_added(subtask: SubTask, by_subtask_id: str, by_attempt: int) -> list[TaskEvent]:
    """A subtask a coordinator's attempt (`by_subtask_id`, `by_attempt`) added to its task's plan."""
    data = {**_planned(subtask), "added_by": {"subtask_id": by_subtask_id, "attempt": by_attempt}}
    return [_about(EventType.SUBTASK_ADDED, subtask, data)]


def queued(subtasks: Iterable[SubTask]) -> list[TaskEvent]:
    """An attempt put on the task queue, each (the first of a subtask, or a retry)."""
    return [
        _about(
            EventType.SUBTASK_QUEUED,
            subtask,
            {
                "attempt": subtask.attempt_count,
                "required_capabilities": [capability.value for capability in subtask.required_capabilities],
                "priority": subtask.priority,
                "task_type": subtask.task_type.value,
                "failed_agent_ids": list(subtask.failed_agent_ids),
                "not_before": subtask.not_before.isoformat() if subtask.not_before else None,
            },
        )
        for subtask in subtasks
    ]


def result_applied(
    result: SubTaskResult, subtask: SubTask, blocked: Sequence[str], artifacts: Sequence[ArtifactRef] = ()
) -> list[TaskEvent]:
    """An applied result: the attempt completed (with `artifacts`, what it produced), or failed and was retried, or
    failed for good and blocked the `blocked` dependents.

    `subtask` is as the transition left it: a retried one is queued again, at its next attempt."""
    if result.status is ResultStatus.COMPLETED:
        data = {
            **_attempt(result),
            "output": result.output,
            "token_usage": result.token_usage.model_dump(mode="json"),
            "cost_usd": result.cost_usd,
            "num_turns": result.num_turns,
            "execution_time": result.execution_time,
            "simulated": result.simulated,
            "artifacts": [artifact.model_dump(mode="json") for artifact in artifacts],
        }
        return [_about(EventType.AGENT_COMPLETED, subtask, data)]
    retried = subtask.status is SubTaskStatus.QUEUED
    failed = {
        **_attempt(result),
        "error": result.error,
        "retryable": result.retryable,
        "will_retry": retried,
        "execution_time": result.execution_time,
        "provider_wait": result.provider_wait.model_dump(mode="json") if result.provider_wait else None,
    }
    events = [_about(EventType.AGENT_FAILED, subtask, failed)]
    if retried and result.provider_wait is None:  # a provider wait is queued again as the same attempt
        retry = {"attempt": subtask.attempt_count, "failed_agent_ids": list(subtask.failed_agent_ids)}
        events.append(_about(EventType.SUBTASK_RETRIED, subtask, retry))
    events += [
        TaskEvent(
            EventType.SUBTASK_BLOCKED,
            subtask.task_id,
            {"blocked_by": subtask.id},
            subtask_id=dependent,
            trace_id=subtask.trace_id,
        )
        for dependent in blocked
    ]
    return events


def retried(task: Task, requeued: Sequence[SubTask], unblocked: Collection[str], *, reopened: bool) -> list[TaskEvent]:
    """An operator's retry: the task's (it reopens the task's stream, when the task had ended), then each fresh
    attempt's SUBTASK_RETRIED (their SUBTASK_QUEUED follow from `queued`)."""
    data = {
        "subtask_ids": [subtask.id for subtask in requeued],
        "unblocked_subtask_ids": list(unblocked),
        "reopened": reopened,
    }
    return [TaskEvent(EventType.TASK_RETRIED, task.id, data, trace_id=task.trace_id)] + [
        _about(
            EventType.SUBTASK_RETRIED,
            subtask,
            {"attempt": subtask.attempt_count, "failed_agent_ids": list(subtask.failed_agent_ids), "by_operator": True},
        )
        for subtask in requeued
    ]


def cancelled(task: Task, subtask_ids: Collection[str]) -> list[TaskEvent]:
    """A cancelled task: each subtask that had not finished (in plan order), then the task's end."""
    return [
        TaskEvent(EventType.SUBTASK_CANCELLED, task.id, {}, subtask_id=subtask.id, trace_id=task.trace_id)
        for subtask in task.subtasks
        if subtask.id in subtask_ids
    ] + ended([task])


def paused(tasks: Iterable[Task]) -> list[TaskEvent]:
    """Tasks paused on a budget: their running attempts finish, nothing more of them is offered until they resume."""
    return [
        TaskEvent(
            EventType.TASK_PAUSED,
            task.id,
            {
                "reason": task.status_reason.model_dump(mode="json") if task.status_reason else None,
                "max_cost_usd": task.max_cost_usd,
            },
            trace_id=task.trace_id,
        )
        for task in tasks
    ]


def resumed(task: Task, by: str) -> list[TaskEvent]:
    """A paused task resumed `by` an operator or by the turn of the tenant's budget day (its queued subtasks' events
    follow from `queued`)."""
    data = {"status": task.status.value, "max_cost_usd": task.max_cost_usd, "by": by}
    return [TaskEvent(EventType.TASK_RESUMED, task.id, data, trace_id=task.trace_id)]


def ended(tasks: Iterable[Task]) -> list[TaskEvent]:
    """Each task's end, the last event of its stream: its result, or what went wrong."""
    events = []
    for task in tasks:
        event_type = _TASK_ENDINGS[task.status]
        data = {"result": task.result} if task.status is TaskStatus.COMPLETED else {"error": task.error}
        events.append(TaskEvent(event_type, task.id, data, trace_id=task.trace_id))
    return events


def _planned(subtask: SubTask) -> dict[str, Any]:
    return {
        "id": subtask.id,
        "description": subtask.description,
        "required_capabilities": [capability.value for capability in subtask.required_capabilities],
        "dependencies": list(subtask.dependencies),
        "task_type": subtask.task_type.value,
        "priority": subtask.priority,
    }


def _attempt(result: SubTaskResult) -> dict[str, Any]:
    return {"agent_id": result.agent_id, "attempt": result.attempt}


def _about(event_type: EventType, subtask: SubTask, data: Mapping[str, Any]) -> TaskEvent:
    return TaskEvent(event_type, subtask.task_id, data, subtask_id=subtask.id, trace_id=subtask.trace_id)
