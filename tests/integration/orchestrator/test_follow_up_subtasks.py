"""The coordinator's submit_follow_up_subtask tool against a live orchestrator: a running attempt adds a subtask to
its own task, which is queued once its dependencies are done and runs; another task's, a stale attempt's, a forged
or unsigned request and one past MAX_SUBTASKS_PER_TASK are refused."""

import json
from typing import Any

import httpx
import pytest

from agent.tools.context import ToolContext
from agent.tools.coordination import submit_follow_up_subtask
from agent.tools.data_source import DataSourcePool
from agent.tools.errors import ToolError
from agent.tools.workspace import Workspace
from shared.config import Settings
from shared.database import DatabaseManager
from shared.follow_up import AttemptCredential, FollowUpRequest, FollowUpSubtask
from shared.models import AgentCapability, TaskExecutionRequest, TaskType
from shared.redis_manager import RedisManager
from tests.fake_agent import FakeAgent, result_for
from tests.orchestrator_harness import (
    Fleet,
    OrchestratorFactory,
    plan,
    submit,
    wait_for_request,
    wait_until_ended,
)

SCENARIOS: dict[str, Any] = {
    "plans": [
        {"match": "ledger work", "plan": plan(("s1", "Coordinate the ledgers", ["COORDINATION"], []))},
        {"match": "audit work", "plan": plan(("s1", "Coordinate the audits", ["COORDINATION"], []))},
    ]
}
JSON = {"Content-Type": "application/json"}
FOLLOW_UP = {"description": "Tally the follow-up ledger", "required_capabilities": ["DATA_ANALYSIS"]}


def attempt_context(
    settings: Settings, client: httpx.AsyncClient, db: DatabaseManager, redis: RedisManager, offer: Any, **fields: Any
) -> ToolContext:
    """The tool context of the attempt `offer` (what the agent received), its tool calling `client`'s orchestrator."""
    request: TaskExecutionRequest = offer
    values: dict[str, Any] = {
        "settings": settings.model_copy(update={"orchestrator_url": str(client.base_url)}),
        "db": db,
        "redis": redis,
        "data_source": DataSourcePool(settings),
        "workspace": Workspace(settings.shared_files_dir, request.task_id, str(request.subtask.delivery_token)),
        "agent_id": "agent1",
        "task_id": request.task_id,
        "subtask_id": request.subtask.id,
        "attempt": request.subtask.attempt_count,
        "delivery_token": request.subtask.delivery_token,
        "assignment": request.assignment,
    }
    return ToolContext(**{**values, **fields})


async def coordinator(fleet: Fleet) -> FakeAgent:
    return await fleet.add("agent1", AgentCapability.COORDINATION, AgentCapability.DATA_ANALYSIS, slots=3)


async def ledger_attempt(
    client: httpx.AsyncClient,
    agent: FakeAgent,
    settings: Settings,
    db: DatabaseManager,
    redis: RedisManager,
    **fields: str,
) -> tuple[str, TaskExecutionRequest, ToolContext]:
    """Submit the ledger task and wait for its coordinator subtask's offer: the task id, the offer and the tool
    context of that attempt."""
    task_id = await submit(client, "Plan the ledger work", **fields)
    await wait_for_request(agent, "Coordinate the ledgers")
    [offer] = agent.requests_for("Coordinate the ledgers")
    return task_id, offer, attempt_context(settings, client, db, redis, offer)


