"""The one-line "why" of a task or subtask: error, blocker, retry reason, what it waits for, plan fallback."""

from datetime import UTC, datetime

import pytest

from shared.models import AgentCapability, StatusReason, SubTask, SubTaskStatus, TaskStatus
from ui.api_models import SubtaskNotes, TaskRow
from ui.why import FALLBACK, NOTHING, reason_line, subtask_why, task_why

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


@pytest.mark.parametrize(
    ("code", "title"),
    [
        ("budget_exhausted", "Paused: its budget is spent"),
        ("tenant_daily_budget", "Paused: today's budget is spent"),
        ("provider_unavailable", "Waiting on Claude"),
        ("deadline_exceeded", "Failed: its deadline passed"),
        ("something_new", "Waiting"),  # a code of a newer orchestrator still reads as a reason
    ],
)
def test_each_reason_is_named_before_its_sentence_which_is_kept_inert(code: str, title: str) -> None:
    reason = StatusReason(code=code, message="paused: spent $0.0400 of its $0.0500 budget")

    assert reason_line(reason) == f"**{title}** — paused\\: spent \\$0\\.0400 of its \\$0\\.0500 budget"


def test_a_paused_task_says_why_and_a_task_past_its_deadline_says_its_error_once() -> None:
    paused = StatusReason(code="budget_exhausted", message="paused: spent $0.04 of its $0.05 budget")
    deadline = "deadline exceeded: the task had to end by 2026-12-02T10:00:04+00:00 (deadline_seconds), and had not"
    late = StatusReason(code="deadline_exceeded", message=deadline)

    assert task_why(row(TaskStatus.PAUSED, status_reason=paused)) == paused.message
    assert task_why(row(TaskStatus.FAILED, status_reason=late, error=deadline)) == deadline
