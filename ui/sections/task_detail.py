"""The watched task in detail, refreshed on its own every 2 s while it runs (every 10 s once it ended, since a retry
can wake it): progress, totals, outcome, its actions, its subtasks, attempts and artifacts."""

from datetime import datetime
from html import escape

import streamlit as st

from shared.models import SubTaskStatus, Task, TaskStatus
from ui import formatting, live, navigation
from ui.api_client import OrchestratorClient, TaskDetail
from ui.api_models import TaskCost
from ui.sections import artifact_view, attempt_view, cost_view, subtask_view, task_actions, task_events
from ui.sections.tasks import NEWEST_TASK
from ui.why import reason_kind, reason_line

LIVE_REFRESH_SECONDS = 2.0
ENDED_REFRESH_SECONDS = 10.0
LIVE_TASKS = "live_tasks"  # task id -> whether it had not ended when last fetched
BAR_COLOURS = {TaskStatus.COMPLETED: "#16a34a", TaskStatus.FAILED: "#dc2626", TaskStatus.CANCELLED: "#9ca3af"}
RUNNING_BAR = "#3b82f6"


def watched_task() -> str | None:
    """The task the URL names, else the newest one listed."""
    return navigation.selected_task() or st.session_state.get(NEWEST_TASK)


def is_live(task_id: str | None) -> bool:
    """Whether the task had not ended when last fetched (unknown tasks are not)."""
    return bool(task_id) and st.session_state.get(LIVE_TASKS, {}).get(task_id, False)


def render(client: OrchestratorClient) -> None:
    task_id = watched_task()
    if not task_id:
        return
    st.fragment(run_every=_pace(task_id))(_watched)(client, task_id)
    task_events.render(client, task_id, is_live(task_id))


def _watched(client: OrchestratorClient, shown_id: str) -> None:
    task_id = watched_task()
    if task_id != shown_id:  # the newest task changed: the fragments below belong to the other one
        st.rerun(scope="app")
    fetched = live.fetch(f"task:{task_id}", lambda: client.get_task(shown_id))
    live.stale_marker(fetched)
    if fetched.value is None:
        live.show_failure(f"Task {shown_id}", fetched)
        return
    paced = _pace(shown_id)
    st.session_state.setdefault(LIVE_TASKS, {})[shown_id] = not fetched.value.task.status.is_terminal
    if _pace(shown_id) != paced and fetched.stale_since is None:
        st.rerun(scope="app")  # ended, woke up, or first seen ended: the fragments take their new pace
    _draw(client, fetched.value)


def _pace(task_id: str) -> float:
    """Seconds between refreshes: fast while the task runs (or is not known yet), slow once it ended."""
    known = task_id in st.session_state.get(LIVE_TASKS, {})
    return LIVE_REFRESH_SECONDS if not known or is_live(task_id) else ENDED_REFRESH_SECONDS


def _draw(client: OrchestratorClient, detail: TaskDetail) -> None:
    task, now = detail.task, datetime.now().astimezone()
    with st.container(border=True):
        _heading(task, now)
        task_actions.render(client, task.id, task.status)
        if is_simulated(detail):
            st.warning(
                "**SIMULATED** — offline mode: these results come from the local Claude simulator, not from Claude.",
                icon=formatting.SIMULATED_ICON,
            )
        _progress(task)
        cost = cost_view.fetch(client, task.id)
        _totals(detail, cost)
        cost_view.breakdown(task, cost)
        _outcome(detail)
        subtask_view.render(client, detail, cost, now)
        cost_view.calls(cost, task.id)
        attempt_view.render(client, task.id)
        artifact_view.render(client, task.id)


def is_simulated(detail: TaskDetail) -> bool:
    result = detail.task.result or {}
    return bool(result.get("simulated")) or any(item.simulated for item in detail.results)


def _heading(task: Task, now: datetime) -> None:
    st.markdown(f"#### {formatting.status_badge(task.status.value)} · `{task.id}`")
    st.markdown(formatting.plain(task.description))
    pace = "refreshes every 10 s (task ended)" if task.status.is_terminal else "refreshes every 2 s"
    st.caption(
        f"Created {formatting.age(task.created_at, now)} by {task.user_id or 'anonymous'} · "
        f"updated {formatting.age(task.updated_at, now)} · {pace} · "
        f"link: [{navigation.task_link(task.id)}]({navigation.task_link(task.id)})"
    )


def _progress(task: Task) -> None:
    """A bar in the task's colour: green once completed, red when failed, blue while it runs."""
    total = len(task.subtasks)
    done = sum(1 for subtask in task.subtasks if subtask.status is SubTaskStatus.COMPLETED)
    share = done / total if total else 0.0
    colour = BAR_COLOURS.get(task.status, RUNNING_BAR)
    text = f"{done} of {total} subtasks completed"
    st.html(
        f'<div style="font-size:0.9rem">{escape(text)}</div>'
        f'<div role="progressbar" aria-valuenow="{share * 100:.0f}" data-status="{task.status.value}" '
        f'style="height:8px;border-radius:4px;background:rgba(128,128,128,0.2)">'
        f'<div style="width:{share * 100:.1f}%;height:8px;border-radius:4px;background:{colour}"></div></div>'
    )


def _totals(detail: TaskDetail, cost: TaskCost | None) -> None:
    """What the task has cost so far, over its planning and every attempt (retries and late results cost too)."""
    results = detail.results
    agent_seconds = sum(result.execution_time for result in results)
    columns = st.columns(4)
    columns[0].metric("Results reported", len(results))
    columns[1].metric("Agent time", formatting.duration(agent_seconds) if results else "—")
    tokens = cost_view.total_tokens(detail, cost)
    columns[2].metric("Tokens", formatting.token_count(tokens), help="Planning plus every attempt")
    columns[3].metric("Cost", formatting.cost(cost_view.total_cost(detail, cost)), help="Planning plus every attempt")


def _outcome(detail: TaskDetail) -> None:
    task, plan = detail.task, detail.task.decomposition
    if task.status_reason and task.status_reason.message != task.error:  # an ending's reason is its error, below
        st.warning(reason_line(task.status_reason), icon=reason_kind(task.status_reason).icon)
    if task.decomposition_fallback:
        reason = plan.fallback_reason if plan and plan.fallback_reason else "no reason recorded"
        st.warning(f"Plan fallback: Claude's plan was replaced by one subtask: {reason}", icon=":material/warning:")
    elif plan:
        repaired = " after one repair round" if plan.repaired else ""
        took = formatting.duration(plan.duration_ms / 1000)
        model = f" by {detail.decomposition_model}" if detail.decomposition_model else ""
        priced = f", {formatting.cost(detail.decomposition_cost_usd)}" if detail.decomposition_cost_usd else ""
        st.caption(f"Planned into {len(task.subtasks)} subtask(s){model} in {took}{repaired}{priced}.")
    if task.error:
        st.error(f"**{task.status.value.title()}:** {task.error}", icon=":material/error:")
    result = task.result or {}
    if task.status is TaskStatus.COMPLETED and result.get("summary"):
        with st.expander("Result", expanded=True, icon=":material/flag:"):
            st.markdown(str(result["summary"]))
            if result.get("merged"):
                st.json(result["merged"], expanded=False)