async def test_a_follow_up_of_the_running_attempt_is_queued_when_its_dependency_completes_and_runs(
    orchestrator: OrchestratorFactory, fleet: Fleet, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    agent = await coordinator(fleet)
    async with orchestrator(SCENARIOS) as client:
        task_id, offer, context = await ledger_attempt(
            client, agent, orchestrator_settings, db, fleet.redis, task_type="RESEARCH"
        )
        answer = json.loads(await submit_follow_up_subtask(context, {**FOLLOW_UP, "dependencies": [offer.subtask.id]}))
        assert agent.requests_for("Tally the follow-up ledger") == []  # pending: its dependency still runs
        await fleet.report(result_for(offer, "agent1"))
        await wait_for_request(agent, "Tally the follow-up ledger")
        [follow_up] = agent.requests_for("Tally the follow-up ledger")
        await fleet.report(result_for(follow_up, "agent1"))
        state = await wait_until_ended(client, task_id)

    assert answer == {
        "task_id": task_id,
        "subtask_id": follow_up.subtask.id,
        "status": "pending",
        "subtasks_in_task": 2,
    }
    assert state["task"]["status"] == "completed", state["task"]["error"]
    assert [subtask["description"] for subtask in state["task"]["subtasks"]] == [
        "Coordinate the ledgers",
        "Tally the follow-up ledger",
    ]
    assert follow_up.subtask.dependencies == [offer.subtask.id]
    # The follow-up is part of the task's trace: its offer and log lines carry the submitting request's trace id.
    assert follow_up.subtask.trace_id == offer.subtask.trace_id == state["task"]["trace_id"]
    assert follow_up.subtask.trace_id is not None
    assert follow_up.subtask.task_type is TaskType.RESEARCH  # named none: the task's own


async def test_follow_ups_for_another_task_from_a_stale_attempt_unsigned_or_past_the_limit_are_refused(
    orchestrator: OrchestratorFactory, fleet: Fleet, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    agent = await coordinator(fleet)
    async with orchestrator(SCENARIOS, max_subtasks_per_task=2) as client:
        ledger = await submit(client, "Plan the ledger work")
        audit = await submit(client, "Plan the audit work")
        await wait_for_request(agent, "Coordinate the ledgers")
        await wait_for_request(agent, "Coordinate the audits")
        [ledger_offer] = agent.requests_for("Coordinate the ledgers")
        [audit_offer] = agent.requests_for("Coordinate the audits")
        ledger_attempt = attempt_context(orchestrator_settings, client, db, fleet.redis, ledger_offer)

        with pytest.raises(ToolError, match=r"\(401\).*signature does not match"):  # the model cannot pick a task
            forged = attempt_context(orchestrator_settings, client, db, fleet.redis, ledger_offer, task_id=audit)
            await submit_follow_up_subtask(forged, FOLLOW_UP)
        with pytest.raises(ToolError, match=rf"\(400\).*'{audit_offer.subtask.id}' is not a subtask of task {ledger}"):
            await submit_follow_up_subtask(ledger_attempt, {**FOLLOW_UP, "dependencies": [audit_offer.subtask.id]})
        with pytest.raises(ToolError, match=r"invalid: required_capabilities.0: Input should be"):
            await submit_follow_up_subtask(ledger_attempt, {**FOLLOW_UP, "required_capabilities": ["TIME_TRAVEL"]})
        unsigned = FollowUpRequest(
            attempt=AttemptCredential(
                task_id=ledger, subtask_id=ledger_offer.subtask.id, attempt=1, agent_id="agent1",
                delivery_token=str(ledger_offer.subtask.delivery_token), assignment=ledger_offer.assignment,
            ),
            subtask=FollowUpSubtask.model_validate(FOLLOW_UP),
        )  # fmt: skip
        refused = await client.post(
            "/coordination/follow-up-subtasks", content=unsigned.model_dump_json(), headers=JSON
        )
        assert refused.status_code == 401 and "not signed by a member of the fleet" in refused.text

        await submit_follow_up_subtask(ledger_attempt, FOLLOW_UP)  # the second of two allowed
        with pytest.raises(ToolError, match=r"\(409\).*the task has 2 subtasks; at most 2"):
            await submit_follow_up_subtask(ledger_attempt, FOLLOW_UP)

        await fleet.report(result_for(audit_offer, "agent1"))
        await wait_until_ended(client, audit)
        stale = attempt_context(orchestrator_settings, client, db, fleet.redis, audit_offer)
        with pytest.raises(ToolError, match=r"\(409\).*not the current attempt of task"):
            await submit_follow_up_subtask(stale, FOLLOW_UP)

    subtasks = await db.pool.fetch("SELECT task_id, description FROM subtasks ORDER BY task_id, position")
    assert [(row["task_id"], row["description"]) for row in subtasks] == sorted(
        [(ledger, "Coordinate the ledgers"), (ledger, FOLLOW_UP["description"]), (audit, "Coordinate the audits")]
    )


# --- attack pass: what the model can send through submit_follow_up_subtask ---

GATHERED = {
    "plans": [
        {
            "match": "gathered ledgers",
            "plan": plan(
                ("s1", "Gather the ledgers", ["DATA_ANALYSIS"], []),
                ("s2", "Coordinate the gathered ledgers", ["COORDINATION"], ["s1"]),
            ),
        },
        {"match": "audit totals", "plan": plan(("s1", "Tally the audit totals", ["DATA_ANALYSIS"], []))},
    ]
}


async def test_a_follow_up_ready_at_once_counts_against_max_queue_depth(
    orchestrator: OrchestratorFactory, fleet: Fleet, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    """A completed sibling as its dependency would queue the follow-up at once: while the queue is at MAX_QUEUE_DEPTH
    it is refused like a root subtask, not slipped past the limit."""
    agent = await fleet.add("agent1", AgentCapability.COORDINATION, AgentCapability.DATA_ANALYSIS, slots=1)
    async with orchestrator(GATHERED, max_queue_depth=1) as client:
        ledger = await submit(client, "Plan the gathered ledgers")
        await wait_for_request(agent, "Gather the ledgers")
        [gather] = agent.requests_for("Gather the ledgers")
        await fleet.report(result_for(gather, "agent1"))
        await wait_for_request(agent, "Coordinate the gathered ledgers")
        [coordinate] = agent.requests_for("Coordinate the gathered ledgers")
        await submit(client, "Plan the audit totals")  # agent1's one slot is taken: it waits in the queue
        queued = "SELECT count(*) FROM subtasks WHERE task_id = $1 AND status = 'queued'"
        context = attempt_context(orchestrator_settings, client, db, fleet.redis, coordinate)

        with pytest.raises(ToolError, match=r"\(429\)"):
            await submit_follow_up_subtask(context, {**FOLLOW_UP, "dependencies": [gather.subtask.id]})

        assert await db.pool.fetchval(queued, ledger) == 0
        assert await db.pool.fetchval("SELECT count(*) FROM subtasks WHERE task_id = $1", ledger) == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("description", "Tally the ledger\x00 and the rest", id="nul-description"),
        pytest.param("description", "Tally the ledger \ud800 and the rest", id="lone-surrogate"),
        pytest.param("task_type", "analysis\x00", id="nul-task-type"),
    ],
)
async def test_text_postgresql_cannot_store_is_refused_with_400_naming_the_field(
    orchestrator: OrchestratorFactory,
    fleet: Fleet,
    orchestrator_settings: Settings,
    db: DatabaseManager,
    field: str,
    value: str,
) -> None:
    agent = await coordinator(fleet)
    async with orchestrator(SCENARIOS) as client:
        task_id, _, context = await ledger_attempt(client, agent, orchestrator_settings, db, fleet.redis)

        with pytest.raises(ToolError, match=rf"invalid: {field}"):
            await submit_follow_up_subtask(context, {**FOLLOW_UP, field: value})

    assert await db.pool.fetchval("SELECT count(*) FROM subtasks WHERE task_id = $1", task_id) == 1


async def test_a_dependency_listed_twice_is_refused_so_no_offer_repeats_an_output(
    orchestrator: OrchestratorFactory, fleet: Fleet, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    """Every entry of a follow-up's dependencies puts that dependency's whole output into its offer: the same id
    listed 20,000 times (what fits in a request) would make the orchestrator build an offer of 20,000 copies."""
    agent = await coordinator(fleet)
    async with orchestrator(SCENARIOS) as client:
        task_id, offer, context = await ledger_attempt(client, agent, orchestrator_settings, db, fleet.redis)

        with pytest.raises(ToolError, match=rf"invalid: dependencies: .*{offer.subtask.id}.* more than once"):
            await submit_follow_up_subtask(context, {**FOLLOW_UP, "dependencies": [offer.subtask.id] * 20_000})

        body = FollowUpRequest.model_construct(
            attempt=AttemptCredential(
                task_id=task_id, subtask_id=offer.subtask.id, attempt=1, agent_id="agent1",
                delivery_token=str(offer.subtask.delivery_token), assignment=offer.assignment,
            ),
            subtask=FollowUpSubtask.model_construct(
                **{**FollowUpSubtask.model_validate(FOLLOW_UP).model_dump(), "dependencies": [offer.subtask.id] * 2}
            ),
        ).model_dump_json().encode()  # fmt: skip
        signed = {**JSON, "X-Fleet-Signature": fleet.trust.sign_request(body)}
        refused = await client.post("/coordination/follow-up-subtasks", content=body, headers=signed)
        assert refused.status_code == 400 and "more than once" in refused.text, refused.text

    assert await db.pool.fetchval("SELECT count(*) FROM subtasks WHERE task_id = $1", task_id) == 1


async def test_a_replayed_follow_up_adds_its_subtask_once_and_a_changed_one_is_refused(
    orchestrator: OrchestratorFactory, fleet: Fleet, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    agent = await coordinator(fleet)
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Plan the ledger work")
        await wait_for_request(agent, "Coordinate the ledgers")
        [offer] = agent.requests_for("Coordinate the ledgers")
        request = FollowUpRequest(
            attempt=AttemptCredential(
                task_id=task_id, subtask_id=offer.subtask.id, attempt=1, agent_id="agent1",
                delivery_token=str(offer.subtask.delivery_token), assignment=offer.assignment,
            ),
            subtask=FollowUpSubtask.model_validate(FOLLOW_UP),
        )  # fmt: skip
        body = request.model_dump_json().encode()
        signed = {**JSON, "X-Fleet-Signature": fleet.trust.sign_request(body)}
        path = "/coordination/follow-up-subtasks"

        first = await client.post(path, content=body, headers=signed)
        replayed = await client.post(path, content=body, headers=signed)
        changed = body.replace(b"Tally the follow-up ledger", b"Wipe the follow-up ledger")
        tampered = await client.post(path, content=changed, headers=signed)

    assert first.status_code == replayed.status_code == 200, (first.text, replayed.text)
    assert first.json()["subtask_id"] == replayed.json()["subtask_id"] == request.subtask.id
    assert replayed.json()["subtasks_in_task"] == 2
    assert tampered.status_code == 401 and "not signed by a member of the fleet" in tampered.text
    assert await db.pool.fetchval("SELECT count(*) FROM subtasks WHERE task_id = $1", task_id) == 2
