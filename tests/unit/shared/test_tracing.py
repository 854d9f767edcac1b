"""Trace ids from request headers: which header wins, what is refused, and what a request's log lines carry."""

import re

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp
from structlog.testing import capture_logs

from shared import tracing
from shared.tracing import (
    TraceRequests,
    incoming_trace_id,
    trace_id_from_request_id,
    trace_id_from_traceparent,
)

# The W3C Trace Context specification's own example.
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
NEW_TRACE_ID = re.compile(r"[0-9a-f]{32}")
MERGED = [structlog.contextvars.merge_contextvars]


@pytest.mark.parametrize(
    "header",
    [
        TRACEPARENT,
        f"  {TRACEPARENT}\t",  # optional whitespace around a header value
        f"00-{TRACE_ID}-00f067aa0ba902b7-00",  # not sampled: still the trace
        f"cc-{TRACE_ID}-00f067aa0ba902b7-01-what-a-later-version-adds",  # a later version may append fields
    ],
)
def test_a_valid_traceparent_gives_its_trace_id(header: str) -> None:
    assert trace_id_from_traceparent(header) == TRACE_ID


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "not a traceparent",
        f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01",  # hex must be lowercase
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # an all-zero trace-id is invalid
        f"00-{TRACE_ID}-{'0' * 16}-01",  # and so is an all-zero parent-id
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",  # version ff is forbidden
        f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE_ID[:-1]}-00f067aa0ba902b7-01",  # a trace-id one digit short
        f"00-{TRACE_ID}0-00f067aa0ba902b7-01",  # and one too long
        f"00-{TRACE_ID}-00f067aa0ba902b7-1",
        f"0-{TRACE_ID}-00f067aa0ba902b7-01",
        f"00_{TRACE_ID}_00f067aa0ba902b7_01",
        f"00-{TRACE_ID[:-1]}g-00f067aa0ba902b7-01",
    ],
)
def test_a_malformed_traceparent_is_ignored(header: str | None) -> None:
    assert trace_id_from_traceparent(header) is None


@pytest.mark.parametrize("request_id", ["req-42", "a" * 128, "3f0e1c2a-7b1d-4e8f-9a6b-0c5d2e1f4a3b", "~!{}[]"])
def test_a_printable_request_id_is_the_trace_id(request_id: str) -> None:
    assert trace_id_from_request_id(request_id) == request_id
    assert trace_id_from_request_id(f" {request_id} ") == request_id


@pytest.mark.parametrize(
    "request_id",
    [None, "", "   ", "a" * 129, "two words", "tab\there", "line\nbreak", "nul\x00", "caf\xe9", "\x7f"],
)
def test_a_request_id_that_is_not_short_visible_ascii_is_ignored(request_id: str | None) -> None:
    assert trace_id_from_request_id(request_id) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"traceparent": TRACEPARENT, "X-Request-ID": "req-42"}, TRACE_ID),  # traceparent wins
        ({"traceparent": "garbage", "X-Request-ID": "req-42"}, "req-42"),  # a malformed one does not
        ({"x-request-id": "req-42"}, "req-42"),  # header names are case-insensitive
    ],
)
def test_the_request_trace_id_prefers_traceparent_then_x_request_id(headers: dict[str, str], expected: str) -> None:
    assert incoming_trace_id(Headers(headers).raw) == expected


def test_without_a_usable_header_a_new_w3c_compatible_trace_id_is_made() -> None:
    made = {incoming_trace_id(Headers({"X-Request-ID": "two words"}).raw) for _ in range(3)}

    assert len(made) == 3
    assert all(NEW_TRACE_ID.fullmatch(trace_id) for trace_id in made)


def test_bound_leaves_out_unknown_values_and_restores_what_was_bound_before() -> None:
    with capture_logs(MERGED) as logs, tracing.bound("outer", task_id="task_1"):
        with tracing.bound(None, subtask_id="subtask_1", attempt=None):
            structlog.get_logger().info("inner")
        structlog.get_logger().info("outer")
    structlog.get_logger().info("after")

    inner, outer = logs
    assert (inner["trace_id"], inner["task_id"], inner["subtask_id"]) == ("outer", "task_1", "subtask_1")
    assert "attempt" not in inner
    assert (outer["trace_id"], outer["task_id"]) == ("outer", "task_1") and "subtask_id" not in outer
    assert structlog.contextvars.get_contextvars() == {}


async def echo(request: Request) -> JSONResponse:
    structlog.get_logger().info("handled")
    return JSONResponse({"trace_id": await tracing.request_trace_id(request)})


def traced_app() -> ASGIApp:
    return TraceRequests(Starlette(routes=[Route("/echo", echo)]))


async def test_the_middleware_binds_the_trace_id_hands_it_to_the_route_and_answers_it() -> None:
    transport = httpx.ASGITransport(app=traced_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with capture_logs(MERGED) as logs:
            given = await client.get("/echo", headers={"traceparent": TRACEPARENT})
            made = await client.get("/echo")
            missing = await client.get("/nowhere", headers={"X-Request-ID": "req-42"})

    assert given.json() == {"trace_id": TRACE_ID} and given.headers["x-request-id"] == TRACE_ID
    assert NEW_TRACE_ID.fullmatch(made.json()["trace_id"]) and made.headers["x-request-id"] == made.json()["trace_id"]
    assert missing.status_code == 404 and missing.headers["x-request-id"] == "req-42"  # every answer carries it
    assert [(line["event"], line["trace_id"]) for line in logs] == [
        ("handled", TRACE_ID),
        ("handled", made.json()["trace_id"]),
    ]
    assert structlog.contextvars.get_contextvars() == {}  # nothing outlives the request
