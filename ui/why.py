"""Why a task or subtask is where it is, in one line: its error, what blocks it, why it was retried, what it waits
for, and whether Claude's plan was replaced by the fallback."""

from shared.models import SubTask, SubTaskStatus, TaskStatus
from ui.api_models import SubtaskNotes, TaskRow
from ui.formatting import preview

NOTHING = "—"
FALLBACK = "plan fallback: Claude's plan was replaced by one subtask"
WHY_LENGTH = 160


def task_why(task: TaskRow) -> str:
    reasons: list[str] = []
    if task.error and task.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
        reasons.append(task.error)
    elif task.status_reason:
        reasons.append(task.status_reason.message)
    if task.subtasks_failed and task.status is not TaskStatus.FAILED:
        reasons.append(f"{task.subtasks_failed} subtask attempt(s) failed")
    if task.decomposition_fallback:
        reasons.append(FALLBACK)
    return preview(" · ".join(reasons), WHY_LENGTH) if reasons else NOTHING


def subtask_why(subtask: SubTask, notes: SubtaskNotes | None, numbers: dict[str, int]) -> str:
    """`numbers` maps subtask ids to the step numbers the plan shows, so "blocked by #2" points at a row."""
    notes = notes or SubtaskNotes()
    reasons: list[str] = []
    if subtask.status is SubTaskStatus.BLOCKED:
        blockers = ", ".join(f"#{numbers[item]}" if item in numbers else item for item in notes.blocked_by)
        reasons.append(f"blocked by {blockers} (failed)" if blockers else "blocked: a dependency failed")
    elif subtask.status is SubTaskStatus.FAILED and notes.last_error:
        reasons.append(notes.last_error)
    elif subtask.attempt_count > 1 and notes.last_error and not subtask.status.is_terminal:
        reasons.append(f"attempt {subtask.attempt_count}, retried after: {notes.last_error}")
    if subtask.status_reason and not subtask.status.is_terminal:
        reasons.append(subtask.status_reason.message)
    return preview(" · ".join(reasons), WHY_LENGTH) if reasons else NOTHING
