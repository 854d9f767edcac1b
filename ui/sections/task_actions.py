"""What an operator can do to a task from the dashboard: cancel it, retry it (or one failed subtask), resume it when
paused on a budget (with a new budget), run it again with the same input, and open its logs. Each action reruns the
whole page, so the list and the task agree."""

from collections.abc import Callable

import streamlit as st

from shared.models import TaskStatus
from ui import formatting, navigation
from ui.api_client import ApiError, OrchestratorClient
from ui.live import NOT_AVAILABLE

OUTCOME = "task_action_outcome"  # the last action's refusal, kept across the rerun that follows it


def render(client: OrchestratorClient, task_id: str, status: TaskStatus) -> None:
    """The task's action bar: the actions its status allows, and its logs."""
    bar = st.container(horizontal=True)
    if not status.is_terminal and bar.button("Cancel", key=f"cancel_{task_id}", icon=":material/stop_circle:"):
        _act("Cancel", lambda: _cancelled(client, task_id))
    if status is TaskStatus.FAILED and bar.button("Retry", key=f"retry_{task_id}", icon=":material/replay:"):
        _act("Retry", lambda: _retried(client.retry_task(task_id), task_id))
    if status is TaskStatus.PAUSED:
        budget = bar.number_input(
            "New budget (USD)",
            min_value=0.0,
            value=None,
            key=f"budget_{task_id}",
            help="Leave empty to keep the task's budget (enough when it waits on the tenant's daily budget)",
        )
        if bar.button("Resume", key=f"resume_{task_id}", icon=":material/play_circle:"):
            _act("Resume", lambda: _retried(client.resume_task(task_id, budget or None), task_id))
    if bar.button("Re-run", key=f"rerun_{task_id}", icon=":material/restart_alt:", help="A new task, same input"):
        _act("Re-run", lambda: _rerun(client, task_id))
    logs = {"task_id": task_id}
    if bar.button("Logs", key=f"logs_{task_id}", icon=":material/article:", on_click=open_logs, kwargs=logs):
        st.rerun(scope="app")  # the button sits in a fragment: the tabs redraw only with the whole page
    refusal = st.session_state.pop(OUTCOME, None)
    if refusal:
        st.error(refusal, icon=":material/block:")


def retry_subtask_button(client: OrchestratorClient, task_id: str, subtask_id: str) -> None:
    if st.button("Retry this subtask", key=f"retry_{subtask_id}", icon=":material/replay:"):
        _act("Retry", lambda: _retried(client.retry_subtask(task_id, subtask_id), subtask_id))


def open_logs(**filters: str) -> None:
    """Switch to the Logs tab, filtered as given (LogQuery fields), and say so in the URL. A button's callback: the
    tabs' state can change only before they are drawn."""
    for field, param in navigation.LOG_FILTERS.items():
        if field in filters:
            st.query_params[param] = filters[field]
        elif param in st.query_params:
            del st.query_params[param]
    st.session_state[navigation.VIEW] = navigation.LOGS_TAB


def _act(name: str, action: Callable[[], str]) -> None:
    try:
        done = action()
    except ApiError as error:
        reason = NOT_AVAILABLE if error.missing_endpoint else error.message
        st.session_state[OUTCOME] = f"{name} refused: {reason}"
        st.rerun(scope="app")
    st.toast(done, icon=":material/check:")
    st.rerun(scope="app")


def _cancelled(client: OrchestratorClient, task_id: str) -> str:
    cancelled = client.cancel_task(task_id)
    return f"Cancelled {cancelled} unfinished subtask(s) of {formatting.short_id(task_id)}"


def _retried(requeued: int, what: str) -> str:
    return f"Queued {requeued} subtask(s) of {formatting.short_id(what)} again"


def _rerun(client: OrchestratorClient, task_id: str) -> str:
    created = client.rerun_task(task_id)
    navigation.select_task(created.task_id)
    return f"Started {formatting.short_id(created.task_id)}, a new run of {formatting.short_id(task_id)}"
