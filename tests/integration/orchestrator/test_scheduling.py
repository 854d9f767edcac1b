"""The orchestrator's loops end to end: dependency order, parallelism, failure, retries and duplicates."""

from typing import Any

from orchestrator.recovery import OFFER_ACCEPT_SECONDS
from shared.database import DatabaseManager, Repositories
from shared.models import AgentCapability, LogLevel, ResultStatus
from tests.fake_agent import result_for
from tests.orchestrator_harness import (
    HEARTBEAT_TTL_SECONDS,
    Fleet,
    OrchestratorFactory,
    plan,
    submit,
    task_state,
    wait_for_request,
    wait_for_request_anywhere,
    wait_for_results,
    wait_until_ended,
)
from tests.polling import eventually

DATA = AgentCapability.DATA_ANALYSIS
CODE = AgentCapability.CODE_GENERATION
DB = AgentCapability.DATABASE_OPERATIONS

SCENARIOS: dict[str, Any] = {
    "plans": [
        {
            "match": "chain of three",
            "plan": plan(
                ("s1", "fetch the rows", ["DATABASE_OPERATIONS"], []),
                ("s2", "analyse the rows", ["DATA_ANALYSIS"], ["s1"]),
                ("s3", "write the report code", ["CODE_GENERATION"], ["s2"]),
            ),
        },
        {
            "match": "two branches",
            "plan": plan(
                ("a", "left branch", ["DATA_ANALYSIS"], []),
                ("b", "right branch", ["DATA_ANALYSIS"], []),
                ("c", "join both branches", ["DATA_ANALYSIS"], ["a", "b"]),
            ),
        },
        {"match": "single step", "plan": plan(("s1", "the only step", ["DATA_ANALYSIS"], []))},
    ]
}


def statuses(state: dict[str, Any]) -> dict[str, str]:
    return {subtask["description"]: subtask["status"] for subtask in state["task"]["subtasks"]}


