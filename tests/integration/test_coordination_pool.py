"""The coordination pool (seed 004) with a live orchestrator, real agents running the Claude Agent SDK CLI, and the
simulator."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.app import create_app as create_agent_app
from shared.config import Settings
from shared.database import Repositories
from shared.models import AgentCapability, ToolCall
from shared.serving import bound_socket, serve_in_thread
from simulator.testing import running_simulator
from tests.orchestrator_harness import OrchestratorFactory, plan, submit, wait_until_ended
from tests.polling import eventually

# --- isolation report ---

# Each subtask writes a file, reads it back and keeps a value in shared state: every call stays in its own task.
# The delay keeps both attempts running at once, so each agent (one slot each) takes one of them.
ISOLATION_SCENARIOS: dict[str, Any] = {
    "plans": [
        {"match": "ledger north", "plan": plan(("s1", "Tally the north ledger", ["DATA_ANALYSIS"], []))},
        {"match": "ledger south", "plan": plan(("s1", "Tally the south ledger", ["DATA_ANALYSIS"], []))},
    ],
    "subtasks": [
        {
            "match": "(?i)tally the (north|south) ledger",
            "delay_ms": 1500,
            "turns": [
                {"tool_calls": [{"tool": "write_file", "input": {"path": "tally.md", "content": "tally: 42\n"}}]},
                {"tool_calls": [{"tool": "read_file", "input": {"path": "output/tally.md"}}]},
                {"tool_calls": [{"tool": "set_shared_state", "input": {"key": "tally", "value": "42"}}]},
                {"final": "tally: 42"},
            ],
        }
    ],
}

AgentFleet = Callable[..., AbstractAsyncContextManager[None]]


@pytest.fixture
def sdk_agents(tmp_path: Path) -> AgentFleet:
    """`sdk_agents(settings, simulator_url, agent_ids, **settings)` serves real agents (SDK executor, one slot,
    DATA_ANALYSIS unless the settings say otherwise) of the orchestrator's tenant, each on a port known before it
    starts, so it registers where it listens."""

    @asynccontextmanager
    async def serve(
        settings: Settings, simulator_url: str, agent_ids: list[str], **overrides: Any
    ) -> AsyncIterator[None]:
        with ExitStack() as stack:
            for agent_id in agent_ids:
                sock = bound_socket()
                port = sock.getsockname()[1]
                agent_settings = settings.model_copy(
                    update={
                        "agent_id": agent_id,
                        "agent_port": port,
                        "agent_public_url": f"http://127.0.0.1:{port}",
                        "agent_capabilities": [AgentCapability.DATA_ANALYSIS],
                        "agent_concurrency": 1,
                        "agent_executor": "sdk",
                        "anthropic_base_url": simulator_url,
                        "claude_simulated": True,
                        "agent_claude_config_root": str(tmp_path / "claude"),
                        "agent_cli_env": {"CLAUDE_CODE_MAX_RETRIES": "0"},
                        **overrides,
                    }
                )
                stack.enter_context(serve_in_thread(create_agent_app(agent_settings), name=agent_id, sock=sock))
            yield

    return serve


async def isolation_report(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/isolation-report")
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    return report


@pytest.mark.sdk
async def test_isolation_report_for_two_concurrent_tasks(
    orchestrator: OrchestratorFactory,
    orchestrator_settings: Settings,
    orchestrator_repositories: Repositories,
    sdk_agents: AgentFleet,
    tmp_path: Path,
) -> None:
    with running_simulator(ISOLATION_SCENARIOS) as simulator:
        async with (
            sdk_agents(orchestrator_settings, simulator.base_url, ["agent_a", "agent_b"]),
            orchestrator(ISOLATION_SCENARIOS, anthropic_base_url=simulator.base_url) as client,
        ):
            await eventually(lambda: client.get("/agents"), lambda answer: len(answer.json()["agents"]) == 2)
            north, south = await asyncio.gather(
                submit(client, "Tally the ledger north"), submit(client, "Tally the ledger south")
            )
            for task_id in (north, south):
                state = await wait_until_ended(client, task_id)
                assert state["task"]["status"] == "completed", state["task"]["error"]
            clean = await isolation_report(client)
            [first_call, *_] = await orchestrator_repositories.audit.list_tool_calls(north)
            forged = first_call.model_copy(update={"id": None, "arguments": {"path": f"../{south}/output/tally.md"}})
            await orchestrator_repositories.audit.record_tool_call(ToolCall.model_validate(forged.model_dump()))
            breached = await isolation_report(client)

    agents = {agent["agent_id"]: agent for agent in clean["agents"]}
    assert sorted(agents) == ["agent_a", "agent_b"] and clean["violations"] == 0
    for agent_id, agent in agents.items():
        assert agent["live"] and agent["capabilities"] == ["DATA_ANALYSIS"]
        assert agent["isolation"]["config_dirs"] == [str((tmp_path / "claude" / agent_id).resolve())]
        [role] = agent["isolation"]["roles"]
        assert role["attempts"] == 1 and {"read_file", "write_file", "set_shared_state"} <= set(role["allowed_tools"])
        evidence = agent["evidence"]
        assert (evidence["attempts"], evidence["sessions_recorded"]) == (1, 1)  # the two tasks ran at once
        assert (evidence["tool_calls"], evidence["tool_calls_checked"]) == (3, 3)
        assert (evidence["violations"], evidence["missing"]) == ([], [])
    sessions = [
        r.claude_session_id
        for t in (north, south)
        for r in await orchestrator_repositories.results.get_subtask_results(t)
    ]
    assert len(set(sessions)) == 2 and None not in sessions

    assert breached["violations"] == 1
    [violation] = [v for agent in breached["agents"] for v in agent["evidence"]["violations"]]
    assert (violation["kind"], violation["task_id"]) == ("workspace_escape", north)
    assert f"reaches the workspace of task {south}" in violation["detail"]


# --- coordination tools ---

# The coordinator looks at the pool and the isolation report, then adds a subtask that runs after its own.
OWN_SUBTASK_ID = "{{ prompt.split('Subtask ')[1].split(' ')[0] }}"
COORDINATOR_SCENARIOS: dict[str, Any] = {
    "plans": [{"match": "pool review", "plan": plan(("s1", "Coordinate the pool review", ["COORDINATION"], []))}],
    "subtasks": [
        {
            "match": "Coordinate the pool review",
            "turns": [
                {"tool_calls": [{"tool": "pool_status", "input": {}}]},
                {"tool_calls": [{"tool": "isolation_report", "input": {}}]},
                {
                    "tool_calls": [
                        {
                            "tool": "submit_follow_up_subtask",
                            "input": {
                                "description": "Tally the reviewed pool",
                                "required_capabilities": ["DATA_ANALYSIS"],
                                "dependencies": [OWN_SUBTASK_ID],
                            },
                        }
                    ]
                },
                {"final": "live agents: {{ tool_results[0].json.live_agents }}; follow-up added"},
            ],
        },
        {"match": "Tally the reviewed pool", "turns": [{"final": "tally of the pool: done"}]},
    ],
}


@pytest.mark.sdk
async def test_a_coordinator_reads_the_pool_and_the_report_and_its_follow_up_runs_after_it(
    orchestrator: OrchestratorFactory,
    orchestrator_settings: Settings,
    orchestrator_repositories: Repositories,
    sdk_agents: AgentFleet,
) -> None:
    capabilities = [AgentCapability.COORDINATION, AgentCapability.DATA_ANALYSIS]
    with running_simulator(COORDINATOR_SCENARIOS) as simulator:
        async with orchestrator(COORDINATOR_SCENARIOS, anthropic_base_url=simulator.base_url) as client:
            orchestrator_url = str(client.base_url)
            async with sdk_agents(
                orchestrator_settings, simulator.base_url, ["coordinator"], agent_capabilities=capabilities,
                orchestrator_url=orchestrator_url,
            ):  # fmt: skip
                await eventually(lambda: client.get("/agents"), lambda answer: len(answer.json()["agents"]) == 1)
                task_id = await submit(client, "Run the pool review")
                state = await wait_until_ended(client, task_id)

    assert state["task"]["status"] == "completed", state["task"]["error"]
    coordinate, follow_up = state["task"]["subtasks"]
    assert follow_up["description"] == "Tally the reviewed pool" and follow_up["dependencies"] == [coordinate["id"]]
    outputs = {result["subtask_id"]: result["output"] for result in state["subtask_results"]}
    assert outputs == {coordinate["id"]: "live agents: 1; follow-up added", follow_up["id"]: "tally of the pool: done"}
    calls = await orchestrator_repositories.audit.list_tool_calls(task_id)
    assert [(call.tool_name, call.is_error) for call in calls] == [
        ("pool_status", False),
        ("isolation_report", False),
        ("submit_follow_up_subtask", False),
    ]
