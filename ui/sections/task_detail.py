"""One task in detail: progress, totals, outcome, and its subtasks (redrawn as the task's events arrive)."""

from datetime import datetime

import streamlit as st

from shared.models import SubTaskResult, SubTaskStatus, Task
from ui import formatting
from ui.api_client import ApiError, OrchestratorClient, TaskDetail
from ui.sections import artifact_view, subtask_view

LIVE_TASKS = "live_tasks"  # task id -> whether it had not ended when last fetched


def is_live(task_id: str | None) -> bool:
    """Whether the task had not ended when last fetched (unknown tasks are not)."""
    return bool(task_id) and st.session_state.get(LIVE_TASKS, {}).get(task_id, False)


def render(client: OrchestratorClient, task_id: str) -> bool:
    """Draws the task; returns whether it is live (as last known while the API is away)."""
    try:
        detail = client.get_task(task_id)
    except ApiError as error:
        st.error(f"Task {task_id} is unavailable: {error.message}", icon="🔌")
        return is_live(task_id)
    running = not detail.task.status.is_terminal
    st.session_state.setdefault(LIVE_TASKS, {})[task_id] = running
    _draw(client, detail)
    return running


def _draw(client: OrchestratorClient, detail: TaskDetail) -> None:
    task, now = detail.task, datetime.now().astimezone()
    with st.container(border=True):
        _heading(task, now)
        if is_simulated(detail):
            st.warning(
                "**SIMULATED** — offline mode: these results come from the local Claude simulator, not from Claude.",
                icon="🧪",
            )
        _progress(task)
        _totals(task, detail.results)
        _outcome(task)
        subtask_view.render(task, detail.results, now)
        artifact_view.render(client, task.id)
        if not task.status.is_terminal:
            _cancel_button(client, task.id)


def is_simulated(detail: TaskDetail) -> bool:
    result = detail.task.result or {}
    return bool(result.get("simulated")) or any(item.simulated for item in detail.results)


def _heading(task: Task, now: datetime) -> None:
    st.markdown(f"#### {formatting.status_badge(task.status.value)} · `{task.id}`")
    st.markdown(formatting.plain(task.description))
    ended = task.status.is_terminal
    refresh = "auto-refresh off (task ended)" if ended else "⟳ following its events live"
    st.caption(
        f"Created {formatting.age(task.created_at, now)} by {task.user_id or 'anonymous'} · "
        f"updated {formatting.age(task.updated_at, now)} · {refresh}"
    )


def _progress(task: Task) -> None:
    total = len(task.subtasks)
    done = sum(1 for subtask in task.subtasks if subtask.status is SubTaskStatus.COMPLETED)
    st.progress(done / total if total else 0.0, text=f"{done} of {total} subtasks completed")


def _totals(task: Task, results: list[SubTaskResult]) -> None:
    """What the task has cost so far, over every attempt (retries cost too)."""
    decomposition_tokens = task.decomposition.token_usage.total_tokens if task.decomposition else 0
    tokens = sum(result.token_usage.total_tokens for result in results) + decomposition_tokens
    attempts, agent_seconds = len(results), sum(result.execution_time for result in results)
    columns = st.columns(4)
    columns[0].metric("Results reported", attempts)
    columns[1].metric("Agent time", formatting.duration(agent_seconds) if results else "—")
    columns[2].metric("Tokens", formatting.token_count(tokens), help="Decomposition plus every attempt")
    columns[3].metric("Cost", formatting.cost(sum(result.cost_usd for result in results)))


def _outcome(task: Task) -> None:
    plan = task.decomposition
    if task.status_reason:
        st.warning(formatting.plain(task.status_reason.message), icon="⏳")
    if task.decomposition_fallback:
        reason = plan.fallback_reason if plan and plan.fallback_reason else "no reason recorded"
        st.warning(f"Claude's plan was replaced by a single subtask: {reason}", icon="🪂")
    elif plan:
        repaired = " after one repair round" if plan.repaired else ""
        took = formatting.duration(plan.duration_ms / 1000)
        st.caption(f"Planned into {len(task.subtasks)} subtask(s) in {took}{repaired}.")
    if task.error:
        st.error(f"**{task.status.value.title()}:** {task.error}", icon="❌")
    result = task.result or {}
    if task.status.value == "completed" and result.get("summary"):
        with st.expander("Result", expanded=True, icon="🏁"):
            st.markdown(str(result["summary"]))
            if result.get("merged"):
                st.json(result["merged"], expanded=False)


def _cancel_button(client: OrchestratorClient, task_id: str) -> None:
    if not st.button("Cancel task", key=f"cancel_{task_id}", icon="🛑"):
        return
    try:
        cancelled = client.cancel_task(task_id)
    except ApiError as error:
        st.error(f"Could not cancel: {error.message}")
        return
    st.toast(f"Cancelled {cancelled} unfinished subtask(s) of {formatting.short_id(task_id)}", icon="🛑")
    st.rerun()
