"""Why a task or subtask is where it is, in one line: its error, what blocks it, why it was retried, what it waits
for (an agent, the provider, a budget), and whether Claude's plan was replaced by the fallback.

The orchestrator's status reasons carry a code and a sentence; `REASONS` names each code the way an operator scans
for it (the task list's filter, the task's reason panel), and the sentence says the rest: how much, until when, and
what to do.
"""

from dataclasses import dataclass

from shared.models import StatusReason, SubTask, SubTaskStatus, TaskStatus
from ui.api_models import SubtaskNotes, TaskRow
from ui.formatting import plain, preview

NOTHING = "—"
FALLBACK = "plan fallback: Claude's plan was replaced by one subtask"
WHY_LENGTH = 160


@dataclass(frozen=True)
class ReasonKind:
    title: str  # what the reason is, in a few words
    icon: str


BUDGET_EXHAUSTED = "budget_exhausted"
TENANT_DAILY_BUDGET = "tenant_daily_budget"
PROVIDER_UNAVAILABLE = "provider_unavailable"
DEADLINE_EXCEEDED = "deadline_exceeded"
REASONS = {
    BUDGET_EXHAUSTED: ReasonKind("Paused: its budget is spent", ":material/savings:"),
    TENANT_DAILY_BUDGET: ReasonKind("Paused: today's budget is spent", ":material/event_busy:"),
    PROVIDER_UNAVAILABLE: ReasonKind("Waiting on Claude", ":material/cloud_sync:"),
    DEADLINE_EXCEEDED: ReasonKind("Failed: its deadline passed", ":material/timer_off:"),
    "no_live_agent": ReasonKind("Waiting for an agent", ":material/person_search:"),
    "dependency_unavailable": ReasonKind("Waiting for a dependency", ":material/link_off:"),
}
OTHER_REASON = ReasonKind("Waiting", ":material/hourglass_top:")


def reason_kind(reason: StatusReason) -> ReasonKind:
    return REASONS.get(reason.code, OTHER_REASON)


def reason_line(reason: StatusReason) -> str:
    """The reason panel's line: `**Waiting on Claude** — waiting on Claude: rate limited (429), next try at …`."""
    return f"**{reason_kind(reason).title}** — {plain(reason.message)}"


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
