"""A task's subtasks: the dependency graph, an indented table of what waits on what and why, and each one's output,
with a retry button on a failed one."""

import json
from datetime import datetime

import pandas as pd
import streamlit as st

from shared.models import SubTask, SubTaskResult, SubTaskStatus
from ui import formatting
from ui.api_client import OrchestratorClient, TaskDetail
from ui.api_models import TaskCost
from ui.dependency_view import PlanStep, dependency_dot, plan_steps
from ui.sections import cost_view, task_actions
from ui.why import PROVIDER_UNAVAILABLE, subtask_why

SUBTASK_COLUMNS = {
    "#": st.column_config.NumberColumn("#", width=35),
    "Subtask": st.column_config.TextColumn("Subtask", width=200, help="Indented under what it waits on"),
    "Status": st.column_config.TextColumn("Status", width=85),
    "Why": st.column_config.TextColumn("Why", width=170, help="Error, what blocks it, why it was retried"),
    "Waits on": st.column_config.TextColumn("Waits on", width=62),
    "Agent": st.column_config.TextColumn("Agent", width=85),
    "Attempts": st.column_config.NumberColumn("Attempts", width=65),
    "Duration": st.column_config.TextColumn("Duration", width=75),
    "Tokens": st.column_config.TextColumn("Tokens", width=55, help="Every attempt's, by the cost ledger"),
    "Cost": st.column_config.TextColumn("Cost", width=62, help="Every attempt's, by the cost ledger"),
}
NO_PLAN_YET = "No subtasks yet: the plan waits on Claude, and is made when Claude answers again."
# While a subtask waits for a (new) agent, the agent of an earlier attempt is not its agent.
HAS_AGENT = {SubTaskStatus.RUNNING, SubTaskStatus.COMPLETED, SubTaskStatus.FAILED}


def attempts_by_subtask(results: list[SubTaskResult]) -> dict[str, list[SubTaskResult]]:
    """Each subtask's reported results, oldest attempt first."""
    grouped: dict[str, list[SubTaskResult]] = {}
    for result in sorted(results, key=lambda item: (item.attempt, item.created_at)):
        grouped.setdefault(result.subtask_id, []).append(result)
    return grouped


def render(client: OrchestratorClient, detail: TaskDetail, cost: TaskCost | None, now: datetime) -> None:
    """`cost` is the task's ledger (None: the results' own figures stand in)."""
    task = detail.task
    if not task.subtasks:
        waiting = task.status_reason and task.status_reason.code == PROVIDER_UNAVAILABLE
        st.info(NO_PLAN_YET if waiting else "No subtasks yet: the plan is being made.", icon=":material/extension:")
        return
    steps = plan_steps(task.subtasks)
    numbers = {step.subtask.id: step.number for step in steps}
    attempts = attempts_by_subtask(detail.results)
    st.markdown("**Plan** — arrows point from a subtask to the ones waiting on it")
    st.graphviz_chart(dependency_dot(steps))  # natural size: stretched, a two-node plan fills the screen
    rows = [
        _row(step, attempts.get(step.subtask.id, []), why_of(detail, step.subtask, numbers), cost, now)
        for step in steps
    ]
    frame = pd.DataFrame(rows).style.map(formatting.status_style, subset=["Status"])
    st.dataframe(frame, hide_index=True, column_config=SUBTASK_COLUMNS, key=f"subtasks_{task.id}")
    for step in steps:
        _subtask_expander(client, step, attempts.get(step.subtask.id, []), why_of(detail, step.subtask, numbers), cost)


def why_of(detail: TaskDetail, subtask: SubTask, numbers: dict[str, int]) -> str:
    return subtask_why(subtask, detail.notes.get(subtask.id), numbers)


def _row(
    step: PlanStep, attempts: list[SubTaskResult], why: str, cost: TaskCost | None, now: datetime
) -> dict[str, object]:
    subtask, latest = step.subtask, attempts[-1] if attempts else None
    agent = (subtask.assigned_agent or (latest.agent_id if latest else None)) if subtask.status in HAS_AGENT else None
    indent = "\u2003" * step.depth + ("↳ " if step.depth else "")
    simulated = latest is not None and latest.simulated
    tokens, usd = cost_view.subtask_totals(cost, subtask.id, attempts)
    return {
        "#": step.number,
        "Subtask": indent + formatting.preview(subtask.description, 70),
        "Status": formatting.status_text(subtask.status.value),
        "Why": why,
        "Waits on": ", ".join(f"#{number}" for number in step.waits_on) or "—",
        "Agent": (agent or "—") + (f" {formatting.SIMULATED_MARK}" if agent and simulated else ""),
        "Attempts": subtask.attempt_count,
        "Duration": _duration(subtask.status, subtask.assigned_at, latest, now),
        "Tokens": formatting.token_count(tokens),
        "Cost": formatting.cost(usd),
    }


def _duration(status: SubTaskStatus, assigned_at: datetime | None, latest: SubTaskResult | None, now: datetime) -> str:
    if status is SubTaskStatus.RUNNING and assigned_at:
        return f"running {formatting.duration(formatting.seconds_between(assigned_at, now))}"
    return formatting.duration(latest.execution_time) if latest else "—"


def _subtask_expander(
    client: OrchestratorClient, step: PlanStep, attempts: list[SubTaskResult], why: str, cost: TaskCost | None
) -> None:
    subtask = step.subtask
    label = f"{step.number}. {formatting.preview(subtask.description, 90)}"
    with st.expander(label, expanded=False, icon=formatting.STATUS_ICONS.get(subtask.status.value)):
        capabilities = ", ".join(capability.value for capability in subtask.required_capabilities)
        failed_on = f" · failed on: {', '.join(subtask.failed_agent_ids)}" if subtask.failed_agent_ids else ""
        st.caption(f"`{subtask.id}` · needs {capabilities} · priority {subtask.priority}{failed_on}")
        st.markdown(formatting.plain(subtask.description))
        if why != "—":
            st.warning(formatting.plain(why), icon=":material/help:")
        if subtask.status is SubTaskStatus.FAILED:
            task_actions.retry_subtask_button(client, subtask.task_id, subtask.id)
        if not attempts:
            st.caption("No result reported yet.")
        for result in attempts:
            _attempt(result, cost_view.attempt_totals(cost, result), show_number=len(attempts) > 1)


def _attempt(result: SubTaskResult, spent: tuple[int, float], *, show_number: bool) -> None:
    simulated = f" · {formatting.SIMULATED_BADGE}" if result.simulated else ""
    heading = f"Attempt {result.attempt} · " if show_number else ""
    tokens, usd = spent
    st.caption(
        f"{heading}{formatting.status_badge(result.status.value)} on **{result.agent_id}** · "
        f"{formatting.duration(result.execution_time)} · {formatting.token_count(tokens)} "
        f"tokens · {formatting.cost(usd)} · {result.num_turns} turn(s){simulated}"
    )
    if result.output:
        st.code(result.output, language=_language(result.output), wrap_lines=True)
    if result.error:
        st.error(result.error, icon=":material/error:")


def _language(output: str) -> str | None:
    """JSON outputs get highlighted; anything else stays plain text."""
    try:
        json.loads(output)
    except ValueError:
        return None
    return "json"
