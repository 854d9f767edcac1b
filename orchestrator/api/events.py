"""Lifecycle events as Server-Sent Events: one task's (`GET /tasks/{id}/events`) and the tenant's (`GET /events`)."""

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse

from orchestrator.api.auth import ClientKey
from orchestrator.api.tasks import TaskId
from orchestrator.event_feed import parse_event_id
from orchestrator.state import State
from shared.errors import ErrorResponse, InvalidInputError, error_responses
from shared.redis.events import EventType

router = APIRouter(tags=["events"])

EVENT_ID_PATTERN = r"^[0-9]{1,20}-[0-9]{1,20}$"
LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=EVENT_ID_PATTERN,
        description="The id of the last event the client got (browsers send it when they reconnect): the stream "
        "goes on after it",
    ),
]
LastEventIdQuery = Annotated[
    str | None,
    Query(
        pattern=EVENT_ID_PATTERN,
        description="The same, for clients that cannot set headers; the header wins when both are sent",
    ),
]


class StartFrom(StrEnum):
    NOW = "now"
    START = "start"


# The envelope each event's `data:` line carries (its `data` member per type: contracts/events.yaml).
EVENT_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "event_type", "task_id", "subtask_id", "trace_id", "occurred_at", "data"],
    "properties": {
        "id": {"type": "string", "description": "The stream id, also the SSE `id:`"},
        "event_type": {"type": "string", "enum": [event_type.value for event_type in EventType]},
        "task_id": {"type": "string"},
        "subtask_id": {"type": ["string", "null"]},
        "trace_id": {"type": ["string", "null"]},
        "occurred_at": {"type": "string", "format": "date-time"},
        "data": {"type": "object", "description": "The payload of the event's type"},
    },
}
STREAM_DESCRIPTION = (
    "A Server-Sent Events stream. Each lifecycle event is a message with `id:` its stream id, `event:` its type "
    "and `data:` the event as JSON. `event: reset` (data: `reason`, `after_id`, `oldest_id`, no id) says events after "
    "the client's Last-Event-ID were trimmed from the capped stream: reload, the stream goes on from the oldest "
    "event held. A stream that must stop (Redis unreachable, orchestrator shutting down) sends a `retry:` hint and "
    "closes: reconnect with Last-Event-ID."
)


def stream_response(description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": f"{description} {STREAM_DESCRIPTION}",
            "content": {
                "text/event-stream": {
                    "schema": {"type": "string"},
                    "itemSchema": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "event": {"type": "string"},
                            "data": {
                                "type": "string",
                                "contentMediaType": "application/json",
                                "contentSchema": EVENT_MESSAGE_SCHEMA,
                            },
                            "retry": {"type": "integer", "minimum": 0},
                        },
                    },
                }
            },
        },
        503: {
            "model": ErrorResponse,
            "description": "Too many streaming clients (SSE_MAX_CLIENTS, or SSE_MAX_CLIENTS_PER_KEY of one client "
            "key), or a store is unreachable; retry after Retry-After seconds",
            "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
        },
    }


def resume_point(header: str | None, query: str | None) -> str | None:
    """The client's Last-Event-ID (the header, which browsers update on reconnection, before the query)."""
    given = header if header is not None else query
    if given is None:
        return None
    if parse_event_id(given) is None:
        raise InvalidInputError(f"Last-Event-ID {given!r} is not an event id: send the `id:` of an event you got")
    return given


@router.get(
    "/tasks/{task_id}/events",
    response_class=EventSourceResponse,
    responses={**error_responses(400, 404, 500), **stream_response("The task's events.")},
    summary="Follow a task's lifecycle events (Server-Sent Events) from its start, or after Last-Event-ID",
)
async def task_events(
    state: State,
    key: ClientKey,
    task_id: TaskId,
    last_event_id_header: LastEventIdHeader = None,
    last_event_id: LastEventIdQuery = None,
) -> EventSourceResponse:
    """Without a Last-Event-ID the stream starts at the task's first event (its whole history, then live). It closes
    after the task's TASK_COMPLETED, TASK_FAILED or TASK_CANCELLED event; a task that ended so long ago that its
    events expired gets one `end` event (data: `task_id`, `status`) instead, and the stream closes."""
    return await state.event_streams.task_stream(task_id, resume_point(last_event_id_header, last_event_id), key)


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={**error_responses(400, 500), **stream_response("Every event of the tenant's tasks.")},
    summary="Follow the lifecycle events of all the tenant's tasks (Server-Sent Events)",
)
async def tenant_events(
    state: State,
    key: ClientKey,
    last_event_id_header: LastEventIdHeader = None,
    last_event_id: LastEventIdQuery = None,
    start_from: Annotated[
        StartFrom,
        Query(
            alias="from",
            description="Without a Last-Event-ID: `now` streams events published from now on, `start` every event "
            "the capped stream still holds first",
        ),
    ] = StartFrom.NOW,
) -> EventSourceResponse:
    """The stream never ends by itself; the client closes it."""
    resume = resume_point(last_event_id_header, last_event_id)
    return await state.event_streams.tenant_stream(resume, from_start=start_from is StartFrom.START, api_key=key)
