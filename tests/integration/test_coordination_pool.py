"""The coordination pool (seed 004) on the real PostgreSQL, Redis and the simulator: a live orchestrator starts
`python -m agent` (stub executor) through its launcher; the isolation report and the coordination tools run on real
agents served in-process with the Claude Agent SDK's CLI."""

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from fastapi import FastAPI, Response

from agent.app import create_app as create_agent_app
from agent.offers import OfferBook, OfferOutcome
from agent.runner import SubtaskRunner
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.models import AgentCapability, ResultStatus, TaskExecutionRequest, TaskType, ToolCall
from shared.serving import bound_socket, serve_in_thread
from simulator.testing import running_simulator
from tests.fake_agent import FakeAgent, result_for
from tests.orchestrator_harness import (
    Fleet,
    OrchestratorFactory,
    plan,
    submit,
    task_state,
    wait_for_request,
    wait_until_ended,
)
from tests.polling import eventually

REPO_ROOT = Path(__file__).resolve().parents[2]

# --- pool lifecycle ---

DATA = AgentCapability.DATA_ANALYSIS
POOL_SCENARIOS: dict[str, Any] = {
    "plans": [{"match": "pool step", "plan": plan(("s1", "the pool step", ["DATA_ANALYSIS"], []))}],
}
# Agents start in seconds, more on a busy machine; a stopped one drains within its grace.
PROCESS_TIMEOUT_SECONDS = 90.0


@pytest.fixture
def pool_dirs(tmp_path: Path) -> dict[str, Any]:
    """Where the test's orchestrators keep their agents' pidfiles and logs, and the stub executor."""
    return {
        "fleet_pid_dir": str(tmp_path / ".data/fleet/pids"),
        "fleet_log_dir": str(tmp_path / ".data/fleet/logs"),
        "agent_executor": "stub",
        "agent_shutdown_grace_seconds": 5.0,
        "agent_start_timeout_seconds": PROCESS_TIMEOUT_SECONDS,
    }


