"""A task's event stream as the dashboard follows it: each read takes what arrived within a short window.

A Streamlit run cannot hold a stream open between runs, so the task view reads `GET /tasks/{id}/events` from the last
event id it kept, for at most a window's time, and redraws when something came. Nothing is polled: an idle task
costs one open stream per window and no other request.
"""

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, SSEError

from ui.api_client import ApiError, OrchestratorClient

# How long one read listens; the page stays responsive, and a new event shows within about this long.
WINDOW_SECONDS = 1.5
ENDING_EVENTS = {"TASK_COMPLETED", "TASK_FAILED", "TASK_CANCELLED"}


@dataclass(frozen=True)
class TimelineEvent:
    event_id: str
    event_type: str
    occurred_at: str
    subtask_id: str | None
    data: dict[str, Any]


@dataclass
class TaskTimeline:
    """What the dashboard knows of one task's stream: its events so far and where to resume."""

    events: list[TimelineEvent] = field(default_factory=list)
    last_event_id: str | None = None
    ended: bool = False
    trimmed: bool = False  # the stream dropped events this timeline had not seen (a reset)
    unavailable: str | None = None  # why the last read failed; the view then refreshes without events

    def take(self, message: ServerSentEvent) -> bool:
        """Apply one message; returns whether it changes what the task view shows."""
        if message.event == "reset":
            self.events, self.trimmed = [], True
            return True
        if message.event == "end":
            self.ended = True
            return True
        if not message.id or not message.data:  # a reconnection hint: nothing to show
            return False
        body = json.loads(message.data)
        self.events.append(
            TimelineEvent(message.id, body["event_type"], body["occurred_at"], body.get("subtask_id"), body["data"])
        )
        self.last_event_id = message.id
        self.ended = self.ended or body["event_type"] in ENDING_EVENTS
        return True


def read_new_events(
    client: OrchestratorClient, task_id: str, timeline: TaskTimeline, window: float = WINDOW_SECONDS
) -> bool:
    """Read what the task's stream has after the timeline's last id, for at most `window` seconds (less when the
    stream closes: the task ended). Returns whether anything the task view shows changed."""
    changed, deadline = False, time.monotonic() + window
    headers = {"Last-Event-ID": timeline.last_event_id} if timeline.last_event_id else {}
    try:
        with client.event_stream(f"/tasks/{task_id}/events", headers=headers, read_timeout=window) as source:
            for message in source.iter_sse():
                changed = timeline.take(message) or changed
                if timeline.ended or time.monotonic() >= deadline:
                    break
    except httpx.ReadTimeout:
        pass  # the window passed without an event
    except (httpx.HTTPError, SSEError, ApiError, ValueError, KeyError) as error:
        timeline.unavailable = _describe(error)
        return True
    changed, timeline.unavailable = changed or timeline.unavailable is not None, None
    return changed


def _describe(error: Exception) -> str:
    return error.message if isinstance(error, ApiError) else type(error).__name__
