"""The fleet, refreshed every 5 s on its own: each agent's state, load and record, dead agents first and in red,
from the registry joined with the server's agent history; a click on a row opens that agent (`?agent=<id>`)."""

from datetime import datetime

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from shared.models import AgentCapability
from ui import formatting, live, navigation
from ui.api_client import OrchestratorClient
from ui.api_models import AgentRecord
from ui.clickable_table import clickable_table
from ui.fleet_view import STATE_COLOURS, AgentState, AgentView, fleet
from ui.sections import agent_detail

REFRESH_SECONDS = 5.0
ROW_COLOURS = {
    AgentState.OFFLINE: "background-color: rgba(239, 68, 68, 0.18)",
    AgentState.FAILED: "background-color: rgba(107, 114, 128, 0.25)",
    AgentState.LATE: "background-color: rgba(245, 158, 11, 0.2)",
}
# The columns an operator scans first fit beside the sidebar at 1400 px; the rest (slots, error, URL) scroll in.
AGENT_COLUMNS = {
    "State": st.column_config.TextColumn("State", width=108),
    "Agent": st.column_config.TextColumn("Agent", width=78),
    "Capabilities": st.column_config.ListColumn("Capabilities", width=215),
    "Current task": st.column_config.TextColumn("Current task", width=108),
    "CPU": st.column_config.ProgressColumn("CPU", min_value=0, max_value=100, format="%.0f%%", width=70),
    "Memory": st.column_config.ProgressColumn("Memory", min_value=0, max_value=100, format="%.0f%%", width=70),
    "Completed": st.column_config.NumberColumn("Done", help="Subtasks completed, over restarts", width=55),
    "Failed": st.column_config.NumberColumn("Failed", help="Failed attempts, over restarts", width=55),
    "Last heartbeat": st.column_config.TextColumn("Last heartbeat", width=105),
    "Last error": st.column_config.TextColumn("Last error", width="large"),
}


def render(client: OrchestratorClient, late_after_seconds: float) -> None:
    st.fragment(run_every=REFRESH_SECONDS)(_fleet)(client, late_after_seconds)
    agent_detail.render(client)


def _fleet(client: OrchestratorClient, late_after_seconds: float) -> None:
    now = datetime.now().astimezone()
    agents = live.fetch("agents", client.list_agents)
    history = live.fetch("agent_history", client.agent_history)
    live.stale_marker(agents)
    if agents.value is None:
        live.show_failure("Agents", agents)
        return
    if history.value is None:
        live.show_failure("Agent history (dead agents, counts over restarts)", history)
    views = fleet(agents.value, history.value, now, late_after_seconds)
    if not views:
        st.info("No agent has registered yet. Agents join by heartbeating into the registry.", icon=":material/hub:")
        return
    _headline(views)
    _table(views, now)
    st.caption(
        f"Refreshes every {REFRESH_SECONDS:g} s. Offline = known from its work, no heartbeat now. "
        "Click a row for the agent's attempts."
    )


def _headline(views: list[AgentView]) -> None:
    live_views = [view for view in views if view.state is not AgentState.OFFLINE]
    offline = [view.agent_id for view in views if view.state is AgentState.OFFLINE]
    columns = st.columns(4)
    columns[0].metric("Live agents", len(live_views))
    columns[1].metric("Busy", sum(1 for view in live_views if view.state is AgentState.BUSY))
    columns[2].metric("Offline", len(offline))
    columns[3].metric("Subtasks completed", sum(view.completed for view in views))
    if offline:
        names = ", ".join(offline)
        st.error(f"{len(offline)} agent(s) offline: {names}. No heartbeat.", icon=":material/heart_broken:")
    offered = {capability for view in live_views for capability in view.capabilities}
    missing = [capability.value for capability in AgentCapability if capability.value not in offered]
    if missing:
        st.caption(f":material/report: No live agent offers {', '.join(missing)}: subtasks that need it wait.")
    failed = [view.agent_id for view in views if view.state is AgentState.FAILED]
    if failed:
        st.warning(
            f"{len(failed)} agent(s) declared failed: {', '.join(failed)}. They get no work until restarted.",
            icon=":material/block:",
        )


def _table(views: list[AgentView], now: datetime) -> None:
    clickable_table(
        "agent", _styled(views, now), [view.agent_id for view in views], AGENT_COLUMNS, navigation.select_agent
    )


def _styled(views: list[AgentView], now: datetime) -> Styler:
    table = pd.DataFrame([_row(view, now) for view in views])
    rows = [ROW_COLOURS.get(view.state, "") for view in views]
    styled = table.style.apply(lambda row: [rows[row.name]] * len(row), axis=1)
    return styled.map(_state_style, subset=["State"])


def _state_style(cell: object) -> str:
    colour = STATE_COLOURS.get(AgentState(str(cell)))
    return f"color: {colour}; font-weight: 600" if colour else ""


def _row(view: AgentView, now: datetime) -> dict[str, object]:
    status, record = view.status, view.record
    current = (status.current_tasks or ([status.current_task] if status.current_task else [])) if status else []
    return {
        "State": view.state.value,
        "Agent": view.agent_id,
        "Capabilities": view.capabilities,
        "Current task": ", ".join(map(formatting.short_id, current)) or "—",
        "CPU": status.cpu_usage if status else None,
        "Memory": status.memory_usage if status else None,
        "Completed": view.completed,
        "Failed": view.failed,
        "Last heartbeat": formatting.age(view.last_seen, now) if view.last_seen else "—",
        "Last error": _last_error(record),
        "Slots": f"{len(status.current_tasks)}/{status.slots} busy" if status else "—",
        "Executor": status.executor if status else "—",
        "URL": status.url if status else "—",
    }


def _last_error(record: AgentRecord | None) -> str:
    return formatting.preview(record.last_error, 160) if record and record.last_error else ""
