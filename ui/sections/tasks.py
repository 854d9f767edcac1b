"""The task list: search by text or id, user, status, why it waits (a status reason) and creation date, one page
at a time, refreshed every few seconds on its own; a click on a row opens that task underneath (and in the URL,
as `?task=<id>`)."""

from datetime import date

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from shared.models import TaskStatus
from ui import formatting, live, navigation
from ui.api_client import OrchestratorClient
from ui.api_models import TaskPage, TaskQuery, TaskRow
from ui.clickable_table import clickable_table
from ui.why import REASONS, task_why

REFRESH_SECONDS = 3.0
PAGE_SIZE = 25
ALL_STATUSES = "all"
STATUS_FILTER = "task_status_filter"
REASON_FILTER = "task_reason_filter"
ANY_REASON = "any"
TEXT_FILTER = "task_search"
USER_FILTER = "task_user_filter"
DATE_FILTER = "task_date_filter"
PAGE = "task_page"
NEWEST_TASK = "newest_task"  # shown in detail while the URL names no task
WATCHED_ROW = "background-color: rgba(59, 130, 246, 0.12)"

# Pixel widths that add up to what the main area shows at a 1400 px window beside the sidebar.
TASK_COLUMNS = {
    "ID": st.column_config.LinkColumn(
        "ID", width=112, display_text=r"\?task=(task_.{8})", help="A link to the task; click the row to open it here"
    ),
    "Status": st.column_config.TextColumn("Status", width=88),
    "Task": st.column_config.TextColumn("Task", width=180),
    "Why": st.column_config.TextColumn("Why", width=170, help="Error, what it waits for, retries, plan fallback"),
    "Progress": st.column_config.ProgressColumn(
        "Done", min_value=0.0, max_value=1.0, format="percent", width=62, color="green"
    ),
    "Tokens": st.column_config.TextColumn("Tokens", width=58),
    "Cost": st.column_config.TextColumn("Cost", width=62, help="Results plus the decomposition call"),
    "User": st.column_config.TextColumn("User", width=62),
    "Created": st.column_config.DatetimeColumn("Created", format="MMM D, HH:mm", width=95),
}


def render(client: OrchestratorClient) -> None:
    st.fragment(run_every=REFRESH_SECONDS)(_task_list)(client)


def _task_list(client: OrchestratorClient) -> None:
    query = _search_form()
    fetched = live.fetch(f"tasks:{query}", lambda: client.list_tasks(query))
    live.stale_marker(fetched)
    if fetched.value is None:
        live.show_failure("Tasks", fetched)
        return
    page = fetched.value
    if page.tasks and query.offset == 0:
        st.session_state[NEWEST_TASK] = page.tasks[0].id
    if not page.tasks:
        st.info("No task matches. Submit one from the sidebar, or widen the search.", icon=":material/inbox:")
    else:
        _table(page.tasks)
    _paging_caption(page, query)


def _search_form() -> TaskQuery:
    text, user, status, reason, created, page = st.columns([3, 2, 2, 2, 3, 1], vertical_alignment="bottom")
    typed = text.text_input(
        "Search", key=TEXT_FILTER, placeholder="words of the task, or its id", on_change=_first_page
    )
    user_id = user.text_input("User", key=USER_FILTER, placeholder="any user", on_change=_first_page)
    chosen = status.selectbox(
        "Status", [ALL_STATUSES, *TaskStatus], key=STATUS_FILTER, format_func=_status_option, on_change=_first_page
    )
    why = reason.selectbox(
        "Why", [ANY_REASON, *REASONS], key=REASON_FILTER, format_func=_reason_option, on_change=_first_page
    )
    days = created.date_input("Created", value=[], key=DATE_FILTER, format="YYYY-MM-DD", on_change=_first_page)
    number = page.number_input("Page", min_value=1, value=1, step=1, key=PAGE)
    first, last = _day_range(days)
    return TaskQuery(
        text=typed,
        user_id=user_id,
        status=None if chosen == ALL_STATUSES else TaskStatus(chosen),
        reason=None if why == ANY_REASON else why,
        created_from=first,
        created_to=last,
        limit=PAGE_SIZE,
        offset=(int(number) - 1) * PAGE_SIZE,
    )


def _first_page() -> None:
    st.session_state[PAGE] = 1


def _day_range(days: object) -> tuple[date | None, date | None]:
    """The date input gives nothing, one day (while picking) or a range."""
    picked = [day for day in days if isinstance(day, date)] if isinstance(days, tuple | list) else []
    if not picked:
        return None, None
    return picked[0], picked[-1]


def _status_option(status: str) -> str:
    return "All statuses" if status == ALL_STATUSES else formatting.status_text(status)


def _reason_option(code: str) -> str:
    return "Any reason" if code == ANY_REASON else REASONS[code].title


def _table(tasks: list[TaskRow]) -> None:
    clickable_table(
        "task",
        _styled(tasks, navigation.selected_task()),
        [task.id for task in tasks],
        TASK_COLUMNS,
        navigation.select_task,
    )


def _styled(tasks: list[TaskRow], watched: str | None) -> Styler:
    frame = pd.DataFrame([_row(task) for task in tasks])
    highlight = [task.id == watched for task in tasks]
    styled = frame.style.apply(lambda row: [WATCHED_ROW if highlight[row.name] else ""] * len(row), axis=1)
    return styled.map(formatting.status_style, subset=["Status"])


def _row(task: TaskRow) -> dict[str, object]:
    return {
        "ID": navigation.task_link(task.id),
        "Status": formatting.status_text(task.status.value),
        "Task": formatting.preview(task.description, 90),
        "Why": task_why(task),
        "Progress": task.subtasks_completed / task.subtasks_total if task.subtasks_total else 0.0,
        "Tokens": formatting.token_count(task.total_tokens) if task.total_tokens is not None else "—",
        "Cost": formatting.cost(task.cost_usd) if task.cost_usd is not None else "—",
        "User": task.user_id or "—",
        "Created": task.created_at,
    }


def _paging_caption(page: TaskPage, query: TaskQuery) -> None:
    pages = max(-(-page.total // PAGE_SIZE), 1)
    shown = f"{query.offset + 1} to {query.offset + len(page.tasks)}" if page.tasks else "none"
    parts = [f"Page {query.offset // PAGE_SIZE + 1} of {pages} · {shown} of {page.total} task(s), newest first"]
    if page.retention_known:
        kept = f"{page.retention_days} day(s) after they end, then removed" if page.retention_days else "forever"
        parts.append(f"tasks are kept {kept}")
    parts.append(f"refreshes every {REFRESH_SECONDS:g} s")
    st.caption(" · ".join(parts))
