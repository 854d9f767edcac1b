"""The Messages API answers, through the real `anthropic` client over HTTP."""

import json
from typing import Any

import anthropic
import httpx

from simulator.testing import SimulatorHandle
from tests.unit.simulator.helpers import (
    DATABASE_TOOL,
    FACTORIAL_PLAN,
    FORCE_PLAN,
    MODEL,
    PLAN_TOOL,
    parse_sse,
    streamed_text,
)

DB_ROWS = {"columns": ["f"], "rows": [{"f": 3628800}], "row_count": 1, "truncated": False}


def _first_turn_messages(prompt: str) -> list[Any]:
    return [{"role": "user", "content": prompt}]


def _after_tool_call(prompt: str, tool_use_id: str, result: Any) -> list[Any]:
    """The conversation after the model called the database tool and the tool answered."""
    return [
        {"role": "user", "content": prompt},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": tool_use_id, "name": DATABASE_TOOL["name"], "input": {"query": "x"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use_id, "content": result}]},
    ]


async def test_text_answer_from_a_script(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(
        model=MODEL, max_tokens=100, system="You are agent1.", messages=_first_turn_messages("Say hello")
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from agent1."
    assert message.model == MODEL
    assert message.id.startswith("msg_sim_")
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens >= 1
    assert message.usage.output_tokens >= 1


async def test_match_system_selects_between_entries(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(
        model=MODEL, max_tokens=100, system="You are agent2.", messages=_first_turn_messages("Say hello")
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from someone else."


async def test_stream_assembles_text_and_reports_usage(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(
        model=MODEL, max_tokens=100, system="agent1", messages=_first_turn_messages("Say hello")
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == "Hello from agent1."
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 1
    assert final.usage.output_tokens == len("Hello from agent1.") // 4 + 1


async def test_stream_of_tool_use_assembles_input_json(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(
        model=MODEL,
        max_tokens=100,
        tools=[DATABASE_TOOL],
        messages=_first_turn_messages("Compute the factorial of 10 with the database"),
    ) as stream:
        final = await stream.get_final_message()
    assert [block.type for block in final.content] == ["text", "tool_use"]
    tool_use = final.content[1]
    assert tool_use.type == "tool_use"
    assert tool_use.name == "mcp__agent__database_query"
    assert tool_use.input == {"query": "SELECT factorial(10) AS f"}
    assert tool_use.id.startswith("toolu_sim_")
    assert final.stop_reason == "tool_use"


async def test_forced_tool_returns_the_scenario_plan(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(
        model=MODEL,
        max_tokens=1000,
        tools=[PLAN_TOOL],
        tool_choice=FORCE_PLAN,
        messages=_first_turn_messages("Decompose this task: Calculate factorial of 10"),
    )
    assert len(message.content) == 1
    block = message.content[0]
    assert block.type == "tool_use"
    assert block.name == "submit_plan"
    assert block.input == FACTORIAL_PLAN
    assert message.stop_reason == "tool_use"


async def test_plans_by_turn_answer_a_repair_round(client: anthropic.AsyncAnthropic) -> None:
    first: list[Any] = _first_turn_messages("Please repair me")
    answer = await client.messages.create(
        model=MODEL, max_tokens=1000, tools=[PLAN_TOOL], tool_choice=FORCE_PLAN, messages=first
    )
    assert answer.content[0].type == "tool_use"
    assert answer.content[0].input == {"subtasks": []}
    repair = [
        *first,
        {"role": "assistant", "content": [block.model_dump() for block in answer.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": answer.content[0].id, "content": "empty", "is_error": True},
                {"type": "text", "text": "The plan is invalid: no subtasks. Submit a corrected plan."},
            ],
        },
    ]
    repaired = await client.messages.create(
        model=MODEL, max_tokens=1000, tools=[PLAN_TOOL], tool_choice=FORCE_PLAN, messages=repair
    )
    assert repaired.content[0].type == "tool_use"
    assert repaired.content[0].input == FACTORIAL_PLAN


async def test_fallback_plan_for_unmatched_task(client: anthropic.AsyncAnthropic) -> None:
    prompt = "Capabilities: ...\n<task>  Translate the   manual into French </task>\nAnswer with submit_plan."
    message = await client.messages.create(
        model=MODEL, max_tokens=1000, tools=[PLAN_TOOL], tool_choice=FORCE_PLAN, messages=_first_turn_messages(prompt)
    )
    assert message.content[0].type == "tool_use"
    assert message.content[0].input == {
        "subtasks": [
            {
                "id": "s1",
                "description": "[simulated] Translate the manual into French",
                "required_capabilities": ["DATA_ANALYSIS"],
                "dependencies": [],
                "priority": 5,
            }
        ]
    }


async def test_fallback_for_other_forced_tool_is_a_minimal_instance(client: anthropic.AsyncAnthropic) -> None:
    weather_tool: Any = {
        "name": "report",
        "input_schema": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "kelvin"]},
                "days": {"type": "integer", "minimum": 1},
                "note": {"type": "string"},
            },
            "required": ["city", "unit", "days"],
        },
    }
    message = await client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[weather_tool],
        tool_choice={"type": "tool", "name": "report"},
        messages=_first_turn_messages("Weather?"),
    )
    assert message.content[0].type == "tool_use"
    assert message.content[0].input == {"city": "[simulated]", "unit": "celsius", "days": 1}


async def test_fallback_text_says_it_is_simulated(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(
        model=MODEL, max_tokens=100, messages=_first_turn_messages("What is the capital of Peru?\nThanks.")
    )
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("[simulated]")
    assert "What is the capital of Peru?" in message.content[0].text


async def test_final_answer_quotes_the_tool_result(client: anthropic.AsyncAnthropic) -> None:
    result = [
        {"type": "text", "text": json.dumps(DB_ROWS)},
        {"type": "text", "text": "<system-reminder>Be careful with SQL.</system-reminder>"},
    ]
    message = await client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[DATABASE_TOOL],
        messages=_after_tool_call("Compute the factorial of 10 with the database", "toolu_1", result),
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "factorial_10 = 3628800"


async def test_failed_reference_becomes_a_simulated_text(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[DATABASE_TOOL],
        messages=_after_tool_call("Compute the factorial of 10", "toolu_1", "permission denied"),
    )
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("[simulated] subtasks[0] (factorial).turns[1] could not be rendered")
    assert message.stop_reason == "end_turn"


async def test_script_never_invents_a_tool(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(
        model=MODEL, max_tokens=100, tools=[DATABASE_TOOL], messages=_first_turn_messages("Call a missing tool")
    )
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].type == "text"
    assert "'no_such_tool', which the request does not offer" in message.content[0].text


async def test_turn_past_the_script_end_is_reported(client: anthropic.AsyncAnthropic) -> None:
    messages: Any = [
        {"role": "user", "content": "Say hello"},
        {"role": "assistant", "content": "Hello from someone else."},
        {"role": "user", "content": "Again?"},
    ]
    message = await client.messages.create(model=MODEL, max_tokens=100, messages=messages)
    assert message.content[0].type == "text"
    assert message.content[0].text == "[simulated] The script subtasks[2] has 1 turn(s); this request is turn 1."


async def test_cli_shaped_request_is_accepted(client: anthropic.AsyncAnthropic) -> None:
    """What the Claude Code CLI sends: system blocks, an inline system message, thinking, extra fields."""
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 32000,
        "stream": True,
        "system": [{"type": "text", "text": "x-anthropic-billing-header: cc"}, {"type": "text", "text": "agent1"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>cwd</system-reminder>"}]},
            {"role": "user", "content": "Say hello"},
            {"role": "system", "content": [{"type": "text", "text": "# Environment"}], "output_config": {}},
        ],
        "tools": [{"name": "DeferredToolPlaceholder", "input_schema": {"type": "object"}}, DATABASE_TOOL],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "context_management": {"edits": []},
        "metadata": {"user_id": "someone"},
        "output_config": {"effort": "medium"},
    }
    async with httpx.AsyncClient(base_url=str(client.base_url)) as http:
        response = await http.post("/v1/messages?beta=true", json=body)
    assert response.status_code == 200
    assert streamed_text(parse_sse(response.text)) == "Hello from agent1."


async def test_same_request_gives_identical_body(simulator: SimulatorHandle) -> None:
    body = {"model": MODEL, "max_tokens": 10, "tools": [DATABASE_TOOL], "messages": [{"role": "user", "content": "x"}]}
    body["messages"] = _first_turn_messages("Compute the factorial of 10")
    async with httpx.AsyncClient(base_url=simulator.base_url) as http:
        first = await http.post("/v1/messages", json=body)
        second = await http.post("/v1/messages", json=body)
        other = await http.post("/v1/messages", json={**body, "model": "claude-haiku-5-5"})
    assert first.status_code == 200
    assert first.content == second.content
    assert first.headers["request-id"] == second.headers["request-id"]
    assert other.json()["id"] != first.json()["id"]


async def test_an_answer_longer_than_max_tokens_is_cut_there_as_a_model_s_would_be(
    client: anthropic.AsyncAnthropic,
) -> None:
    whole = await client.messages.create(
        model=MODEL, max_tokens=100, system="You are agent1.", messages=_first_turn_messages("Say hello")
    )
    cut = await client.messages.create(
        model=MODEL, max_tokens=2, system="You are agent1.", messages=_first_turn_messages("Say hello")
    )

    assert whole.content[0].type == cut.content[0].type == "text"
    assert (whole.stop_reason, cut.stop_reason) == ("end_turn", "max_tokens")
    assert cut.content[0].text == whole.content[0].text[:8]  # two tokens of about four characters
    assert cut.usage.output_tokens == 2 < whole.usage.output_tokens
