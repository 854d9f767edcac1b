"""The coordination pool's scenarios (seed 004) with a live orchestrator and real agents (stub executor) over HTTP,
on the real PostgreSQL, Redis and the simulator."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.app import create_app as create_agent_app
from agent.runner import SubtaskRunner
from shared.config import Settings
from shared.database import DatabaseManager
from shared.models import AgentCapability
from shared.serving import bound_socket, serve_in_thread
from tests.orchestrator_harness import OrchestratorFactory, plan, submit, task_state, wait_until_ended
from tests.polling import eventually

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
    """Counts the offers (POST /execute) that reach an agent, whatever it answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.offers = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/execute":
            self.offers += 1
        await self.app(scope, receive, send)


@dataclass
class RealAgent:
    app: FastAPI
    counter: OfferCounter

    async def running(self) -> list[str]:
        """The subtasks it runs now (its server runs in another thread; a read of a list is safe)."""
        runner: SubtaskRunner = self.app.state.runner
        return runner.current_tasks


@contextmanager
def real_agent(settings: Settings, tmp_path: Path, agent_id: str, stub_delay_seconds: float) -> Iterator[RealAgent]:
    """An agent service of the orchestrator's fleet (its tenant and secret) whose subtasks take `stub_delay_seconds`."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    agent_settings = settings.model_copy(
        update={
            "agent_id": agent_id,
            "agent_port": port,
            "agent_public_url": f"http://127.0.0.1:{port}",
            "agent_executor": "stub",
            "agent_stub_delay_seconds": stub_delay_seconds,
            "agent_capabilities": [AgentCapability.DATA_ANALYSIS],
            "agent_claude_config_root": str(tmp_path / "claude" / agent_id),
            "agent_shutdown_grace_seconds": 0,
        }
    )
    app = create_agent_app(agent_settings)
    counter = OfferCounter(app)
    with serve_in_thread(counter, name=agent_id, sock=sock):
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
