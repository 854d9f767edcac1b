"""The fleet, redrawn every 5 s: each agent's state and load, agents gone silent in red, load over time."""

from datetime import UTC, datetime

import altair as alt
import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from ui import formatting
from ui.api_client import ApiError, OrchestratorClient
from ui.fleet_tracker import AgentState, AgentView, FleetSample, FleetTracker
from ui.session import fleet_tracker

REFRESH_SECONDS = 5.0
CHART_HEIGHT = 180
TIME_AXIS = alt.X("time:T", title=None, axis=alt.Axis(format="%H:%M:%S", labelAngle=0))
ROW_COLOURS = {
    AgentState.OFFLINE: "background-color: rgba(239, 68, 68, 0.25); color: #b91c1c; font-weight: 600",
    AgentState.FAILED: "background-color: rgba(107, 114, 128, 0.25); color: #7f1d1d",
    AgentState.LATE: "background-color: rgba(245, 158, 11, 0.2)",
}
# The columns an operator scans first fit a wide layout; the rest (slots, failures, executor, URL) scroll in.
AGENT_COLUMNS = {
    "State": st.column_config.TextColumn("State", width=135),
    "Agent": st.column_config.TextColumn("Agent", width=80),
    "Available": st.column_config.CheckboxColumn("Available", width=75),
    "Current task": st.column_config.TextColumn("Current task", width=115),
    "Capabilities": st.column_config.ListColumn("Capabilities", width=250),
    "CPU": st.column_config.ProgressColumn("CPU", min_value=0, max_value=100, format="%.0f%%", width=90),
    "Memory": st.column_config.ProgressColumn("Memory", min_value=0, max_value=100, format="%.0f%%", width=90),
    "Completed": st.column_config.NumberColumn("Completed", help="Subtasks completed since it started", width=80),
    "Last heartbeat": st.column_config.TextColumn("Last heartbeat", width=105),
    "Failed": st.column_config.NumberColumn("Failed", width=60),
}


def render(client: OrchestratorClient, late_after_seconds: float) -> None:
    st.fragment(run_every=REFRESH_SECONDS)(_fleet)(client, late_after_seconds)


def _fleet(client: OrchestratorClient, late_after_seconds: float) -> None:
    now = datetime.now(UTC)
    try:
        agents = client.list_agents()
    except ApiError as error:
        st.error(f"Agents are unavailable: {error.message}", icon="🔌")
        return
    tracker = fleet_tracker()
    tracker.observe(agents, now)
    views = tracker.views(now, late_after_seconds)
    if not views:
        st.info("No agent has registered yet. Agents join by heartbeating into the registry.", icon="🛰️")
        return
    _headline(views)
    st.dataframe(_styled_table(views, now), hide_index=True, column_config=AGENT_COLUMNS, key="agent_table")
    st.caption(f"Refreshes every {REFRESH_SECONDS:g} s. Offline = seen earlier in this session, no heartbeat since.")
    _charts(tracker)


def _headline(views: list[AgentView]) -> None:
    live = [view for view in views if view.state is not AgentState.OFFLINE]
    offline = [view for view in views if view.state is AgentState.OFFLINE]
    columns = st.columns(4)
    columns[0].metric("Live agents", len(live))
    columns[1].metric("Busy", sum(1 for view in live if view.state is AgentState.BUSY))
    columns[2].metric("Offline", len(offline))
    columns[3].metric("Subtasks completed", sum(view.status.tasks_completed for view in live))
    if offline:
        names = ", ".join(view.status.agent_id for view in offline)
        st.error(f"{len(offline)} agent(s) offline: {names}. Their heartbeat expired.", icon="💀")
    failed = [view.status.agent_id for view in views if view.state is AgentState.FAILED]
    if failed:
        st.warning(
            f"{len(failed)} agent(s) declared failed: {', '.join(failed)}. They get no work until restarted.", icon="⛔"
        )


def _styled_table(views: list[AgentView], now: datetime) -> Styler:
    rows = [
        {
            "State": view.state.value,
            "Agent": view.status.agent_id,
            "Available": view.status.is_available and view.state is not AgentState.OFFLINE,
            "Current task": ", ".join(map(formatting.short_id, view.status.current_tasks))
            or (formatting.short_id(view.status.current_task) if view.status.current_task else "—"),
            "Capabilities": [capability.value for capability in view.status.capabilities],
            "CPU": view.status.cpu_usage,
            "Memory": view.status.memory_usage,
            "Completed": view.status.tasks_completed,
            "Last heartbeat": formatting.age(view.status.last_heartbeat, now),
            "Slots": f"{len(view.status.current_tasks)}/{view.status.slots} busy",
            "Failed": view.status.tasks_failed,
            "Executor": view.status.executor,
            "URL": view.status.url,
        }
        for view in views
    ]
    table = pd.DataFrame(rows)
    styles = [ROW_COLOURS.get(view.state, "") for view in views]
    return table.style.apply(lambda row: [styles[row.name]] * len(row), axis=1)


def _charts(tracker: FleetTracker) -> None:
    samples, rates = list(tracker.samples), tracker.throughput_per_minute()
    if not rates:
        st.caption("Load and throughput charts fill in as the page refreshes.")
        return
    load_column, throughput_column = st.columns(2)
    with load_column:
        st.markdown("**Load** — busy and idle agents")
        st.altair_chart(_load_chart(samples))
    with throughput_column:
        st.markdown("**Throughput** — subtasks completed per minute")
        frame = pd.DataFrame([{"time": at, "per minute": rate} for at, rate in rates])
        line = alt.Chart(frame).mark_line(point=True, color="#6366f1")
        y = alt.Y("per minute:Q", axis=alt.Axis(format=".1f"), scale=alt.Scale(domainMin=0))
        st.altair_chart(line.encode(x=TIME_AXIS, y=y).properties(height=CHART_HEIGHT))


def _load_chart(samples: list[FleetSample]) -> alt.Chart:
    frame = pd.DataFrame(
        [{"time": s.at, "agents": s.busy, "state": "busy"} for s in samples]
        + [{"time": s.at, "agents": s.live - s.busy, "state": "idle"} for s in samples]
    )
    colours = alt.Scale(domain=["busy", "idle"], range=["#f97316", "#22c55e"])
    return (
        alt.Chart(frame)
        .mark_area(opacity=0.8)
        .encode(
            x=TIME_AXIS,
            y=alt.Y("agents:Q", stack=True, axis=alt.Axis(tickMinStep=1)),
            color=alt.Color("state:N", scale=colours),
        )
        .properties(height=CHART_HEIGHT)
    )
