"""A task's attempts: when each was queued, assigned, started and ended, how long it waited and ran (a table and a
chart of waits and runs), and the tool calls each attempt made."""

import json
from datetime import datetime

import altair as alt
import pandas as pd
import streamlit as st

from ui import formatting, live
from ui.api_client import OrchestratorClient
from ui.api_models import AttemptSpan, AttemptToolCalls, ToolCallRecord

TIMELINE_COLUMNS = {
    "Subtask": st.column_config.TextColumn("Subtask", width=120),
    "Attempt": st.column_config.NumberColumn("Attempt", width=65),
    "Agent": st.column_config.TextColumn("Agent", width=80),
    "Status": st.column_config.TextColumn("Status", width=85),
    "Error": st.column_config.TextColumn("Error", width="medium"),
}
TOOL_COLUMNS = {
    "Arguments": st.column_config.TextColumn("Arguments", width="medium"),
    "Result size": st.column_config.TextColumn("Result size", width=85, help="Characters of the recorded result"),
    "Error": st.column_config.TextColumn("Error", width="medium"),
}
PHASE_COLOURS = alt.Scale(domain=["waiting", "running"], range=["#d1d5db", "#3b82f6"])


def render(client: OrchestratorClient, task_id: str) -> None:
    """Two expanders, each fetched only while it is open."""
    timeline = st.expander(
        "Timeline of attempts", icon=":material/timeline:", key=timeline_key(task_id), on_change="rerun"
    )
    if timeline.open:
        with timeline:
            spans = live.fetch(f"timeline:{task_id}", lambda: client.task_timeline(task_id))
            if spans.value is None:
                live.show_failure("Timeline", spans, part=True)
            else:
                _timeline(spans.value, task_id)
    tools = st.expander("Tool calls", icon=":material/build:", key=tool_calls_key(task_id), on_change="rerun")
    if tools.open:
        with tools:
            calls = live.fetch(f"tool_calls:{task_id}", lambda: client.task_tool_calls(task_id))
            if calls.value is None:
                live.show_failure("Tool calls", calls, part=True)
            else:
                _tool_calls(calls.value, task_id)


def timeline_key(task_id: str) -> str:
    return f"timeline_open_{task_id}"


def tool_calls_key(task_id: str) -> str:
    return f"tool_calls_open_{task_id}"


def _timeline(spans: list[AttemptSpan], task_id: str) -> None:
    if not spans:
        st.caption("No attempt yet: subtasks get one when they are queued.")
        return
    now = datetime.now().astimezone()
    rows = [_span_row(span) for span in spans]
    frame = pd.DataFrame(rows).style.map(formatting.status_style, subset=["Status"])
    st.dataframe(frame, hide_index=True, column_config=TIMELINE_COLUMNS, key=f"timeline_{task_id}")
    st.altair_chart(_phase_chart(spans, now), key=f"timeline_chart_{task_id}")


def _span_row(span: AttemptSpan) -> dict[str, object]:
    return {
        "Subtask": formatting.short_id(span.subtask_id),
        "Attempt": span.attempt,
        "Agent": span.agent_id or "—",
        "Status": formatting.status_text(span.status),
        "Queued": _clock(span.queued_at),
        "Assigned": _clock(span.assigned_at),
        "Started": _clock(span.started_at),
        "Ended": _clock(span.ended_at),
        "Waited": formatting.duration(span.wait_ms / 1000) if span.wait_ms is not None else "—",
        "Ran": formatting.duration(span.run_ms / 1000) if span.run_ms is not None else "—",
        "Error": span.error or "",
    }


def _clock(moment: datetime | None) -> str:
    return formatting.as_utc(moment).astimezone().strftime("%H:%M:%S") if moment else "—"


def phases(span: AttemptSpan, now: datetime) -> list[tuple[str, datetime, datetime]]:
    """The attempt's wait (queued until it started, or until now) and run (started until it ended, or now)."""
    if span.queued_at is None:
        return []
    started = span.started_at or span.assigned_at
    end = span.ended_at or now
    waited = ("waiting", span.queued_at, started or end)
    return [waited, ("running", started, end)] if started else [waited]


def _phase_chart(spans: list[AttemptSpan], now: datetime) -> alt.Chart:
    frame = pd.DataFrame(
        [
            {"attempt": f"{formatting.short_id(span.subtask_id)} #{span.attempt}", "phase": phase, "from": a, "to": b}
            for span in spans
            for phase, a, b in phases(span, now)
        ]
    )
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("from:T", title=None, axis=alt.Axis(format="%H:%M:%S")),
            x2="to:T",
            y=alt.Y("attempt:N", title=None, sort=None),
            color=alt.Color("phase:N", scale=PHASE_COLOURS, legend=alt.Legend(orient="bottom", title=None)),
        )
        .properties(height=max(60, 26 * len(spans)))
    )


def _tool_calls(attempts: list[AttemptToolCalls], task_id: str) -> None:
    rows = [_call_row(attempt, call) for attempt in attempts for call in attempt.tool_calls]
    if not rows:
        st.caption("No tool call recorded for this task.")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config=TOOL_COLUMNS, key=f"tool_calls_{task_id}")


def _call_row(attempt: AttemptToolCalls, call: ToolCallRecord) -> dict[str, object]:
    return {
        "Subtask": formatting.short_id(attempt.subtask_id) if attempt.subtask_id else "—",
        "Attempt": attempt.attempt,
        "Tool": call.tool_name,
        "Arguments": formatting.preview(json.dumps(call.arguments, default=str), 200),
        "Result size": f"{len(call.outcome)} chars",
        "Duration": formatting.duration(call.duration_ms / 1000),
        "Error": formatting.preview(call.outcome, 200) if call.is_error else "",
    }
