"""Agent and orchestrator log lines, refreshed every 5 s on their own, filtered by agent, task, subtask, trace, level
and time range; a task's "Logs" button and links such as `?logs_task=<id>` open them filtered."""

import json
from datetime import datetime, timedelta

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from shared.models import LogLevel
from ui import formatting, live, navigation
from ui.api_client import OrchestratorClient
from ui.api_models import LogLine, LogQuery

REFRESH_SECONDS = 5.0
# Filter widgets by LogQuery field; a link sets them, and they write the URL back.
ID_FILTERS = {"agent_id": "log_agent", "task_id": "log_task", "subtask_id": "log_subtask", "trace_id": "log_trace"}
LINKED = "log_filters_linked"  # the URL's log filters last copied into the widgets
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
    "Time": st.column_config.DatetimeColumn("Time", format="YYYY-MM-DD HH:mm:ss", width=150),
    "Level": st.column_config.TextColumn("Level", width=70),
    "Agent": st.column_config.TextColumn("Agent", width=85),
    "Message": st.column_config.TextColumn("Message", width="large"),
}


def render(client: OrchestratorClient) -> None:
    _follow_link()
    st.fragment(run_every=REFRESH_SECONDS)(_logs)(client)


def _follow_link() -> None:
    """A link's filters replace the widgets' once, so the widgets stay free to change afterwards."""
    linked = navigation.log_filters()
    if linked == st.session_state.get(LINKED):
        return
    st.session_state[LINKED] = linked
    for field, key in ID_FILTERS.items():
        st.session_state[key] = linked.get(field, "")
    if linked:
        st.session_state["log_range"] = "All time"


def _logs(client: OrchestratorClient) -> None:
    query = _filters()
    fetched = live.fetch(f"logs:{query}", lambda: client.list_logs(query))
    live.stale_marker(fetched)
    if fetched.value is None:
        live.show_failure("Logs", fetched)
        return
    logs = fetched.value
    if not logs:
        st.info("No logs match these filters.", icon=":material/search_off:")
        return
    st.dataframe(_styled_table(logs), hide_index=True, column_config=LOG_COLUMNS, key="log_table")
    shown = f"the newest {MOST_LOGS}" if len(logs) == MOST_LOGS else str(len(logs))
    st.caption(f"Showing {shown} log line(s), newest first · refreshes every {REFRESH_SECONDS:g} s.")


def _filters() -> LogQuery:
    labels = {"agent_id": "Agent", "task_id": "Task id", "subtask_id": "Subtask id", "trace_id": "Trace id"}
    typed = {
        field: column.text_input(labels[field], key=key, placeholder="any").strip()
        for column, (field, key) in zip(st.columns(4), ID_FILTERS.items(), strict=True)
    }
    level_column, range_column = st.columns(2)
    level = level_column.selectbox("Level", [ANY, *LogLevel], key="log_level", format_func=_level_option)
    window = range_column.selectbox(
        "Time range", list(TIME_RANGES), key="log_range", index=list(TIME_RANGES).index(DEFAULT_RANGE)
    )
    _write_link(typed)
    since, until = _custom_range() if window == CUSTOM_RANGE else _window(TIME_RANGES[window])
    return LogQuery(
        **{field: value or None for field, value in typed.items()},
        level=None if level == ANY else LogLevel(level),
        since=since,
        until=until,
        limit=MOST_LOGS,
    )


def _write_link(typed: dict[str, str]) -> None:
    """The URL follows the filters, so a copied link opens these logs."""
    for field, value in typed.items():
        param = navigation.LOG_FILTERS[field]
        if value and st.query_params.get(param) != value:
            st.query_params[param] = value
        elif not value and param in st.query_params:
            del st.query_params[param]
    st.session_state[LINKED] = {field: value for field, value in typed.items() if value}


def _level_option(level: str) -> str:
    return "All levels" if level == ANY else str(level)


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


def _styled_table(logs: list[LogLine]) -> Styler:
    rows = [
        {
            "Time": formatting.as_utc(log.created_at),
            "Level": log.level.value,
            "Agent": log.agent_id,
            "Message": log.message,
            "Task": formatting.short_id(log.task_id) if log.task_id else "—",
            "Subtask": formatting.short_id(log.subtask_id) if log.subtask_id else "—",
            "Trace": log.trace_id or "—",
            "Details": json.dumps(log.metadata, default=str) if log.metadata else "",
        }
        for log in logs
    ]
    styles = [LEVEL_COLOURS.get(log.level.value, "") for log in logs]
    return pd.DataFrame(rows).style.apply(lambda row: [styles[row.name]] * len(row), axis=1)
