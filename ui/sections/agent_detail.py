"""One agent (`?agent=<id>`), alive or dead: its record over restarts, its latest attempts and its failures."""

from datetime import datetime

import pandas as pd
import streamlit as st

from ui import formatting, live, navigation
from ui.api_client import OrchestratorClient
from ui.api_models import AgentRecord, AttemptSpan

REFRESH_SECONDS = 5.0
MOST_ATTEMPTS = 50
ATTEMPT_COLUMNS = {
    "Task": st.column_config.LinkColumn("Task", width=115, display_text=r"\?task=(task_.{8})"),
    "Subtask": st.column_config.TextColumn("Subtask", width=120),
    "Attempt": st.column_config.NumberColumn("Attempt", width=65),
    "Status": st.column_config.TextColumn("Status", width=85),
    "Error": st.column_config.TextColumn("Error", width="large"),
}


def render(client: OrchestratorClient) -> None:
    agent_id = navigation.selected_agent()
    if agent_id:
        st.fragment(run_every=REFRESH_SECONDS)(_agent)(client, agent_id)


def _agent(client: OrchestratorClient, agent_id: str) -> None:
    with st.container(border=True):
        heading, close = st.columns([6, 1], vertical_alignment="center")
        heading.markdown(f"#### :material/smart_toy: Agent `{agent_id}`")
        if close.button("Close", key="close_agent", icon=":material/close:"):
            navigation.select_agent(None)
            st.rerun(scope="app")
        history = live.fetch("agent_history", client.agent_history)
        attempts = live.fetch(f"agent_attempts:{agent_id}", lambda: client.agent_attempts(agent_id, MOST_ATTEMPTS))
        live.stale_marker(attempts)
        if history.value is not None:
            _record(next((record for record in history.value if record.agent_id == agent_id), None))
        else:
            live.show_failure("Agent history", history, part=True)
        if attempts.value is None:
            live.show_failure("The agent's attempts", attempts, part=True)
            return
        _attempts(agent_id, attempts.value)


def _record(record: AgentRecord | None) -> None:
    if record is None:
        st.caption("No work of this tenant has reached this agent yet.")
        return
    now = datetime.now().astimezone()
    state = "alive" if record.alive else "offline"
    seen = formatting.age(record.last_seen, now) if record.last_seen else "never"
    first = formatting.age(record.first_seen, now) if record.first_seen else "—"
    role = f" · role {record.role}" if record.role else ""
    st.caption(f"{state} · first seen {first} · last seen {seen}{role} · {', '.join(record.capabilities) or '—'}")
    columns = st.columns(2)
    columns[0].metric("Subtasks completed", record.subtasks_completed, help="Over every restart")
    columns[1].metric("Attempts failed", record.subtasks_failed, help="Over every restart")
    if record.last_error:
        st.warning(f"Last error: {formatting.plain(record.last_error)}", icon=":material/error:")


def _attempts(agent_id: str, attempts: list[AttemptSpan]) -> None:
    if not attempts:
        st.caption("No attempt recorded for this agent.")
        return
    failures = [attempt for attempt in attempts if attempt.status == "failed"]
    st.markdown(f"**Latest attempts** ({len(attempts)}, newest first) · {len(failures)} failed")
    frame = pd.DataFrame([_row(attempt) for attempt in attempts])
    styled = frame.style.map(formatting.status_style, subset=["Status"])
    st.dataframe(styled, hide_index=True, column_config=ATTEMPT_COLUMNS, key=f"agent_attempts_{agent_id}")


def _row(attempt: AttemptSpan) -> dict[str, object]:
    return {
        "Task": navigation.task_link(attempt.task_id) if attempt.task_id else "",
        "Subtask": formatting.short_id(attempt.subtask_id),
        "Attempt": attempt.attempt,
        "Status": formatting.status_text(attempt.status),
        "Queued": formatting.as_utc(attempt.queued_at).astimezone().strftime("%H:%M:%S") if attempt.queued_at else "—",
        "Waited": formatting.duration(attempt.wait_ms / 1000) if attempt.wait_ms is not None else "—",
        "Ran": formatting.duration(attempt.run_ms / 1000) if attempt.run_ms is not None else "—",
        "Error": attempt.error or "",
    }
