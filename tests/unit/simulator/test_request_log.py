"""The request log records what the model was shown and which scenario entry answered."""

from typing import Any

import anthropic
import pytest

from simulator.testing import SimulatorHandle, running_simulator
from tests.unit.simulator.helpers import DATABASE_TOOL, MODEL, PLAN_TOOL


async def test_each_message_request_and_token_count_is_one_line(
    client: anthropic.AsyncAnthropic, simulator: SimulatorHandle
) -> None:
    messages: Any = [{"role": "user", "content": "Compute the factorial of 10"}]
    await client.messages.create(model=MODEL, max_tokens=10, system="agent3", tools=[DATABASE_TOOL], messages=messages)
    with pytest.raises(anthropic.RateLimitError):
        await client.messages.create(
            model=MODEL,
            max_tokens=10,
            tools=[PLAN_TOOL],
            tool_choice={"type": "tool", "name": "submit_plan"},
            messages=[{"role": "user", "content": "Plan rate limited"}],
        )
    counted = await client.messages.count_tokens(model=MODEL, messages=messages)

    first, second, count = simulator.requests()
    assert first["path"] == "/v1/messages"
    assert first["model"] == MODEL
    assert first["tools"] == ["mcp__agent__database_query"]
    assert first["tool_choice"] is None
    assert first["system"] == "agent3"
    assert first["messages"] == messages
    assert first["source"] == "subtasks[0] (factorial).turns[0]"
    assert first["status"] == 200
    assert second["tool_choice"] == {"type": "tool", "name": "submit_plan"}
    assert second["source"] == "plans[1]"
    assert second["status"] == 429
    # A token count is logged too, as such, with what it counted.
    assert (count["path"], count["source"], count["model"]) == ("/v1/messages/count_tokens", "count_tokens", MODEL)
    assert (count["messages"], count["input_tokens"]) == (messages, counted.input_tokens)


async def test_fallbacks_are_named_in_the_log(client: anthropic.AsyncAnthropic, simulator: SimulatorHandle) -> None:
    await client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "unscripted"}])
    assert [entry["source"] for entry in simulator.requests()] == ["fallback:text"]


def test_without_a_log_path_requests_cannot_be_read() -> None:
    with running_simulator() as handle, pytest.raises(RuntimeError, match="request_log"):
        handle.requests()
