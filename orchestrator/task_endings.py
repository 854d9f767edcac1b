"""Ending a task before its subtasks are done: a cancel, or a deadline that passed. The lifecycle runs these inside its
transaction and does what follows the commit (orchestrator/lifecycle.py).

Both cancel every unfinished subtask (pending, queued, running) in one statement under the tasks' row locks, so a
result that arrives later finds no live attempt and changes nothing, and both name the attempts agents were running,
so the agents can be told to stop them rather than spend tokens on work nobody will use.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator import task_events
from shared.database import Repositories
from shared.database.subtask_repository import CancelledSubtask
from shared.database.task_repository import StatusChange
from shared.errors import ConflictError, NotFoundError
from shared.models import DEADLINE_EXCEEDED, RunningAttempt, StatusReason, Task, TaskStatus
from shared.redis import TaskEvent

CANCELLED_BY_REQUEST = "cancelled by request"


@dataclass(frozen=True)
class EndedEarly:
    """Tasks a cancel or a deadline ended, as they are now, and the subtasks it cancelled."""

    tasks: list[Task]
    cancelled: list[CancelledSubtask]

    def events(self) -> list[TaskEvent]:
        """Each task's cancelled subtasks, then its end (TASK_CANCELLED or TASK_FAILED)."""
        return [event for task in self.tasks for event in task_events.cancelled(task, self._cancelled_of(task.id))]

    def running(self) -> list[RunningAttempt]:
        """The attempts agents were running: to be stopped."""
        return [subtask.running for subtask in self.cancelled if subtask.running is not None]

    def unaccepted(self) -> list[RunningAttempt]:
        """The offers their agents had not accepted: those agents will find them stale and report nothing."""
        return [s.running for s in self.cancelled if s.running is not None and not s.accepted]

    def reasons(self) -> dict[str, str]:
        """Why each task ended, by id: what the agents told to stop its attempts report."""
        return {task.id: task.error or task.status.value for task in self.tasks}

    def _cancelled_of(self, task_id: str) -> Collection[str]:
        return {subtask.subtask_id for subtask in self.cancelled if subtask.task_id == task_id}


async def cancel(tx: Repositories, task_id: str) -> EndedEarly:
    """The task is cancelled with what has not finished; NotFoundError or ConflictError when it cannot be."""
    status = await tx.tasks.lock_task(task_id)
    if status is None:
        raise NotFoundError(f"no task with id {task_id!r}")
    if status.is_terminal:
        raise ConflictError(f"task {task_id} has already ended ({status.value}); nothing to cancel")
    cancelled = await tx.subtasks.cancel_unfinished([task_id])
    await tx.tasks.update_task_status(task_id, TaskStatus.CANCELLED, error=CANCELLED_BY_REQUEST)
    task = await tx.tasks.get_task(task_id)
    assert task is not None
    return EndedEarly([task], cancelled)


async def fail_past_deadline(tx: Repositories, limit: int) -> EndedEarly:
    """Up to `limit` tasks past their deadline, whatever they wait on, fail with the reason `deadline_exceeded`."""
    overdue = await tx.tasks.lock_past_deadline(limit)
    if not overdue:
        return EndedEarly([], [])
    cancelled = await tx.subtasks.cancel_unfinished(overdue)
    await tx.tasks.update_task_statuses([deadline_ending(task_id, at) for task_id, at in overdue.items()])
    details = await tx.tasks.get_task_details(overdue, applied_only=True)
    return EndedEarly([task for task, _ in details.values()], cancelled)


def deadline_ending(task_id: str, deadline_at: datetime) -> StatusChange:
    """A task's failure because its deadline passed: the error and the status reason name the deadline."""
    deadline = deadline_at.astimezone(UTC).isoformat(timespec="seconds")
    message = f"deadline exceeded: the task had to end by {deadline} (deadline_seconds), and had not"
    reason = StatusReason(code=DEADLINE_EXCEEDED, message=message)
    return StatusChange(task_id, TaskStatus.FAILED, error=message, reason=reason)
