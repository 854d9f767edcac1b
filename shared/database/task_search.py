"""Which tasks a task list shows: the filters of `GET /tasks`, as one WHERE clause for the page and its count.

A reason is a status_reason code (`budget_exhausted`, `provider_unavailable`, ...) the task or one of its subtasks
has: a task's own reason is shown first, a subtask's stands in for it (shared/database/task_repository.py).

Text matches the description anywhere, case-insensitively, or the start of the task's id; what the user typed is
matched literally (`%`, `_` and `\\` are escaped), never as a pattern of its own.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.models import TaskStatus


def like_literal(text: str) -> str:
    """`text` escaped for LIKE/ILIKE with the default escape character, so it matches itself only."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class TaskSearch:
    """The filters of a task list; None leaves a filter out. `created_after` is inclusive, `created_before` not."""

    status: TaskStatus | None = None
    user_id: str | None = None
    text: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    reason: str | None = None  # a status_reason code, of the task or of one of its subtasks

    def where(self, tenant_id: str) -> tuple[str, list[Any]]:
        """The WHERE clause over `tasks` (unqualified columns) and its arguments, $1 onwards."""
        text = like_literal(self.text) if self.text else None
        clause = """
            tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR user_id = $3)
            AND ($4::text IS NULL OR description ILIKE '%' || $4 || '%' OR id LIKE $4 || '%')
            AND ($5::timestamptz IS NULL OR created_at >= $5) AND ($6::timestamptz IS NULL OR created_at < $6)
            AND ($7::text IS NULL OR status_reason ->> 'code' = $7 OR EXISTS (
                SELECT 1 FROM subtasks s WHERE s.task_id = tasks.id AND s.status_reason ->> 'code' = $7
            ))
        """
        status = self.status.value if self.status else None
        return clause, [tenant_id, status, self.user_id, text, self.created_after, self.created_before, self.reason]


EVERY_TASK = TaskSearch()
