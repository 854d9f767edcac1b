"""The orchestrator signs every offer it makes and applies only results that answer one of them."""

from typing import Any

import pytest
from pydantic import SecretStr

from orchestrator.lifecycle import TaskLifecycle
from shared.config import Settings
from shared.database import DatabaseManager
from shared.fleet_trust import FleetTrust
from shared.models import AgentCapability, ReportedResult, SubTaskResult, SubTaskStatus, TaskStatus
from tests.factories import build_planned_task, current_result, plain_result, run_attempt, subtask_id
from tests.fake_agent import result_for
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, submit, wait_for_request, wait_until_ended

SCENARIOS: dict[str, Any] = {
    "plans": [{"match": "single step", "plan": plan(("s1", "the only step", ["DATA_ANALYSIS"], []))}]
}
OTHER_SECRET = SecretStr("a-secret-this-fleet-never-had-0000000000")


def unsigned(result: ReportedResult, settings: Settings) -> SubTaskResult:
    return plain_result(result)


def signed_with_another_secret(result: ReportedResult, settings: Settings) -> SubTaskResult:
    return FleetTrust(OTHER_SECRET, settings.tenant_id).sign_result(unsigned(result, settings))


def signed_for_another_tenant(result: ReportedResult, settings: Settings) -> SubTaskResult:
    assert settings.fleet_secret is not None
    return FleetTrust(settings.fleet_secret, "another-tenant").sign_result(unsigned(result, settings))


def reported_by_another_agent(result: ReportedResult, settings: Settings) -> SubTaskResult:
    return result.model_copy(update={"agent_id": "agent9"})  # the assignment was agent1's


def rewritten_by_an_eavesdropper(result: ReportedResult, settings: Settings) -> SubTaskResult:
    """The genuine report, its assignment and its seal, with another output: what a tap on the network could send."""
    return result.model_copy(update={"output": "FORGED BY THE ATTACKER"})


def made_from_an_overheard_offer(result: ReportedResult, settings: Settings) -> SubTaskResult:
    """A report of the attacker's own, carrying the assignment a tap on the network saw, without the fleet's seal."""
    return ReportedResult(
        **unsigned(result, settings).model_dump(exclude={"output", "report_signature"}),
        output="FORGED BY THE ATTACKER",
        assignment=result.assignment,
    )


@pytest.mark.parametrize(
    "forge",
    [
        unsigned,
        signed_with_another_secret,
        signed_for_another_tenant,
        reported_by_another_agent,
        rewritten_by_an_eavesdropper,
        made_from_an_overheard_offer,
    ],
)
async def test_a_result_of_no_assignment_of_this_fleet_is_rejected_and_changes_nothing(
    lifecycle: TaskLifecycle, db: DatabaseManager, orchestrator_settings: Settings, forge: Any
) -> None:
    repos = db.repositories()
    task = await repos.tasks.create_task(build_planned_task({"a": []}))
    await repos.subtasks.queue_ready(task.id)
    await run_attempt(repos, subtask_id(task, "a"))
    genuine = await current_result(repos, task, "a")
    assert isinstance(genuine, ReportedResult)

    outcome = await lifecycle.apply_results([forge(genuine, orchestrator_settings)])

    assert list(outcome.rejected) == [0] and outcome.applied == []
    assert outcome.rejected[0].startswith("not an attempt the orchestrator assigned")
    still = await repos.subtasks.get_subtask(subtask_id(task, "a"))
    assert still is not None and still.status is SubTaskStatus.RUNNING
    assert await repos.results.get_subtask_results(task.id) == []

    applied = await lifecycle.apply_results([genuine])  # the agent's own result still applies

    assert len(applied.applied) == 1 and applied.finished == {task.id: TaskStatus.COMPLETED}


async def test_a_stranded_attempt_fails_through_a_result_the_orchestrator_signs(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    repos = db.repositories()
    task = await repos.tasks.create_task(build_planned_task({"a": []}))
    await repos.subtasks.queue_ready(task.id)
    running = await run_attempt(repos, subtask_id(task, "a"))

    outcome = await lifecycle.fail_stranded([(running, "agent1 stopped heartbeating")])

    assert outcome.rejected == {} and len(outcome.applied) == 1
    retried = await repos.subtasks.get_subtask(running.id)
    assert retried is not None and (retried.status, retried.attempt_count) == (SubTaskStatus.QUEUED, 2)


async def test_the_dispatcher_signs_each_offer_for_its_agent_and_an_unsigned_result_never_applies(
    orchestrator: OrchestratorFactory, fleet: Fleet, orchestrator_settings: Settings
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        await wait_for_request(agent, "the only step")
        [request] = agent.requests_for("the only step")
        FleetTrust.from_settings(orchestrator_settings).check_offer(request, "agent1")  # raises if not

        forged = unsigned(result_for(request, "agent1", output="what an attacker wants"), orchestrator_settings)
        genuine = result_for(request, "agent1")
        await fleet.report(forged)
        await fleet.report(genuine)
        state = await wait_until_ended(client, task_id)

    assert state["task"]["status"] == "completed"
    # Results apply in queue order: the unsigned one came first, and was rejected, not even recorded.
    assert [result["output"] for result in state["subtask_results"]] == [genuine.output]