async def test_subtasks_run_in_dependency_order_on_capable_agents(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    database_agent = await fleet.add("agent3", DB)
    analyst = await fleet.add("agent5", DATA, DB)
    coder = await fleet.add("agent4", CODE)
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Run a chain of three steps please")
        await wait_for_request(database_agent, "fetch the rows")
        assert statuses(await task_state(client, task_id))["analyse the rows"] == "pending"
        first = database_agent.requests_for("fetch the rows")[0]
        await fleet.report(result_for(first, "agent3", output="rows: 42"))

        await wait_for_request(analyst, "analyse the rows")
        second = analyst.requests_for("analyse the rows")[0]
        assert second.task_context["dependency_outputs"] == [{"subtask_id": first.subtask.id, "output": "rows: 42"}]
        assert second.task_context["task_description"] == "Run a chain of three steps please"
        await fleet.report(result_for(second, "agent5", output='{"mean": 7}'))

        await wait_for_request(coder, "write the report code")
        third = coder.requests_for("write the report code")[0]
        await fleet.report(result_for(third, "agent4", output='{"script": "report.py"}'))
        state = await wait_until_ended(client, task_id)

    assert state["task"]["status"] == "completed"
    result = state["task"]["result"]
    assert [entry["agent_id"] for entry in result["outputs"]] == ["agent3", "agent5", "agent4"]
    assert result["merged"] == {"mean": 7, "script": "report.py"}
    assert result["summary"] == '{"script": "report.py"}'
    assert {r["agent_id"] for r in state["subtask_results"]} == {"agent3", "agent5", "agent4"}


async def test_independent_subtasks_run_in_parallel(orchestrator: OrchestratorFactory, fleet: Fleet) -> None:
    first_agent = await fleet.add("agent1", DATA)
    second_agent = await fleet.add("agent5", DATA)
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Explore two branches of the data")
        # Both branches are handed out before either has reported: they run side by side.
        for description in ("left branch", "right branch"):
            await wait_for_request_anywhere(fleet, description)
        state = await task_state(client, task_id)
        assert statuses(state) == {"left branch": "running", "right branch": "running", "join both branches": "pending"}
        assert {s["assigned_agent"] for s in state["task"]["subtasks"][:2]} == {"agent1", "agent5"}
        for agent in (first_agent, second_agent):
            for request in list(agent.received):
                await fleet.report(result_for(request, agent.agent_id))
        await wait_for_request_anywhere(fleet, "join both branches")


async def test_a_failure_blocks_dependents_and_fails_the_task(
    orchestrator: OrchestratorFactory, fleet: Fleet, orchestrator_repositories: Repositories
) -> None:
    agent = await fleet.add("agent1", DATA, slots=2)
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Explore two branches of the data")
        await wait_for_request(agent, "left branch")
        await wait_for_request(agent, "right branch")
        left, right = agent.requests_for("left branch")[0], agent.requests_for("right branch")[0]
        await fleet.report(result_for(left, "agent1"))
        await fleet.report(result_for(right, "agent1", status=ResultStatus.FAILED, error="source is offline"))
        state = await wait_until_ended(client, task_id)

    assert state["task"]["status"] == "failed"
    assert statuses(state) == {"left branch": "completed", "right branch": "failed", "join both branches": "blocked"}
    assert "source is offline" in state["task"]["error"]
    assert "1 dependent subtask(s) blocked" in state["task"]["error"]
    assert not agent.requests_for("join both branches")
    errors = await orchestrator_repositories.audit.list_agent_logs(task_id=task_id, level=LogLevel.ERROR)
    assert [log.message for log in errors] == ["subtask failed: source is offline"]


async def test_a_retryable_failure_is_retried_on_another_agent(orchestrator: OrchestratorFactory, fleet: Fleet) -> None:
    agents = {agent_id: await fleet.add(agent_id, DATA) for agent_id in ("agent1", "agent5")}
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        await wait_for_request_anywhere(fleet, "the only step")
        first_id = next(agent_id for agent_id, agent in agents.items() if agent.received)
        other_id = next(agent_id for agent_id in agents if agent_id != first_id)
        first = agents[first_id].received[0]
        await fleet.report(result_for(first, first_id, status=ResultStatus.FAILED, error="overloaded", retryable=True))

        await wait_for_request(agents[other_id], "the only step")
        retry = agents[other_id].received[0]
        assert retry.subtask.attempt_count == 2
        assert retry.subtask.failed_agent_ids == [first_id]
        await fleet.report(result_for(retry, other_id))
        state = await wait_until_ended(client, task_id)

    assert state["task"]["status"] == "completed"
    assert len(agents[first_id].received) == 1
    attempts = sorted((r["attempt"], r["agent_id"], r["status"]) for r in state["subtask_results"])
    assert attempts == [(1, first_id, "failed"), (2, other_id, "completed")]


async def test_duplicate_and_late_results_change_nothing(
    orchestrator: OrchestratorFactory, fleet: Fleet, db: DatabaseManager
) -> None:
    agents = {agent_id: await fleet.add(agent_id, DATA) for agent_id in ("agent1", "agent5")}
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        await wait_for_request_anywhere(fleet, "the only step")
        first_id = next(agent_id for agent_id, agent in agents.items() if agent.received)
        other_id = next(agent_id for agent_id in agents if agent_id != first_id)
        first = agents[first_id].received[0]
        failure = result_for(first, first_id, status=ResultStatus.FAILED, error="timeout", retryable=True)
        await fleet.report(failure)
        await fleet.report(failure)  # delivered twice
        await wait_for_request(agents[other_id], "the only step")
        retry = agents[other_id].received[0]
        # Attempt 1's agent answers after all, late: recorded, but attempt 2 is the one that counts.
        await fleet.report(result_for(first, first_id, output="late answer"))
        success = result_for(retry, other_id, output="the real answer")
        await fleet.report(success)
        await fleet.report(success)
        state = await wait_until_ended(client, task_id)
        await wait_for_results(db, task_id, count=3)

    assert state["task"]["status"] == "completed"
    assert state["task"]["result"]["summary"] == "the real answer"
    stored = await db.pool.fetch(
        "SELECT attempt, agent_id, status, applied FROM subtask_results WHERE task_id = $1 ORDER BY created_at",
        task_id,
    )
    assert [tuple(row) for row in stored] == [
        (1, first_id, "failed", True),
        (1, first_id, "completed", False),
        (2, other_id, "completed", True),
    ]
    assert len(agents[first_id].received) == 1 and len(agents[other_id].received) == 1


async def test_an_agent_that_stops_heartbeating_has_its_subtask_retried_elsewhere(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    agents = {agent_id: await fleet.add(agent_id, DATA) for agent_id in ("agent1", "agent5")}
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        await wait_for_request_anywhere(fleet, "the only step")
        dead_id = next(agent_id for agent_id, agent in agents.items() if agent.received)
        alive_id = next(agent_id for agent_id in agents if agent_id != dead_id)
        fleet.stop_heartbeat(dead_id)  # its registry entry expires; the orchestrator must notice

        await wait_for_request(agents[alive_id], "the only step", timeout=HEARTBEAT_TTL_SECONDS + 20)
        retry = agents[alive_id].received[0]
        assert retry.subtask.failed_agent_ids == [dead_id]
        await fleet.report(result_for(retry, alive_id))
        state = await wait_until_ended(client, task_id)

    assert state["task"]["status"] == "completed"
    lost = [r for r in state["subtask_results"] if r["agent_id"] == dead_id]
    assert lost[0]["status"] == "failed" and "stopped heartbeating" in lost[0]["error"]


async def test_queued_work_survives_redis_losing_its_data(orchestrator: OrchestratorFactory, fleet: Fleet) -> None:
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")  # no agent yet: the subtask waits queued
        keys = [key async for key in fleet.redis.client.scan_iter(match=fleet.redis.keys.pattern())]
        await fleet.redis.client.delete(*keys)  # Redis restarts empty
        agent = await fleet.add("agent1", DATA)
        await wait_for_request(agent, "the only step")
        await fleet.report(result_for(agent.received[0], "agent1"))
        state = await wait_until_ended(client, task_id)
    assert state["task"]["status"] == "completed"


async def test_cancel_stops_the_task_and_later_results_change_nothing(
    orchestrator: OrchestratorFactory, fleet: Fleet, db: DatabaseManager
) -> None:
    agent = await fleet.add("agent3", DB)
    await fleet.add("agent5", DATA)
    await fleet.add("agent4", CODE)
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Run a chain of three steps please")
        await wait_for_request(agent, "fetch the rows")
        cancelled = await client.post(f"/tasks/{task_id}/cancel")
        assert cancelled.json() == {"task_id": task_id, "status": "cancelled", "subtasks_cancelled": 3}
        assert (await task_state(client, task_id))["subtask_results"] == []  # the ended task's detail, now cached
        await fleet.report(result_for(agent.received[0], "agent3"))
        await wait_for_results(db, task_id, count=1)
        state = await task_state(client, task_id)
    assert state["task"]["status"] == "cancelled"
    assert set(statuses(state).values()) == {"cancelled"}
    assert [r["status"] for r in state["subtask_results"]] == ["completed"]
    assert await db.pool.fetchval("SELECT applied FROM subtask_results WHERE task_id = $1", task_id) is False


async def test_an_offer_its_agent_never_received_is_taken_back_and_offered_elsewhere(
    orchestrator: OrchestratorFactory, fleet: Fleet, db: DatabaseManager
) -> None:
    """Never accepted, so nothing ran: the same attempt goes to another agent, with no failure counted."""
    lost_to = await fleet.add("agent1", DATA)
    lost_to.refuse = True  # alive and heartbeating, but it runs nothing
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        [subtask] = (await task_state(client, task_id))["task"]["subtasks"]

        # The claim a dispatcher makes just before it crashes: running on agent1, which never got the offer.
        async def claim() -> object:
            return await db.repositories().subtasks.claim(subtask["id"], 1, "agent1")

        await eventually(claim, lambda claimed: claimed is not None)
        capable = await fleet.add("agent5", DATA)

        await wait_for_request(capable, "the only step", timeout=OFFER_ACCEPT_SECONDS + 15)
        retry = capable.received[0]
        assert (retry.subtask.attempt_count, retry.subtask.failed_agent_ids) == (1, [])
        await fleet.report(result_for(retry, "agent5"))
        state = await wait_until_ended(client, task_id)

    assert state["task"]["status"] == "completed"
    assert [(r["agent_id"], r["attempt"]) for r in state["subtask_results"]] == [("agent5", 1)]


async def test_an_agent_that_refused_gets_no_offers_until_it_heartbeats_again(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    silent = await fleet.add("agent1", DATA)  # first in name order, so first to be offered work
    fleet.stop_heartbeat("agent1")  # its entry lives on for the TTL; it answers nothing but refusals
    silent.refuse = True
    worker = await fleet.add("agent5", DATA)
    async with orchestrator(SCENARIOS) as client:
        task_ids = [await submit(client, "Do a single step of work") for _ in range(3)]
        for n in range(3):  # agent5 takes them one at a time
            await wait_for_request(worker, "the only step", count=n + 1)
            await fleet.report(result_for(worker.received[n], "agent5"))
        states = [await wait_until_ended(client, task_id) for task_id in task_ids]

    assert [state["task"]["status"] for state in states] == ["completed"] * 3
    assert silent.offers == 1  # refused once, then left alone: it has not heartbeated since


async def test_work_on_an_agent_that_stopped_answering_is_retried_before_its_entry_expires(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    stalled = await fleet.add("agent1", DATA, slots=2)
    async with orchestrator(SCENARIOS) as client:
        first = await submit(client, "Do a single step of work")
        await wait_for_request(stalled, "the only step")
        fleet.stop_heartbeat("agent1")
        stalled.refuse = True  # it holds the first attempt and answers no more offers
        await submit(client, "Do a single step of work")
        await eventually(lambda: _offers(stalled), lambda offers: offers >= 2)
        worker = await fleet.add("agent5", DATA, slots=2)
        await wait_for_request(worker, "the only step", count=2, timeout=HEARTBEAT_TTL_SECONDS + 20)
        for request in worker.received:
            await fleet.report(result_for(request, "agent5"))
        state = await wait_until_ended(client, first)

    assert state["task"]["status"] == "completed"
    lost = [r for r in state["subtask_results"] if r["agent_id"] == "agent1"]
    assert lost[0]["status"] == "failed" and "stopped answering offers" in lost[0]["error"]


async def _offers(agent: Any) -> int:
    offers: int = agent.offers
    return offers
