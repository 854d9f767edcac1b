"""Recent tasks with a status filter, and the one picked shown in detail underneath."""

import pandas as pd
import streamlit as st

from shared.models import TaskStatus, TaskSummary
from ui import formatting
from ui.api_client import ApiError, OrchestratorClient
from ui.sections import task_detail, task_events
from ui.session import SELECTED_TASK

STATUS_FILTER = "task_status_filter"
ALL_STATUSES = "all"
RECENT_TASKS = 50

# Widths in pixels add up to what a wide layout shows without a horizontal scroll bar.
TASK_COLUMNS = {
    "Status": st.column_config.TextColumn("Status", width=125),
    "Task": st.column_config.TextColumn("Task", width=360),
    "Reason": st.column_config.TextColumn("Reason", width=220, help="Why the task is not moving, when it waits"),
    "Progress": st.column_config.ProgressColumn("Progress", min_value=0.0, max_value=1.0, format="percent", width=110),
    "Subtasks": st.column_config.TextColumn("Subtasks", help="completed / total", width=75),
    "User": st.column_config.TextColumn("User", width=90),
    "Created": st.column_config.DatetimeColumn("Created", format="distance", width=130),
    "ID": st.column_config.TextColumn("ID", width=120, help="Shortened; the full id is in the task's detail"),
}


def render(client: OrchestratorClient) -> None:
    """The list, and the watched task with its events; a live task's event timeline redraws the page as its events
    arrive (ui/sections/task_events.py), so the list and the task never disagree."""
    title, status_filter, refresh = st.columns([4, 2, 1], vertical_alignment="bottom")
    title.subheader("Recent tasks")
    status = status_filter.selectbox(
        "Status", [ALL_STATUSES, *TaskStatus], key=STATUS_FILTER, format_func=_status_option
    )
    refresh.button("↻ Refresh", key="refresh_tasks", width="stretch")
    try:
        page = client.list_tasks(None if status == ALL_STATUSES else str(status), RECENT_TASKS)
    except ApiError as error:
        st.error(f"Tasks are unavailable: {error.message}", icon="🔌")
        return
    _task_table(page.tasks, page.total)
    selected = _task_picker(page.tasks)
    if selected:
        live = task_detail.render(client, selected)
        task_events.render(client, selected, live)


def _status_option(status: str) -> str:
    return "All statuses" if status == ALL_STATUSES else formatting.status_badge(status)


def _task_table(tasks: list[TaskSummary], total: int) -> None:
    if not tasks:
        st.info("No tasks here yet. Submit one from the sidebar.", icon="📭")
        return
    rows = [
        {
            "Status": formatting.status_badge(task.status.value),
            "Task": formatting.preview(task.description, 90),
            "Reason": formatting.reason(task.status_reason),
            "Progress": task.subtasks_completed / task.subtasks_total if task.subtasks_total else 0.0,
            "Subtasks": f"{task.subtasks_completed}/{task.subtasks_total}",
            "User": task.user_id or "—",
            "Created": task.created_at,
            "ID": formatting.short_id(task.id),
        }
        for task in tasks
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config=TASK_COLUMNS, key="task_table")
    if total > len(tasks):
        st.caption(f"The {len(tasks)} most recent of {total} tasks.")


def _task_picker(tasks: list[TaskSummary]) -> str | None:
    """A select box of the listed tasks (plus the selected one when the filter hides it); newest first by default."""
    labels = {task.id: _task_label(task) for task in tasks}
    selected = st.session_state.get(SELECTED_TASK)
    if selected is None and tasks:
        st.session_state[SELECTED_TASK] = selected = tasks[0].id
    if selected and selected not in labels:
        labels = {selected: selected, **labels}
    if not labels:
        return None
    choice: str | None = st.selectbox("Watch task", list(labels), key=SELECTED_TASK, format_func=labels.__getitem__)
    return choice


def _task_label(task: TaskSummary) -> str:
    status = formatting.status_badge(task.status.value)
    return f"{status} · {formatting.short_id(task.id)} · {formatting.preview(task.description, 70)}"
