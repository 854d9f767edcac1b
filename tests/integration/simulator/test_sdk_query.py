"""The real Claude Agent SDK (and the CLI its wheel bundles) runs end to end against the simulator."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ResultError,
    ResultMessage,
    TextBlock,
    create_sdk_mcp_server,
    query,
    tool,
)

from simulator.scenarios import load_scenarios
from simulator.testing import SimulatorHandle, running_simulator

pytestmark = pytest.mark.sdk

DEMO = Path(__file__).parents[3] / "simulator" / "scenarios" / "demo.yaml"
MODEL = "claude-sonnet-5-5"
FACTORIAL_PROMPT = "Subtask s1: Compute the factorial of 10 with the database. Answer with the value."


class DatabaseDouble:
    """An in-process `database_query` tool that records its calls and answers like the real one."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def run(self, args: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(args)
        rows = {"columns": ["factorial_10"], "rows": [{"factorial_10": 3628800}], "row_count": 1, "truncated": False}
        return {"content": [{"type": "text", "text": json.dumps(rows)}]}


def _options(simulator: SimulatorHandle, tmp_path: Path, database: DatabaseDouble) -> ClaudeAgentOptions:
    database_query = tool("database_query", "Run one read-only SQL statement.", {"query": str})(database.run)
    return ClaudeAgentOptions(
        model=MODEL,
        system_prompt="You are agent3, a database specialist.",
        tools=[],
        allowed_tools=["mcp__agent__database_query"],
        mcp_servers={"agent": create_sdk_mcp_server("agent", tools=[database_query])},
        permission_mode="default",
        max_turns=4,
        setting_sources=[],
        cwd=tmp_path,
        env={
            "ANTHROPIC_BASE_URL": simulator.base_url,
            "ANTHROPIC_API_KEY": "sim-key",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CONFIG_DIR": str(tmp_path / "cfg"),
            "CLAUDE_CODE_MAX_RETRIES": "0",
            "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        },
    )


@pytest.fixture
def demo_simulator(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with running_simulator(load_scenarios(DEMO), request_log=tmp_path / "requests.jsonl") as handle:
        yield handle


async def _collect(prompt: str, options: ClaudeAgentOptions) -> list[Any]:
    return [message async for message in query(prompt=prompt, options=options)]


async def test_query_runs_the_scripted_tool_and_answers_from_its_result(
    demo_simulator: SimulatorHandle, tmp_path: Path
) -> None:
    database = DatabaseDouble()
    messages = await _collect(FACTORIAL_PROMPT, _options(demo_simulator, tmp_path, database))

    assert database.calls == [{"query": "SELECT factorial(10) AS factorial_10"}]
    blocks = [block for m in messages if isinstance(m, AssistantMessage) for block in m.content]
    assert isinstance(blocks[-1], TextBlock)
    assert blocks[-1].text == "factorial_10 = 3628800"
    result = messages[-1]
    assert isinstance(result, ResultMessage)
    assert not result.is_error
    assert result.result == "factorial_10 = 3628800"
    assert result.num_turns == 2
    assert result.total_cost_usd is not None
    assert result.total_cost_usd > 0
    assert result.usage is not None
    assert result.usage["input_tokens"] > 0
    assert result.usage["output_tokens"] > 0
    logged = demo_simulator.requests()
    assert [entry["source"] for entry in logged] == [
        "subtasks[0] (factorial).turns[0]",
        "subtasks[0] (factorial).turns[1]",
    ]
    assert "mcp__agent__database_query" in logged[0]["tools"]
    assert "You are agent3" in logged[0]["system"]


async def test_query_raises_on_an_injected_server_error(tmp_path: Path) -> None:
    scenarios = {"subtasks": [{"match": "factorial", "error": {"status": 500, "message": "[simulated] down"}}]}
    with running_simulator(scenarios) as simulator:
        options = _options(simulator, tmp_path, DatabaseDouble())
        with pytest.raises(ResultError) as caught:
            await _collect(FACTORIAL_PROMPT, options)
    assert caught.value.api_error_status == 500
    assert "[simulated] down" in str(caught.value)


async def test_unscripted_prompt_gets_the_simulated_fallback(demo_simulator: SimulatorHandle, tmp_path: Path) -> None:
    """An unscripted prompt gets the generic, visibly simulated answer in one turn."""
    messages = await _collect("Summarise nothing in particular", _options(demo_simulator, tmp_path, DatabaseDouble()))
    result = messages[-1]
    assert isinstance(result, ResultMessage)
    assert result.num_turns == 1
    assert result.result is not None
    assert result.result.startswith("[simulated]")
    blocks = [block for m in messages if isinstance(m, AssistantMessage) for block in m.content]
    assert all(isinstance(block, TextBlock) for block in blocks)
