"""The streamed event sequence is Anthropic's, event for event."""

from typing import Any

import httpx

from simulator.testing import SimulatorHandle
from tests.unit.simulator.helpers import DATABASE_TOOL, MODEL, parse_sse


async def _stream(simulator: SimulatorHandle, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=simulator.base_url) as http:
        return await http.post("/v1/messages?beta=true", json={**body, "stream": True})


async def test_tool_use_stream_has_the_exact_event_sequence(simulator: SimulatorHandle) -> None:
    response = await _stream(
        simulator,
        {
            "model": MODEL,
            "max_tokens": 100,
            "tools": [DATABASE_TOOL],
            "messages": [{"role": "user", "content": "Compute the factorial of 10"}],
        },
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert all(data["type"] == name for name, data in events)
    # text block 0 ("Querying the database.", 22 chars = 2 deltas), tool_use block 1 (input JSON in 16-char chunks)
    assert names[:7] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
    ]
    assert names[-4:] == ["content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["content"] == []
    assert start["stop_reason"] is None
    assert start["model"] == MODEL
    tool_start = events[6][1]["content_block"]
    assert tool_start == {"type": "tool_use", "id": tool_start["id"], "name": DATABASE_TOOL["name"], "input": {}}
    partial = "".join(data["delta"]["partial_json"] for _, data in events if data.get("index") == 1 and "delta" in data)
    assert partial == '{"query": "SELECT factorial(10) AS f"}'
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] >= 1
    assert delta["usage"]["input_tokens"] == start["usage"]["input_tokens"]


async def test_streamed_and_json_answers_agree(simulator: SimulatorHandle) -> None:
    body = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "Say hello"}]}
    async with httpx.AsyncClient(base_url=simulator.base_url) as http:
        whole = (await http.post("/v1/messages", json=body)).json()
    events = parse_sse((await _stream(simulator, body)).text)
    assert events[0][1]["message"]["id"] != whole["id"]  # a different request (stream: true), a different id
    assert events[-2][1]["usage"]["output_tokens"] == whole["usage"]["output_tokens"]
    assert whole["usage"]["input_tokens"] == events[0][1]["message"]["usage"]["input_tokens"]