@pytest.fixture
def spawned_pids() -> Iterator[list[int]]:
    """The pids of agents a test started; any still there at the end are killed (a failed test leaves none)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def spawn(client: httpx.AsyncClient, pids: list[int], *capabilities: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/agents", json={"capabilities": list(capabilities), **fields}, timeout=PROCESS_TIMEOUT_SECONDS
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    pids.append(body["pid"])
    return body


async def pool_members(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/pool")
    assert response.status_code == 200, response.text
    members: list[dict[str, Any]] = response.json()["agents"]
    return members


async def initialize(client: httpx.AsyncClient, pids: list[int], **body: Any) -> list[dict[str, Any]]:
    response = await client.post("/pool/initialize", json=body, timeout=PROCESS_TIMEOUT_SECONDS)
    assert response.status_code == 200, response.text
    agents: list[dict[str, Any]] = response.json()["agents"]
    pids.extend(agent["pid"] for agent in agents)
    return agents


def pidfiles(pool_dirs: dict[str, Any]) -> list[str]:
    return sorted(path.name for path in Path(pool_dirs["fleet_pid_dir"]).iterdir())


def read(path: str) -> str:
    return Path(path).read_text()


async def live_agent_ids(client: httpx.AsyncClient) -> list[str]:
    return [agent["agent_id"] for agent in (await client.get("/agents")).json()["agents"]]


async def test_spawn_up_to_max_pool_size_then_429(
    orchestrator: OrchestratorFactory, fleet: Fleet, pool_dirs: dict[str, Any], spawned_pids: list[int]
) -> None:
    for number in range(14):  # agents that joined on their own count toward MAX_POOL_SIZE
        await fleet.add(f"joined{number}", DATA)
    async with orchestrator(POOL_SCENARIOS, max_pool_size=16, **pool_dirs) as client:
        first = await spawn(client, spawned_pids, "DATA_ANALYSIS", "CODE_GENERATION")
        second = await spawn(client, spawned_pids, "WEB_SCRAPING", agent_id="scraper")

        refused = await client.post("/agents", json={"capabilities": ["DATA_ANALYSIS"]})

        assert (first["agent_id"], second["agent_id"]) == ("agent1", "scraper")
        assert first["capabilities"] == ["DATA_ANALYSIS", "CODE_GENERATION"]
        assert first["url"] == f"http://127.0.0.1:{first['port']}"
        assert len(await live_agent_ids(client)) == 16
        assert refused.status_code == 429, refused.text
        assert "the pool is full: 16 of 16 agents are live (MAX_POOL_SIZE)" in refused.json()["error"]
        assert [member["agent_id"] for member in await pool_members(client)] == ["agent1", "scraper"]
        stopped = (await client.delete("/pool", timeout=PROCESS_TIMEOUT_SECONDS)).json()["stopped"]
        # uvicorn ends with the signal it drained on.
        drained = -signal.SIGTERM
        assert sorted((agent["agent_id"], agent["exit_code"]) for agent in stopped) == [
            ("agent1", drained),
            ("scraper", drained),
        ]
        assert not any(psutil.pid_exists(pid) for pid in spawned_pids)


async def wait_for_subtasks(client: httpx.AsyncClient, task_ids: list[str], status: str, count: int) -> None:
    async def in_status() -> int:
        states = [await task_state(client, task_id) for task_id in task_ids]
        return sum(subtask["status"] == status for state in states for subtask in state["task"]["subtasks"])

    await eventually(in_status, lambda n: n >= count, timeout=PROCESS_TIMEOUT_SECONDS)


async def test_initialize_then_delete_pool_with_work_in_flight_loses_nothing(
    orchestrator: OrchestratorFactory, pool_dirs: dict[str, Any], spawned_pids: list[int]
) -> None:
    # Two slots per agent; a short grace, so the running subtasks are handed back, not finished, at the shutdown.
    settings = {
        **pool_dirs,
        "agent_concurrency": 2,
        "agent_stub_delay_seconds": 4.0,
        "agent_shutdown_grace_seconds": 0.5,
    }
    async with orchestrator(POOL_SCENARIOS, **settings) as client:
        started = await initialize(client, spawned_pids, size=1, capabilities=[["DATA_ANALYSIS"]])
        assert [(agent["agent_id"], agent["capabilities"]) for agent in started] == [("agent1", ["DATA_ANALYSIS"])]
        task_ids = [await submit(client, f"Run pool step number {n}") for n in range(4)]
        await wait_for_subtasks(client, task_ids, "running", 2)

        shut_down = await client.delete("/pool", timeout=PROCESS_TIMEOUT_SECONDS)

        assert shut_down.status_code == 200, shut_down.text
        assert [agent["agent_id"] for agent in shut_down.json()["stopped"]] == ["agent1"]
        assert await pool_members(client) == []
        assert not any(psutil.pid_exists(pid) for pid in spawned_pids)
        await wait_for_subtasks(client, task_ids, "queued", 4)  # the two handed back wait with the other two
        states = [await task_state(client, task_id) for task_id in task_ids]
        assert {state["task"]["status"] for state in states} <= {"pending", "in_progress"}

        await initialize(client, spawned_pids, size=1, capabilities=[["DATA_ANALYSIS"]])  # an agent joins again

        ended = [await wait_until_ended(client, task_id, timeout=PROCESS_TIMEOUT_SECONDS) for task_id in task_ids]
        assert [state["task"]["status"] for state in ended] == ["completed"] * 4


async def test_queued_work_starts_when_the_agent_frees(
    orchestrator: OrchestratorFactory, pool_dirs: dict[str, Any], spawned_pids: list[int]
) -> None:
    delay = 1.5
    async with orchestrator(POOL_SCENARIOS, **pool_dirs, agent_stub_delay_seconds=delay) as client:
        await initialize(client, spawned_pids, size=1, capabilities=[["DATA_ANALYSIS"]])
        first, second = [await submit(client, f"Run pool step {name}") for name in ("one", "two")]

        ended = [
            await wait_until_ended(client, task_id, timeout=PROCESS_TIMEOUT_SECONDS) for task_id in (first, second)
        ]

        assert [state["task"]["status"] for state in ended] == ["completed", "completed"]
        subtasks = [state["task"]["subtasks"][0] for state in ended]
        assert [subtask["assigned_agent"] for subtask in subtasks] == ["agent1", "agent1"]
        # One slot: the second waited on the queue until the first had run its course.
        assigned = sorted(datetime.fromisoformat(subtask["assigned_at"]) for subtask in subtasks)
        assert (assigned[1] - assigned[0]).total_seconds() >= delay
        await client.delete("/pool", timeout=PROCESS_TIMEOUT_SECONDS)


async def test_a_restarted_orchestrator_adopts_its_running_agents_and_forgets_dead_ones(
    orchestrator: OrchestratorFactory,
    orchestrator_settings: Settings,
    pool_dirs: dict[str, Any],
    spawned_pids: list[int],
) -> None:
    async with orchestrator(POOL_SCENARIOS, **pool_dirs) as client:
        kept = await spawn(client, spawned_pids, "DATA_ANALYSIS")
        lost = await spawn(client, spawned_pids, "CODE_GENERATION")
    # No orchestrator now: the agents run on; one of them dies meanwhile.
    assert psutil.pid_exists(kept["pid"])
    os.kill(lost["pid"], signal.SIGKILL)

    async with orchestrator(POOL_SCENARIOS, **pool_dirs) as client:
        members = await pool_members(client)
        assert [(member["agent_id"], member["pid"], member["state"]) for member in members] == [
            ("agent1", kept["pid"], "running")
        ]
        assert pidfiles(pool_dirs) == [f"agent-{orchestrator_settings.tenant_id}-agent1.pid"]
        task_id = await submit(client, "Run the adopted pool step")
        ended = await wait_until_ended(client, task_id, timeout=PROCESS_TIMEOUT_SECONDS)
        assert (ended["task"]["status"], ended["task"]["subtasks"][0]["assigned_agent"]) == ("completed", "agent1")

        stopped = (await client.delete("/pool", timeout=PROCESS_TIMEOUT_SECONDS)).json()["stopped"]

        assert [agent["agent_id"] for agent in stopped] == ["agent1"]
        assert not psutil.pid_exists(kept["pid"]) or psutil.Process(kept["pid"]).status() == psutil.STATUS_ZOMBIE
        assert pidfiles(pool_dirs) == []


async def test_an_agent_that_exits_is_reported_and_not_restarted(
    orchestrator: OrchestratorFactory, pool_dirs: dict[str, Any], spawned_pids: list[int]
) -> None:
    async with orchestrator(POOL_SCENARIOS, **pool_dirs) as client:
        agent = await spawn(client, spawned_pids, "DATA_ANALYSIS")

        os.kill(agent["pid"], signal.SIGKILL)

        members = await eventually(lambda: pool_members(client), lambda found: found[0]["state"] == "exited")
        assert [(member["agent_id"], member["exit_code"]) for member in members] == [("agent1", -signal.SIGKILL)]
        assert members[0]["log_path"] == agent["log_path"] and "agent_started" in read(agent["log_path"])
        assert [member["pid"] for member in await pool_members(client)] == [agent["pid"]]  # not started again


async def test_stop_sh_stops_the_agents_the_pool_started(
    orchestrator: OrchestratorFactory,
    orchestrator_settings: Settings,
    pool_dirs: dict[str, Any],
    spawned_pids: list[int],
    tmp_path: Path,
) -> None:
    # stop.sh as installed in a repository of its own (tmp_path), so it can reach no other fleet's processes.
    shutil.copytree(REPO_ROOT / "scripts", tmp_path / "scripts")
    async with orchestrator(POOL_SCENARIOS, **pool_dirs) as client:
        agent = await spawn(client, spawned_pids, "DATA_ANALYSIS")

        run = await asyncio.to_thread(
            subprocess.run,
            ["bash", str(tmp_path / "scripts/stop.sh")],
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT_SECONDS,
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        )

        assert run.returncode == 0, run.stderr
        assert f"stopped agent-{orchestrator_settings.tenant_id}-agent1 (PID {agent['pid']})" in run.stderr
        assert pidfiles(pool_dirs) == []
        members = await eventually(lambda: pool_members(client), lambda found: found[0]["state"] == "exited")
        assert members[0]["exit_code"] == -signal.SIGTERM  # drained, as on DELETE /pool


# --- failing an agent ---

SLOW_TASK = "Crunch the quarterly figures for the failover drill"
SECOND_TASK = "Crunch the monthly figures after the failover drill"
FAILOVER_SCENARIOS: dict[str, Any] = {
    "plans": [
        {"name": "failover", "match": "quarterly figures", "plan": plan(("s1", "Crunch it", ["DATA_ANALYSIS"], []))},
        {"name": "after", "match": "monthly figures", "plan": plan(("s1", "Crunch more", ["DATA_ANALYSIS"], []))},
    ]
}


class OfferCounter:
    """Counts the offers that reach an agent (from its offer queue, or POST /execute), whatever becomes of them."""

    def __init__(self) -> None:
        self.offers = 0

    def watch(self, book: OfferBook) -> None:
        take = book.take

        async def counted(requests: Sequence[TaskExecutionRequest]) -> list[OfferOutcome]:
            self.offers += len(requests)
            return await take(requests)

        book.take = counted  # type: ignore[method-assign]


@dataclass
class RealAgent:
    app: FastAPI
    counter: OfferCounter

    async def running(self) -> list[str]:
        """The subtasks it runs now (its server runs in another thread; a read of a list is safe)."""
        runner: SubtaskRunner = self.app.state.runner
        return runner.current_tasks


def agent_listening(settings: Settings, agent_id: str, **update: Any) -> tuple[socket.socket, Settings]:
    """A socket bound on a free port and the settings of an agent (DATA_ANALYSIS unless `update` says otherwise) of
    the orchestrator's fleet that serves on it, so it registers where it listens."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    agent_settings = settings.model_copy(
        update={
            "agent_id": agent_id,
            "agent_port": port,
            "agent_public_url": f"http://127.0.0.1:{port}",
            "agent_capabilities": [AgentCapability.DATA_ANALYSIS],
            **update,
        }
    )
    return sock, agent_settings


