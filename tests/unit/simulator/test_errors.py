"""Injected errors, dropped streams, delays and the error shape of everything else."""

import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from simulator.testing import SimulatorHandle, running_simulator
from tests.unit.simulator.helpers import FORCE_PLAN, MODEL, PLAN_TOOL


async def _plan(client: anthropic.AsyncAnthropic, task: str) -> anthropic.types.Message:
    return await client.messages.create(
        model=MODEL,
        max_tokens=1000,
        tools=[PLAN_TOOL],
        tool_choice=FORCE_PLAN,
        messages=[{"role": "user", "content": task}],
    )


async def test_rate_limit_raises_with_retry_after(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        await _plan(client, "Plan rate limited please")
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body == {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}


async def test_overloaded_is_a_529(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.InternalServerError) as caught:
        await _plan(client, "Plan overloaded please")
    assert caught.value.status_code == 529
    assert caught.value.response.json()["error"]["type"] == "overloaded_error"


async def test_internal_error_is_a_500(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.InternalServerError) as caught:
        await _plan(client, "Plan broken please")
    assert caught.value.status_code == 500
    assert caught.value.response.json() == {
        "type": "error",
        "error": {"type": "api_error", "message": "[simulated] internal"},
    }


async def test_error_on_a_later_turn(client: anthropic.AsyncAnthropic) -> None:
    messages: Any = [{"role": "user", "content": "Second turn fails"}]
    first = await client.messages.create(model=MODEL, max_tokens=10, messages=messages)
    assert first.content[0].type == "text"
    messages += [{"role": "assistant", "content": "first"}, {"role": "user", "content": "go on"}]
    with pytest.raises(anthropic.InternalServerError):
        await client.messages.create(model=MODEL, max_tokens=10, messages=messages)


async def test_cut_stream_raises_in_the_client(client: anthropic.AsyncAnthropic) -> None:
    # anthropic 2.x runs on httpx2 and lets a transport error in the middle of a stream through unwrapped.
    with pytest.raises(httpx2.RemoteProtocolError):
        async with client.messages.stream(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "Cut me short"}]
        ) as stream:
            await stream.get_final_message()


async def test_cut_json_answer_raises_in_the_client(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.APIConnectionError):
        await client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "Cut me short"}])


async def test_cut_stream_sends_exactly_the_first_events(simulator: SimulatorHandle) -> None:
    body = {"model": MODEL, "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "Cut me short"}]}
    received = b""
    async with httpx.AsyncClient(base_url=simulator.base_url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            async with http.stream("POST", "/v1/messages", json=body) as response:
                async for chunk in response.aiter_bytes():
                    received += chunk
    names = [line for line in received.decode().splitlines() if line.startswith("event: ")]
    assert names == ["event: message_start", "event: ping", "event: content_block_start"]


async def test_scenario_delay_holds_the_answer(client: anthropic.AsyncAnthropic) -> None:
    started = time.monotonic()
    await client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "Take your time"}])
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"max_tokens": 10, "messages": []}, "model: Field required"),
        ({"model": MODEL, "messages": []}, "max_tokens: Field required"),
        ({"model": MODEL, "max_tokens": 10}, "messages: Field required"),
        ([1, 2], "request body must be a JSON object"),
    ],
)
async def test_invalid_request_is_a_400(simulator: SimulatorHandle, body: object, message: str) -> None:
    async with httpx.AsyncClient(base_url=simulator.base_url) as http:
        response = await http.post("/v1/messages", json=body)
    assert response.status_code == 400
    assert response.json() == {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


async def test_forcing_an_absent_tool_is_a_400(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(
            model=MODEL,
            max_tokens=10,
            tools=[PLAN_TOOL],
            tool_choice={"type": "tool", "name": "other"},
            messages=[{"role": "user", "content": "hi"}],
        )
    assert "'other' is not one of the request's tools" in caught.value.message


async def test_not_valid_json_is_a_400(simulator: SimulatorHandle) -> None:
    async with httpx.AsyncClient(base_url=simulator.base_url) as http:
        response = await http.post("/v1/messages", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/models"), ("POST", "/v2/anything"), ("GET", "/v1/messages")])
async def test_unknown_endpoints_are_404_with_the_error_shape(
    simulator: SimulatorHandle, method: str, path: str
) -> None:
    async with httpx.AsyncClient(base_url=simulator.base_url) as http:
        response = await http.request(method, path)
    assert response.status_code == 404
    assert response.json() == {
        "type": "error",
        "error": {"type": "not_found_error", "message": f"{method} {path}: not found"},
    }


@pytest.mark.parametrize(("method", "path"), [("HEAD", "/"), ("GET", "/api/hello"), ("HEAD", "/api/hello")])
async def test_probes_answer_200(simulator: SimulatorHandle, method: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=simulator.base_url) as http:
        response = await http.request(method, path)
    assert response.status_code == 200


async def test_count_tokens_matches_the_usage_of_an_answer(client: anthropic.AsyncAnthropic) -> None:
    messages: Any = [{"role": "user", "content": "Say hello " * 40}]
    counted = await client.messages.count_tokens(model=MODEL, system="agent1", messages=messages)
    answered = await client.messages.create(model=MODEL, max_tokens=10, system="agent1", messages=messages)
    assert counted.input_tokens == answered.usage.input_tokens
    assert counted.input_tokens > 100


async def test_a_burst_answers_its_stretch_of_requests_with_its_error_whatever_they_ask(request_log: Path) -> None:
    bursts = {"bursts": [{"name": "storm", "after": 1, "requests": 2, "error": {"status": 429, "retry_after": 3}}]}
    with running_simulator(bursts, request_log=request_log) as burst_simulator:
        async with anthropic.AsyncAnthropic(base_url=burst_simulator.base_url, api_key="k", max_retries=0) as api:
            answers: list[int | str] = []
            for task in ("Plan one", "Plan two", "Say hello", "Plan four"):
                try:
                    await _plan(api, task) if task.startswith("Plan") else await api.messages.create(
                        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": task}]
                    )
                    answers.append(200)
                except anthropic.RateLimitError as error:
                    answers.append(f"429 after {error.response.headers['retry-after']}")

        assert answers == [200, "429 after 3", "429 after 3", 200]
        assert [entry["source"] for entry in burst_simulator.requests()][1:3] == ["bursts[0] (storm)"] * 2
