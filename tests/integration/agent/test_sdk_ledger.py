"""What an attempt spent, turn by turn, and which role cap stopped it: the real Claude Agent SDK and its CLI against
the simulator, through the agent's POST /execute to the result on the Redis queue."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest

from shared.models import AgentCapability, ReportedResult, ResultStatus, TokenUsage
from shared.redis_manager import RedisManager
from shared.roles import RoleBook, load_roles
from simulator.testing import SimulatorHandle, running_simulator
from tests.integration.agent.test_sdk_execution import run_subtask
from tests.unit.agent.fixtures import OfferFactory, SettingsFactory, serving

pytestmark = pytest.mark.sdk

WORDY = "word " * 200  # about 250 tokens: more than a 64-token cap lets a response say
NOTE = {"tool": "write_file", "input": {"path": "note.md", "content": "noted"}}
SCENARIOS: dict[str, Any] = {
    "subtasks": [
        {
            "match": "(?i)three turns",
            "turns": [{"text": "First a note.", "tool_calls": [NOTE]}, {"tool_calls": [NOTE]}, {"final": "Done."}],
        },
        {"match": "(?i)talk at length", "turns": [{"final": WORDY}] * 6},
    ]
}


@pytest.fixture
def simulator() -> Any:
    with running_simulator(SCENARIOS) as handle:
        yield handle


@pytest.fixture
def capped_agent(agent_settings_factory: SettingsFactory, simulator: SimulatorHandle) -> Callable[..., Any]:
    """`capped_agent(**caps)` serves an SDK agent whose DATA_ANALYSIS role has the given caps."""

    @asynccontextmanager
    async def serve(**caps: Any) -> AsyncIterator[httpx.AsyncClient]:
        roles = load_roles()
        analyst = roles[AgentCapability.DATA_ANALYSIS]
        capped = replace(analyst, role=analyst.role.model_copy(update=caps))
        book = RoleBook({capability: roles[capability] for capability in AgentCapability} | {capped.capability: capped})
        settings = agent_settings_factory(
            agent_executor="sdk",
            anthropic_base_url=simulator.base_url,
            claude_simulated=True,
            agent_cli_env={"CLAUDE_CODE_MAX_RETRIES": "0"},
        )
        async with serving(settings, book) as (_, client):
            yield client

    return serve


async def test_each_turn_is_reported_once_and_the_turns_add_up_to_the_attempt(
    capped_agent: Callable[..., Any], agent_redis: RedisManager, offered_request: OfferFactory
) -> None:
    async with capped_agent() as client:
        result = await run_subtask(client, agent_redis, await offered_request("Take three turns over it"))

    assert isinstance(result, ReportedResult)
    assert result.status is ResultStatus.COMPLETED, result.error
    calls = result.model_calls
    assert len(calls) == result.num_turns == 3
    assert {(call.purpose, call.model) for call in calls} == {("attempt", result.model)}
    assert sum((call.usage for call in calls), TokenUsage()) == result.token_usage
    assert all(call.usage.input_tokens > 0 for call in calls)
    # The turns' output tokens reach the agent only in the attempt's totals; they are all counted.
    assert result.token_usage.output_tokens > len(calls)


@pytest.mark.parametrize(
    ("caps", "description", "limit", "cap_text"),
    [
        ({"max_turns": 1}, "Take three turns over it", "max_turns", "the role's max_turns cap (1) stopped"),
        ({"max_budget_usd": 0.0001}, "Take three turns over it", "max_budget_usd", "max_budget_usd cap ($0.0001)"),
        ({"max_output_tokens": 64}, "Talk at length about it", "max_output_tokens", "max_output_tokens cap (64)"),
    ],
    ids=["max-turns", "max-budget", "max-output-tokens"],
)
async def test_a_capped_attempt_says_which_cap_stopped_it_and_is_not_retried(
    capped_agent: Callable[..., Any],
    agent_redis: RedisManager,
    offered_request: OfferFactory,
    caps: dict[str, Any],
    description: str,
    limit: str,
    cap_text: str,
) -> None:
    async with capped_agent(**caps) as client:
        result = await run_subtask(client, agent_redis, await offered_request(description))

    assert isinstance(result, ReportedResult)
    assert (result.status, result.retryable, result.limit_reached) == (ResultStatus.FAILED, False, limit)
    assert result.error is not None and cap_text in result.error, result.error
    # What it spent before the cap stopped it is reported, turn by turn.
    assert result.model_calls and result.token_usage.input_tokens > 0
    assert sum((call.usage for call in result.model_calls), TokenUsage()) == result.token_usage
