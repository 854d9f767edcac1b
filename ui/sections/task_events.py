"""The watched task's lifecycle events, followed from its event stream.

A fragment of its own reads the stream (ui/event_follower.py) on each of its runs while the task is live and redraws
only itself; the task's detail refreshes in its own fragment. The last event id is kept in session state, so each
read picks up exactly where the previous one stopped.
"""

from typing import cast

import pandas as pd
import streamlit as st

from ui import formatting
from ui.api_client import OrchestratorClient
from ui.event_follower import TaskTimeline, TimelineEvent, read_new_events

TIMELINES = "task_timelines"  # session state: task id -> TaskTimeline
# Between two reads of a live task's stream. A read listens only briefly: the page's fragments take turns on one
# script thread, and a long listen would hold the others back.
FOLLOW_EVERY_SECONDS = 3.0
LISTEN_SECONDS = 0.3
TIMELINE_COLUMNS = {
    "Time": st.column_config.TextColumn("Time", width=90),
    "Event": st.column_config.TextColumn("Event", width=170),
    "Subtask": st.column_config.TextColumn("Subtask", width=120),
    "Details": st.column_config.TextColumn("Details", width=520),
}


def timeline_of(task_id: str) -> TaskTimeline:
    timelines = st.session_state.setdefault(TIMELINES, {})
    if task_id not in timelines:
        timelines[task_id] = TaskTimeline()
    return cast(TaskTimeline, timelines[task_id])


def render(client: OrchestratorClient, task_id: str, live: bool) -> None:
    """The task's timeline; while the task is live, a fragment that follows its stream."""
    st.fragment(run_every=FOLLOW_EVERY_SECONDS if live else None)(_timeline)(client, task_id, live)


def _timeline(client: OrchestratorClient, task_id: str, live: bool) -> None:
    """The stream is read only while the expander is open; the next read resumes from the last event kept."""
    events = st.expander("Lifecycle events", icon=":material/podcasts:", key=events_key(task_id), on_change="rerun")
    if not events.open:
        return
    timeline = timeline_of(task_id)
    if live or not (timeline.events or timeline.ended):
        read_new_events(client, task_id, timeline, window=LISTEN_SECONDS)
    with events:
        _draw(timeline)


def events_key(task_id: str) -> str:
    return f"events_open_{task_id}"


def _draw(timeline: TaskTimeline) -> None:
    if timeline.unavailable:
        st.warning(f"The task's event stream is unavailable ({timeline.unavailable}); the task still refreshes.")
    if timeline.trimmed:
        st.info("Earlier events were trimmed from the capped stream; these are the ones it still holds.")
    if not timeline.events:
        st.caption("No events yet.")
        return
    st.caption(f"{len(timeline.events)} event(s), oldest first")
    rows = [_row(event) for event in timeline.events]
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config=TIMELINE_COLUMNS, key="task_timeline")


def _row(event: TimelineEvent) -> dict[str, str]:
    details = ", ".join(f"{name}: {formatting.preview(str(value), 60)}" for name, value in event.data.items())
    return {
        "Time": event.occurred_at[11:19],
        "Event": event.event_type,
        "Subtask": formatting.short_id(event.subtask_id) if event.subtask_id else "—",
        "Details": details or "—",
    }
