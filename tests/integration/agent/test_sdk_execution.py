"""Subtasks run through the real Claude Agent SDK and its CLI against the simulator, end to end through the agent:
POST /execute, the CLI calls the agent's MCP tools for real, and one result lands on the Redis result queue."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from fastapi import FastAPI

from shared.database import DatabaseManager, Repositories
from shared.models import AgentCapability, ProviderWait, ResultStatus, SubTaskResult
from shared.redis_manager import RedisManager
from shared.roles import load_roles
from simulator.testing import SimulatorHandle, running_simulator
from tests.unit.agent.fixtures import OfferFactory, SettingsFactory, serving

pytestmark = pytest.mark.sdk

RESULT_WAIT_SECONDS = 60.0
# The roles these tests' subtasks need: each served role keeps a warm CLI (about 200 MB) while the agent runs.
SERVED_CAPABILITIES = [AgentCapability.DATA_ANALYSIS, AgentCapability.DATABASE_OPERATIONS]
FACTORIAL = "Compute the factorial of 10 with the database and save it"
SCENARIOS: dict[str, Any] = {
    "subtasks": [
        {
            "name": "factorial-with-tools",
            "match": "(?i)compute the factorial of 10",
            "turns": [
                {
                    "tool_calls": [
                        {"tool": "database_query", "input": {"query": "SELECT factorial(10) AS factorial_10"}}
                    ]
                },
                {
                    "tool_calls": [
                        {
                            "tool": "write_file",
                            "input": {
                                "path": "factorial.md",
                                "content": "factorial_10 = {{ tool_results[0].json.rows[0].factorial_10 }}\n",
                            },
                        }
                    ]
                },
                {"final": "factorial_10 = {{ tool_results[0].json.rows[0].factorial_10 }}"},
            ],
        },
        {"match": "rate limited", "error": {"status": 429, "message": "[simulated] slow down", "retry_after": 7}},
        {"match": "overloaded", "error": {"status": 529, "message": "[simulated] overloaded"}},
        {"match": "server down", "error": {"status": 500, "message": "[simulated] internal error"}},
        {"match": "bad request", "error": {"status": 400, "message": "[simulated] invalid request"}},
        {"match": "slow answer", "delay_ms": 30000, "turns": [{"final": "too late"}]},
    ]
}

AgentRun = Callable[..., Any]


@pytest.fixture
def simulator(tmp_path: Path) -> Any:
    with running_simulator(SCENARIOS, request_log=tmp_path / "requests.jsonl") as handle:
        yield handle


@pytest.fixture
def sdk_agent(
    agent_settings_factory: SettingsFactory, simulator: SimulatorHandle, db: DatabaseManager
) -> Callable[..., Any]:
    """An agent on the SDK executor pointed at the simulator; `sdk_agent(**settings)` serves it."""

    @asynccontextmanager
    async def serve(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings = agent_settings_factory(
            **{
                "agent_executor": "sdk",
                "anthropic_base_url": simulator.base_url,
                "claude_simulated": True,
                "agent_capabilities": SERVED_CAPABILITIES,
                **overrides,
            }
        )
        async with serving(settings) as (app, client):
            await warmed_up(app)
            yield client

    return serve


async def warmed_up(app: FastAPI, timeout: float = 60.0) -> None:
    """Once every role the agent serves has its warm CLIs (if it keeps any), so attempts run on them."""
    pool = app.state.executor.warm_pool
    if pool is None:
        return
    async with asyncio.timeout(timeout):
        for capability in app.state.settings.agent_capabilities:
            await pool.wait_ready(app.state.roles[capability])


async def run_subtask(client: httpx.AsyncClient, redis: RedisManager, request: Any) -> SubTaskResult:
    response = await client.post("/execute", json=request.model_dump(mode="json"))
    assert response.status_code == 200, response.text
    delivery = await redis.dequeue_result("test-consumer", RESULT_WAIT_SECONDS)
    assert delivery is not None, "no result was published"
    assert await redis.dequeue_result("test-consumer", 0.1) is None, "more than one result for one attempt"
    return delivery[1]


@pytest.mark.parametrize("warm_clis", [None, 0], ids=["warm", "cold"])
async def test_a_subtask_calls_the_real_tools_and_reports_usage_cost_and_turns(
    warm_clis: int | None,
    sdk_agent: Callable[..., Any],
    agent_redis: RedisManager,
    db: DatabaseManager,
    agent_tenant: str,
    simulator: SimulatorHandle,
    offered_request: OfferFactory,
    tmp_path: Path,
) -> None:
    request = await offered_request(FACTORIAL, required_capabilities=[AgentCapability.DATABASE_OPERATIONS])
    async with sdk_agent(agent_warm_clis_per_role=warm_clis) as client:
        result = await run_subtask(client, agent_redis, request)

    assert result.status is ResultStatus.COMPLETED, result.error
    assert result.output == "factorial_10 = 3628800"
    # Staged under the offer's token: the orchestrator makes it the task's output once it applies the result.
    staged = tmp_path / "shared_files" / request.task_id / ".attempts" / str(request.subtask.delivery_token)
    assert (staged / "factorial.md").read_text() == "factorial_10 = 3628800\n"
    assert result.token_usage.input_tokens > 0 and result.token_usage.output_tokens > 0
    assert result.cost_usd > 0
    assert result.num_turns == 3
    assert result.simulated is True
    assert result.role_config_hash == load_roles()[AgentCapability.DATABASE_OPERATIONS].config_hash
    # What isolated the attempt: its own Claude session, the agent's private CLI config folder, the role's tools.
    assert result.claude_session_id and len(result.claude_session_id) >= 16
    assert result.claude_config_dir == str((tmp_path / "claude" / "agent1").resolve())
    assert result.allowed_tools == list(load_roles()[AgentCapability.DATABASE_OPERATIONS].role.allowed_tools)

    audit = Repositories(db.pool, agent_tenant).audit  # what the agent recorded, under its tenant
    calls = await audit.list_tool_calls(request.task_id)
    assert [(call.tool_name, call.is_error) for call in calls] == [("database_query", False), ("write_file", False)]
    assert '"factorial_10": 3628800' in calls[0].outcome
    assert all(call.subtask_id == request.subtask.id and call.attempt == 1 for call in calls)

    # Where the run's time went: the CLI's start-up, then its wait on the model, both within the attempt.
    (completed,) = [
        entry for entry in await audit.list_agent_logs(task_id=request.task_id) if entry.message == "subtask completed"
    ]
    startup, model = completed.metadata["cli_startup_seconds"], completed.metadata["model_api_seconds"]
    assert 0 < startup < result.execution_time and 0 < model < result.execution_time
    assert startup + model < result.execution_time
    # A warm CLI says how long the attempt waited for it; a cold one was started for the attempt.
    assert ("warm_cli_wait_seconds" in completed.metadata) == (warm_clis is None)

    (first_request, *_) = simulator.requests()
    offered = {name for name in first_request["tools"] if name.startswith("mcp__")}
    role_tools = load_roles()[AgentCapability.DATABASE_OPERATIONS].role.allowed_tools
    assert offered == {f"mcp__agent__{name}" for name in role_tools}
    assert not {"Bash", "Read", "Write", "Edit"} & set(first_request["tools"])


@pytest.mark.parametrize(
    ("description", "status", "kind", "retry_after"),
    [
        ("The API has rate limited us", 429, "rate_limited", 7.0),  # the provider's retry-after, from the CLI's log
        ("The API is overloaded", 529, "overloaded", None),
        ("The API server down", 500, "server_error", None),
    ],
)
async def test_the_provider_failing_to_serve_the_attempt_hands_it_back_to_wait(
    sdk_agent: Callable[..., Any],
    agent_redis: RedisManager,
    offered_request: OfferFactory,
    simulator: SimulatorHandle,
    description: str,
    status: int,
    kind: str,
    retry_after: float | None,
) -> None:
    async with sdk_agent() as client:
        result = await run_subtask(client, agent_redis, await offered_request(description))

    assert result.status is ResultStatus.FAILED
    assert result.provider_wait == ProviderWait(kind=kind, retry_after_seconds=retry_after)  # type: ignore[arg-type]
    assert result.error is not None and str(status) in result.error
    # The CLI tried once: the fleet, not the CLI, decides when to try again.
    assert len(simulator.requests()) == 1


async def test_an_unreachable_provider_hands_the_attempt_back_to_wait(
    sdk_agent: Callable[..., Any], agent_redis: RedisManager, offered_request: OfferFactory
) -> None:
    async with sdk_agent(anthropic_base_url="http://127.0.0.1:9") as client:  # nothing listens on port 9
        result = await run_subtask(client, agent_redis, await offered_request("Anything at all"))

    assert result.status is ResultStatus.FAILED
    assert result.provider_wait == ProviderWait(kind="connection")


async def test_a_request_the_api_refuses_is_a_genuine_failure_not_a_wait(
    sdk_agent: Callable[..., Any], agent_redis: RedisManager, offered_request: OfferFactory
) -> None:
    async with sdk_agent() as client:
        result = await run_subtask(client, agent_redis, await offered_request("A bad request to the API"))

    assert result.status is ResultStatus.FAILED
    assert result.provider_wait is None
    assert result.retryable is False
    assert result.error is not None and "400" in result.error


async def test_a_subtask_over_its_time_limit_fails_retryable_and_leaves_no_cli_behind(
    sdk_agent: Callable[..., Any], agent_redis: RedisManager, offered_request: OfferFactory
) -> None:
    async with sdk_agent(subtask_timeout_seconds=3) as client:
        result = await run_subtask(client, agent_redis, await offered_request("A slow answer, please"))

    assert result.status is ResultStatus.FAILED
    assert result.retryable
    assert result.error == "timed out after 3 s"
    leftover = [child for child in psutil.Process().children(recursive=True) if child.name() == "claude"]
    assert leftover == []


async def test_the_fleet_s_limiter_holds_an_attempt_back_without_a_session_and_a_429_blocks_the_model(
    sdk_agent: Callable[..., Any],
    agent_redis: RedisManager,
    offered_request: OfferFactory,
    simulator: SimulatorHandle,
    agent_settings_factory: SettingsFactory,
) -> None:
    model = agent_settings_factory().claude_model
    limits = {model: {"requests_per_minute": 2}}
    async with sdk_agent(provider_limits=limits) as client:
        first = await run_subtask(client, agent_redis, await offered_request("Say hello"))
        limited = await run_subtask(client, agent_redis, await offered_request("The API has rate limited us"))
        blocked = await run_subtask(client, agent_redis, await offered_request("Say hello again"))

    assert first.status is ResultStatus.COMPLETED
    assert limited.provider_wait == ProviderWait(kind="rate_limited", retry_after_seconds=7)
    # The 429's retry-after blocks the model fleet-wide: the next attempt waits without asking the provider.
    assert blocked.provider_wait is not None and blocked.provider_wait.kind == "rate_limited"
    assert 6 < (blocked.provider_wait.retry_after_seconds or 0) <= 7
    assert [entry["status"] for entry in simulator.requests()] == [200, 429]


async def test_an_attempt_over_the_requests_per_minute_waits_for_the_window_without_a_session(
    sdk_agent: Callable[..., Any],
    agent_redis: RedisManager,
    offered_request: OfferFactory,
    simulator: SimulatorHandle,
    agent_settings_factory: SettingsFactory,
) -> None:
    limits = {agent_settings_factory().claude_model: {"requests_per_minute": 1}}
    async with sdk_agent(provider_limits=limits) as client:
        first = await run_subtask(client, agent_redis, await offered_request("Say hello"))
        second = await run_subtask(client, agent_redis, await offered_request("Say hello again"))

    assert first.status is ResultStatus.COMPLETED
    assert second.provider_wait is not None and second.provider_wait.kind == "rate_limited"
    assert 50 < (second.provider_wait.retry_after_seconds or 0) <= 60  # until the minute's window frees a start
    assert len(simulator.requests()) == 1
