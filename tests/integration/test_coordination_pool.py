"""The coordination pool (seed 004) end to end: a live orchestrator on real PostgreSQL, Redis and the simulator,
with fake agents over HTTP."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response

from shared.models import AgentCapability, ResultStatus, TaskType
from shared.serving import serve_in_thread
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

# --- task types, affinity and graceful degradation ---

DATA = AgentCapability.DATA_ANALYSIS
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
