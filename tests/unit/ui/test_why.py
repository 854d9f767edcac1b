"""The one-line "why" of a task or subtask: error, blocker, retry reason, what it waits for, plan fallback."""

from datetime import UTC, datetime

from shared.models import AgentCapability, StatusReason, SubTask, SubTaskStatus, TaskStatus
from ui.api_models import SubtaskNotes, TaskRow
from ui.why import FALLBACK, NOTHING, subtask_why, task_why

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NO_AGENT = StatusReason(code="no_live_agent", message="waiting: no live agent with WEB_SCRAPING")


def row(status: TaskStatus, **fields: object) -> TaskRow:
    base = {"id": "task_1", "description": "d", "created_at": NOW, "updated_at": NOW}
    return TaskRow.model_validate(base | {"status": status} | fields)


def subtask(status: SubTaskStatus, attempt: int = 1, reason: StatusReason | None = None) -> SubTask:
    return SubTask(
        id="subtask_b",
        task_id="task_1",
        description="step",
        required_capabilities=[AgentCapability.WEB_SCRAPING],
        status=status,
        attempt_count=attempt,
        status_reason=reason,
    )


def test_a_task_says_its_error_its_wait_its_failed_attempts_and_its_plan_fallback() -> None:
    assert task_why(row(TaskStatus.FAILED, error="subtask 'x' failed: boom")) == "subtask 'x' failed: boom"
    assert task_why(row(TaskStatus.PENDING, status_reason=NO_AGENT)) == NO_AGENT.message
    assert task_why(row(TaskStatus.IN_PROGRESS, subtasks_failed=2)) == "2 subtask attempt(s) failed"
    assert task_why(row(TaskStatus.COMPLETED, decomposition_fallback=True)) == FALLBACK
    assert task_why(row(TaskStatus.COMPLETED)) == NOTHING


def test_a_subtask_says_what_blocks_it_why_it_was_retried_and_what_it_waits_for() -> None:
    numbers = {"subtask_a": 1, "subtask_b": 2}
    blocked = subtask_why(subtask(SubTaskStatus.BLOCKED), SubtaskNotes(blocked_by=["subtask_a"]), numbers)
    retried = subtask_why(
        subtask(SubTaskStatus.QUEUED, attempt=2, reason=NO_AGENT), SubtaskNotes(last_error="agent2 died"), numbers
    )
    failed = subtask_why(subtask(SubTaskStatus.FAILED, attempt=3), SubtaskNotes(last_error="boom"), numbers)

    assert blocked == "blocked by #1 (failed)"
    assert retried == f"attempt 2, retried after: agent2 died · {NO_AGENT.message}"
    assert failed == "boom"
    assert subtask_why(subtask(SubTaskStatus.COMPLETED), None, numbers) == NOTHING
