"""Trace ids: one id per submitted task, carried in every log line of every service that works on it.

A request's trace id is the trace-id of its W3C `traceparent` header when that is valid, else its `X-Request-ID`
when that is printable and short enough, else a new one (32 hex digits, so it can start a W3C trace too). The
orchestrator answers it in `X-Request-ID` on every response and stores it with the task a POST /tasks creates; the
task's subtasks carry it on the queue, in each offer to an agent and back in each result, and whoever handles one
of them binds it (with the task and subtask ids) with structlog's contextvars, so every line logged meanwhile has it.

A pure ASGI middleware rather than asgi-correlation-id: that library reads one header and checks it for a UUID,
while the trace id is taken from `traceparent` first and must land in structlog's context, so it would need the
same code around it; and no BaseHTTPMiddleware, which costs a task and a stream per request on the hot path.
"""

import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.models import TRACE_ID_MAX_LENGTH

REQUEST_ID_HEADER = "X-Request-ID"
# The key of the request's trace id in the ASGI scope's state (`request.state.trace_id` in a route).
STATE_KEY = "trace_id"

# version "-" trace-id "-" parent-id "-" trace-flags, lowercase hex (W3C Trace Context, level 1 section 3.2).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL)
_INVALID_VERSION = "ff"
_REQUEST_ID = re.compile(rf"[!-~]{{1,{TRACE_ID_MAX_LENGTH}}}")  # visible ASCII: safe in a header, a log, a column


def trace_id_from_traceparent(value: str | None) -> str | None:
    """The trace-id of a valid `traceparent` header, or None (absent, malformed, or an all-zero id)."""
    if value is None:
        return None
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, _flags, rest = match.groups()
    # Version 00 has exactly four fields; a later version may add fields after them, which a reader of 00 ignores.
    if version == _INVALID_VERSION or (version == "00" and rest is not None):
        return None
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id


def trace_id_from_request_id(value: str | None) -> str | None:
    """A caller's `X-Request-ID` as the trace id, or None when it is absent, too long, or not visible ASCII."""
    if value is None:
        return None
    value = value.strip()
    return value if _REQUEST_ID.fullmatch(value) else None


def new_trace_id() -> str:
    return secrets.token_hex(16)  # 128 random bits, as a uuid4's hex but without building the UUID


def incoming_trace_id(raw_headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request's trace id from its ASGI headers (names lowercase): from `traceparent`, else `X-Request-ID`, else
    a new one."""
    traceparent = request_id = None
    # One pass over the raw headers: this runs for every request, and a Headers object would scan them per lookup.
    for name, value in raw_headers:
        if name == b"traceparent":
            traceparent = value
        elif name == b"x-request-id":
            request_id = value
    return (
        (traceparent is not None and trace_id_from_traceparent(traceparent.decode("latin-1")))
        or (request_id is not None and trace_id_from_request_id(request_id.decode("latin-1")))
        or new_trace_id()
    )


async def request_trace_id(request: Request) -> str:
    """The trace id TraceRequests gave the request (a dependency; async, so FastAPI calls it without a thread hop)."""
    trace_id: str = request.state.trace_id
    return trace_id


@contextmanager
def bound(trace_id: str | None = None, **ids: str | int | None) -> Iterator[None]:
    """Bind the trace id and other ids (task_id, subtask_id, attempt) to every log line of the block, in this
    task and the tasks it starts. An unknown (None) value is left out, so what an outer block bound stands."""
    known = {name: value for name, value in {"trace_id": trace_id, **ids}.items() if value is not None}
    tokens = structlog.contextvars.bind_contextvars(**known)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


class TraceRequests:
    """Gives each HTTP request its trace id: in the scope's state, bound for its log lines, and in `X-Request-ID`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = incoming_trace_id(scope["headers"])
        scope.setdefault("state", {})[STATE_KEY] = trace_id
        header = (b"x-request-id", trace_id.encode())

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        # Bound and reset by hand rather than with `bound`: this runs for every request.
        tokens = structlog.contextvars.bind_contextvars(trace_id=trace_id)
        try:
            await self.app(scope, receive, send_with_trace)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
