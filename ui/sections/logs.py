"""Recent agent logs, filtered by agent, level, task and time range; changing a filter redraws only this section."""

import json
from datetime import datetime, timedelta

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from shared.models import AgentLog, LogLevel
from ui import formatting
from ui.api_client import ApiError, LogQuery, OrchestratorClient
from ui.session import fleet_tracker

ANY = "all"
CUSTOM_RANGE = "Custom range"
TIME_RANGES: dict[str, timedelta | None] = {
    "Last 15 minutes": timedelta(minutes=15),
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "All time": None,
    CUSTOM_RANGE: None,
}
DEFAULT_RANGE = "Last 24 hours"
MOST_LOGS = 500
LEVEL_COLOURS = {
    LogLevel.ERROR.value: "background-color: rgba(239, 68, 68, 0.2)",
    LogLevel.WARNING.value: "background-color: rgba(245, 158, 11, 0.18)",
}
LOG_COLUMNS = {
    "Time": st.column_config.DatetimeColumn("Time", format="YYYY-MM-DD HH:mm:ss"),
    "Message": st.column_config.TextColumn("Message", width="large"),
}


def render(client: OrchestratorClient) -> None:
    st.fragment(_logs)(client)


def _logs(client: OrchestratorClient) -> None:
    query = _filters()
    try:
        logs = client.list_logs(query)
    except ApiError as error:
        st.error(f"Logs are unavailable: {error.message}", icon="🔌")
        return
    if not logs:
        st.info("No logs match these filters.", icon="🔎")
        return
    st.dataframe(_styled_table(logs), hide_index=True, column_config=LOG_COLUMNS, key="log_table")
    shown = f"the newest {MOST_LOGS}" if len(logs) == MOST_LOGS else str(len(logs))
    st.caption(f"Showing {shown} log line(s), newest first.")


def _filters() -> LogQuery:
    agent_column, level_column, range_column, task_column, refresh_column = st.columns(
        [2, 2, 2, 3, 1], vertical_alignment="bottom"
    )
    agents = [ANY, *sorted(fleet_tracker().last_seen)]
    agent = agent_column.selectbox("Agent", agents, key="log_agent", accept_new_options=True)
    level = level_column.selectbox("Level", [ANY, *LogLevel], key="log_level", format_func=_level_option)
    window = range_column.selectbox(
        "Time range", list(TIME_RANGES), key="log_range", index=list(TIME_RANGES).index(DEFAULT_RANGE)
    )
    task_id = task_column.text_input("Task id", key="log_task", placeholder="any task").strip()
    refresh_column.button("↻", key="refresh_logs", help="Fetch again", width="stretch")
    since, until = _custom_range() if window == CUSTOM_RANGE else _window(TIME_RANGES[window])
    return LogQuery(
        agent_id=None if agent in (ANY, None) else agent,
        level=None if level == ANY else LogLevel(level),
        task_id=task_id or None,
        since=since,
        until=until,
        limit=MOST_LOGS,
    )


def _level_option(level: str) -> str:
    return "All levels" if level == ANY else formatting.level_badge(level)


def _window(length: timedelta | None) -> tuple[datetime | None, datetime | None]:
    return (datetime.now().astimezone() - length if length else None), None


def _custom_range() -> tuple[datetime | None, datetime | None]:
    # The inputs take local wall-clock times without a zone; their defaults are set once, not on every run.
    now = datetime.now().replace(second=0, microsecond=0)
    st.session_state.setdefault("log_since", now - timedelta(hours=1))
    st.session_state.setdefault("log_until", now + timedelta(minutes=1))
    start, end = st.columns(2)
    since = start.datetime_input("From", key="log_since", format="YYYY-MM-DD")
    until = end.datetime_input("Until", key="log_until", format="YYYY-MM-DD")
    return (since.astimezone() if since else None), (until.astimezone() if until else None)


def _styled_table(logs: list[AgentLog]) -> Styler:
    rows = [
        {
            "Time": formatting.as_utc(log.created_at),
            "Level": formatting.level_badge(log.level.value),
            "Agent": log.agent_id,
            "Task": formatting.short_id(log.task_id) if log.task_id else "—",
            "Subtask": formatting.short_id(log.subtask_id) if log.subtask_id else "—",
            "Message": log.message,
            "Details": json.dumps(log.metadata, default=str) if log.metadata else "",
        }
        for log in logs
    ]
    styles = [LEVEL_COLOURS.get(log.level.value, "") for log in logs]
    return pd.DataFrame(rows).style.apply(lambda row: [styles[row.name]] * len(row), axis=1)
