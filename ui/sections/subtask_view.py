"""A task's subtasks: the dependency graph, an indented table of what waits on what, and each one's output."""

import json
from datetime import datetime

import pandas as pd
import streamlit as st

from shared.models import SubTaskResult, SubTaskStatus, Task
from ui import formatting
from ui.dependency_view import PlanStep, dependency_dot, plan_steps

SUBTASK_COLUMNS = {
    "#": st.column_config.NumberColumn("#", width="small"),
    "Subtask": st.column_config.TextColumn("Subtask", width="large", help="Indented under what it waits on"),
    "Waits on": st.column_config.TextColumn("Waits on", width="small"),
    "Attempts": st.column_config.NumberColumn("Attempts", width="small"),
}


def attempts_by_subtask(results: list[SubTaskResult]) -> dict[str, list[SubTaskResult]]:
    """Each subtask's reported results, oldest attempt first."""
    grouped: dict[str, list[SubTaskResult]] = {}
    for result in sorted(results, key=lambda item: (item.attempt, item.created_at)):
        grouped.setdefault(result.subtask_id, []).append(result)
    return grouped


def render(task: Task, results: list[SubTaskResult], now: datetime) -> None:
    if not task.subtasks:
        st.info("No subtasks yet: the plan is being made.", icon="🧩")
        return
    steps = plan_steps(task.subtasks)
    attempts = attempts_by_subtask(results)
    st.markdown("**Plan** — arrows point from a subtask to the ones waiting on it")
    st.graphviz_chart(dependency_dot(steps))  # natural size: stretched, a two-node plan fills the screen
    rows = [_row(step, attempts.get(step.subtask.id, []), now) for step in steps]
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config=SUBTASK_COLUMNS, key=f"subtasks_{task.id}")
    for step in steps:
        _subtask_expander(step, attempts.get(step.subtask.id, []))


def _row(step: PlanStep, attempts: list[SubTaskResult], now: datetime) -> dict[str, object]:
    subtask, latest = step.subtask, attempts[-1] if attempts else None
    agent = subtask.assigned_agent or (latest.agent_id if latest else None)
    indent = "\u2003" * step.depth + ("↳ " if step.depth else "")
    return {
        "#": step.number,
        "Subtask": indent + formatting.preview(subtask.description, 70),
        "Status": formatting.status_badge(subtask.status.value),
        "Reason": formatting.reason(subtask.status_reason),
        "Waits on": ", ".join(f"#{number}" for number in step.waits_on) or "—",
        "Agent": (agent or "—") + (" 🧪" if latest and latest.simulated else ""),
        "Attempts": subtask.attempt_count,
        "Duration": _duration(subtask.status, subtask.assigned_at, latest, now),
        "Tokens": formatting.token_count(sum(item.token_usage.total_tokens for item in attempts)),
        "Cost": formatting.cost(sum(item.cost_usd for item in attempts)),
    }


def _duration(status: SubTaskStatus, assigned_at: datetime | None, latest: SubTaskResult | None, now: datetime) -> str:
    if status is SubTaskStatus.RUNNING and assigned_at:
        return f"running {formatting.duration(formatting.seconds_between(assigned_at, now))}"
    return formatting.duration(latest.execution_time) if latest else "—"


def _subtask_expander(step: PlanStep, attempts: list[SubTaskResult]) -> None:
    subtask = step.subtask
    icon = formatting.STATUS_ICONS.get(subtask.status.value, "•")
    label = f"{icon} {step.number}. {formatting.preview(subtask.description, 90)}"
    with st.expander(label, expanded=False):
        capabilities = ", ".join(capability.value for capability in subtask.required_capabilities)
        failed_on = f" · failed on: {', '.join(subtask.failed_agent_ids)}" if subtask.failed_agent_ids else ""
        st.caption(f"`{subtask.id}` · needs {capabilities} · priority {subtask.priority}{failed_on}")
        st.markdown(formatting.plain(subtask.description))
        if subtask.status_reason:
            st.warning(formatting.plain(subtask.status_reason.message), icon="⏳")
        if not attempts:
            st.caption("No result reported yet.")
        for result in attempts:
            _attempt(result, show_number=len(attempts) > 1)


def _attempt(result: SubTaskResult, *, show_number: bool) -> None:
    simulated = f" · {formatting.SIMULATED_BADGE}" if result.simulated else ""
    heading = f"Attempt {result.attempt} · " if show_number else ""
    st.caption(
        f"{heading}{formatting.status_badge(result.status.value)} on **{result.agent_id}** · "
        f"{formatting.duration(result.execution_time)} · {formatting.token_count(result.token_usage.total_tokens)} "
        f"tokens · {formatting.cost(result.cost_usd)} · {result.num_turns} turn(s){simulated}"
    )
    if result.output:
        st.code(result.output, language=_language(result.output), wrap_lines=True)
    if result.error:
        st.error(result.error, icon="❌")


def _language(output: str) -> str | None:
    """JSON outputs get highlighted; anything else stays plain text."""
    try:
        json.loads(output)
    except ValueError:
        return None
    return "json"