@contextmanager
def real_agent(settings: Settings, tmp_path: Path, agent_id: str, stub_delay_seconds: float) -> Iterator[RealAgent]:
    """An agent service of the orchestrator's fleet (its tenant and secret) whose subtasks take `stub_delay_seconds`."""
    sock, agent_settings = agent_listening(
        settings,
        agent_id,
        agent_executor="stub",
        agent_stub_delay_seconds=stub_delay_seconds,
        agent_claude_config_root=str(tmp_path / "claude" / agent_id),
        agent_shutdown_grace_seconds=0,
    )
    app = create_agent_app(agent_settings)
    counter = OfferCounter()
    with serve_in_thread(app, name=agent_id, sock=sock):
        counter.watch(app.state.offers)  # made by the lifespan, which has run
        yield RealAgent(app, counter)


async def listed_agents(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/agents")
    assert response.status_code == 200, response.text
    return {agent["agent_id"]: agent for agent in response.json()["agents"]}


async def results_of(db: DatabaseManager, task_id: str) -> list[tuple[str, str, bool, str | None]]:
    rows = await db.pool.fetch(
        "SELECT agent_id, status, applied, error FROM subtask_results WHERE task_id = $1 ORDER BY created_at", task_id
    )
    return [(row["agent_id"], row["status"], row["applied"], row["error"]) for row in rows]


async def test_fail_an_agent_mid_subtask_and_it_is_retried_elsewhere_at_once(
    orchestrator: OrchestratorFactory, orchestrator_settings: Settings, db: DatabaseManager, tmp_path: Path
) -> None:
    async with orchestrator(FAILOVER_SCENARIOS) as client:
        with real_agent(orchestrator_settings, tmp_path, "slow", stub_delay_seconds=120) as slow:
            await eventually(lambda: listed_agents(client), lambda agents: "slow" in agents)
            task_id = await submit(client, SLOW_TASK)
            await eventually(
                lambda: task_state(client, task_id), lambda s: s["task"]["subtasks"][0]["status"] == "running"
            )
            await eventually(slow.running, bool)  # it accepted the offer and runs it
            with real_agent(orchestrator_settings, tmp_path, "quick", stub_delay_seconds=1) as quick:
                await eventually(lambda: listed_agents(client), lambda agents: "quick" in agents)

                failed = await client.post("/agents/slow/fail")

                assert failed.status_code == 200, failed.text
                body = failed.json()
                assert (body["status"], body["attempts_handed_back"], body["agent_notified"]) == ("failed", 1, True)
                ended = await wait_until_ended(client, task_id)
                # Retried on the other agent at once: the slow agent's attempt would have taken two minutes.
                assert ended["task"]["status"] == "completed", ended
                subtask = ended["task"]["subtasks"][0]
                assert (subtask["assigned_agent"], subtask["attempt_count"], subtask["failed_agent_ids"]) == (
                    "quick",
                    2,
                    ["slow"],
                )
                # The slow agent stopped its attempt on the order to drain; that late result applies nothing.
                results = await eventually(lambda: results_of(db, task_id), lambda rows: len(rows) == 3)
                assert [(agent, status, applied) for agent, status, applied, _ in results if applied] == [
                    ("slow", "failed", True),  # the hand-back
                    ("quick", "completed", True),
                ]
                [late] = [row for row in results if not row[2]]
                assert late[:2] == ("slow", "failed") and "agent drained" in (late[3] or "")
                # The failed agent never gets another offer, even while the other agent is busy: two more tasks wait
                # for the quick one's slot in turn.
                later = [await submit(client, f"{SECOND_TASK}, part {n}") for n in (1, 2)]
                for later_id in later:
                    ended_later = await wait_until_ended(client, later_id)
                    assert ended_later["task"]["status"] == "completed"
                    assert ended_later["task"]["subtasks"][0]["assigned_agent"] == "quick"
                assert (slow.counter.offers, quick.counter.offers) == (1, 3)
                listed = await listed_agents(client)
                assert (listed["slow"]["state"], listed["slow"]["is_available"]) == ("failed", False)
                assert listed["quick"]["state"] == "active"


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
                sock, agent_settings = agent_listening(
                    settings,
                    agent_id,
                    agent_concurrency=1,
                    agent_executor="sdk",
                    anthropic_base_url=simulator_url,
                    claude_simulated=True,
                    agent_claude_config_root=str(tmp_path / "claude"),
                    agent_cli_env={"CLAUDE_CODE_MAX_RETRIES": "0"},
                    **overrides,
                )
                stack.enter_context(serve_in_thread(create_agent_app(agent_settings), name=agent_id, sock=sock))
            yield

    return serve


SdkFleet = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def sdk_fleet(orchestrator: OrchestratorFactory, orchestrator_settings: Settings, sdk_agents: AgentFleet) -> SdkFleet:
    """`sdk_fleet(scenarios, agent_ids)`: the simulator answering `scenarios`, real agents on it and a live
    orchestrator; a client of the orchestrator once every agent has registered."""

    @asynccontextmanager
    async def serve(scenarios: dict[str, Any], agent_ids: list[str]) -> AsyncIterator[httpx.AsyncClient]:
        with running_simulator(scenarios) as simulator:
            async with (
                sdk_agents(orchestrator_settings, simulator.base_url, agent_ids),
                orchestrator(scenarios, anthropic_base_url=simulator.base_url) as client,
            ):
                await eventually(
                    lambda: client.get("/agents"), lambda answer: len(answer.json()["agents"]) == len(agent_ids)
                )
                yield client

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


# --- attack pass: an agent that hangs while the pool stops ---


async def test_delete_pool_kills_an_agent_that_hangs_and_its_running_subtask_runs_again(
    orchestrator: OrchestratorFactory, pool_dirs: dict[str, Any], spawned_pids: list[int]
) -> None:
    """A hung agent neither drains on SIGTERM nor hands its subtask back: DELETE /pool kills it after the grace,
    and the subtask it held is retried, not lost."""
    settings = {**pool_dirs, "agent_stub_delay_seconds": 60.0, "agent_shutdown_grace_seconds": 0.5}
    async with orchestrator(POOL_SCENARIOS, **settings) as client:
        [agent] = await initialize(client, spawned_pids, size=1, capabilities=[["DATA_ANALYSIS"]])
        task_id = await submit(client, "Run the hung pool step")
        await wait_for_subtasks(client, [task_id], "running", 1)
        os.kill(agent["pid"], signal.SIGSTOP)  # hung: no drain, no heartbeat, no answer

        shut_down = await client.delete("/pool", timeout=PROCESS_TIMEOUT_SECONDS)

        assert shut_down.status_code == 200, shut_down.text
        assert [(a["agent_id"], a["exit_code"]) for a in shut_down.json()["stopped"]] == [("agent1", -signal.SIGKILL)]
        assert not psutil.pid_exists(agent["pid"])
        await wait_for_subtasks(client, [task_id], "queued", 1)  # handed back by recovery once its heartbeat lapsed

        state = await task_state(client, task_id)
        assert state["task"]["subtasks"][0]["attempt_count"] >= 1 and state["task"]["status"] == "in_progress"


# --- task types, affinity and graceful degradation ---

WEB = AgentCapability.WEB_SCRAPING
NO_SCRAPER = {"code": "no_live_agent", "message": "waiting: no live agent with WEB_SCRAPING"}

DEGRADATION_SCENARIOS: dict[str, Any] = {
    "plans": [
        {
            "match": "scrape and analyse",
            "plan": plan(
                ("scrape", "scrape the competitor prices", ["WEB_SCRAPING"], []),
                ("analyse", "analyse the quarterly sales", ["DATA_ANALYSIS"], []),
            ),
        },
        {"match": "", "plan": plan(("only", "the only step", ["DATA_ANALYSIS"], []))},
    ]
}


def subtask_named(state: dict[str, Any], description: str) -> dict[str, Any]:
    [subtask] = [item for item in state["task"]["subtasks"] if item["description"] == description]
    return subtask


async def submit_typed(client: httpx.AsyncClient, description: str, task_type: TaskType) -> str:
    response = await client.post("/tasks", json={"description": description, "task_type": task_type.lower()})
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def finish(
    fleet: Fleet, agent: FakeAgent, description: str, status: ResultStatus = ResultStatus.COMPLETED
) -> None:
    await wait_for_request(agent, description)
    request = agent.requests_for(description)[-1]
    await fleet.report(result_for(request, agent.agent_id, status=status))


async def test_a_subtask_no_live_agent_can_take_waits_with_its_reason_while_the_rest_completes_then_resumes(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    analyst = await fleet.add("agent1", DATA)
    async with orchestrator(DEGRADATION_SCENARIOS) as client:
        task_id = await submit(client, "Please scrape and analyse the market")
        await finish(fleet, analyst, "analyse the quarterly sales")

        def scrape_waits_and_analysis_is_done(state: dict[str, Any]) -> bool:
            scrape = subtask_named(state, "scrape the competitor prices")
            analysis = subtask_named(state, "analyse the quarterly sales")
            return scrape["status_reason"] is not None and analysis["status"] == "completed"

        state = await eventually(lambda: task_state(client, task_id), scrape_waits_and_analysis_is_done)
        scrape = subtask_named(state, "scrape the competitor prices")
        assert (scrape["status"], scrape["status_reason"]) == ("queued", NO_SCRAPER)
        assert (state["task"]["status"], state["task"]["status_reason"]) == ("in_progress", NO_SCRAPER)
        [summary] = (await client.get("/tasks")).json()["tasks"]
        assert summary["status_reason"] == NO_SCRAPER

        scraper = await fleet.add("agent2", WEB)  # it joins: the waiting subtask goes to it by itself
        await wait_for_request(scraper, "scrape the competitor prices")
        state = await task_state(client, task_id)
        scrape = subtask_named(state, "scrape the competitor prices")
        assert (scrape["status"], scrape["status_reason"], state["task"]["status_reason"]) == ("running", None, None)
        await finish(fleet, scraper, "scrape the competitor prices")
        state = await wait_until_ended(client, task_id)

    assert state["task"]["status"] == "completed"
    assert state["task"]["status_reason"] is None


class HealthEndpoint:
    """A dependency's health URL the test turns on and off."""

    def __init__(self) -> None:
        self.healthy = False
        self.app = FastAPI()

        @self.app.get("/health")
        async def health() -> Response:
            return Response(status_code=200 if self.healthy else 503)


@pytest.fixture
def discovery_health() -> Iterator[tuple[HealthEndpoint, str]]:
    endpoint = HealthEndpoint()
    with serve_in_thread(endpoint.app, name="discovery") as base_url:
        yield endpoint, f"{base_url}/health"


async def test_a_task_type_waits_while_its_dependency_is_down_and_flows_when_it_is_back(
    orchestrator: OrchestratorFactory, fleet: Fleet, discovery_health: tuple[HealthEndpoint, str]
) -> None:
    health, url = discovery_health
    analyst = await fleet.add("agent1", DATA, slots=2)
    dependencies = {TaskType.DISCOVERY: url}
    async with orchestrator(
        DEGRADATION_SCENARIOS, task_type_dependencies=dependencies, dependency_probe_interval_seconds=0.1
    ) as client:
        discovery = await submit_typed(client, "Discover the services of the fleet", TaskType.DISCOVERY)
        general = await submit_typed(client, "Summarise the quarterly sales", TaskType.GENERAL)

        await finish(fleet, analyst, "the only step")  # the GENERAL task's, while DISCOVERY waits
        assert (await wait_until_ended(client, general))["task"]["status"] == "completed"
        state = await eventually(
            lambda: task_state(client, discovery), lambda state: state["task"]["status_reason"] is not None
        )
        assert state["task"]["status_reason"] == {
            "code": "dependency_unavailable",
            "message": f"waiting: DISCOVERY needs {url}, which does not answer",
        }
        [waiting] = state["task"]["subtasks"]
        assert (waiting["task_type"], waiting["status"]) == ("DISCOVERY", "queued")
        assert len(analyst.requests_for("the only step")) == 1  # only the GENERAL task's was offered

        health.healthy = True
        await wait_for_request(analyst, "the only step", count=2)
        await finish(fleet, analyst, "the only step")
        state = await wait_until_ended(client, discovery)

    assert (state["task"]["status"], state["task"]["status_reason"]) == ("completed", None)


async def test_a_restarted_orchestrator_still_prefers_the_agent_with_the_better_record(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    # Without any record both agents rank alike and agent1 comes first (by id): it gets the first task and fails it,
    # agent5 gets the second and completes it.
    agents = {agent_id: await fleet.add(agent_id, DATA) for agent_id in ("agent1", "agent5")}
    async with orchestrator(DEGRADATION_SCENARIOS) as client:
        failed = await submit_typed(client, "Research the first market", TaskType.RESEARCH)
        await finish(fleet, agents["agent1"], "the only step", ResultStatus.FAILED)
        assert (await wait_until_ended(client, failed))["task"]["status"] == "failed"
        completed = await submit_typed(client, "Research the second market", TaskType.RESEARCH)
        await finish(fleet, agents["agent5"], "the only step")
        assert (await wait_until_ended(client, completed))["task"]["status"] == "completed"

    async with orchestrator(DEGRADATION_SCENARIOS) as client:  # a new process knows only what PostgreSQL kept
        research = await submit_typed(client, "Research the third market", TaskType.RESEARCH)
        await wait_for_request(agents["agent5"], "the only step", count=2)
        assert len(agents["agent1"].requests_for("the only step")) == 1
        await finish(fleet, agents["agent5"], "the only step")
        await wait_until_ended(client, research)

        # The record is per task type: for GENERAL work neither agent has one, and agent1 comes first again.
        general = await submit_typed(client, "Look at the fourth market", TaskType.GENERAL)
        await wait_for_request(agents["agent1"], "the only step", count=2)
        await finish(fleet, agents["agent1"], "the only step")
        state = await wait_until_ended(client, general)

    assert state["task"]["status"] == "completed"
