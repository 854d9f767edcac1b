"""A task's attempts in the dashboard: the tool calls each attempt made (name, arguments, result size, duration,
error), and the timeline of its attempts with their waits."""

from typing import Any

from shared.database import Repositories
from shared.models import AgentCapability, ResultStatus, TaskExecutionRequest, ToolCall
from tests.fake_agent import result_for
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, submit, wait_for_request, wait_until_ended
from tests.polling import eventually
from tests.unit.ui.conftest import DashboardFactory, cells, url_of
from ui.sections.attempt_view import timeline_key, tool_calls_key

SCENARIOS: dict[str, Any] = {"plans": [{"match": "", "plan": plan(("s1", "read the ledger", ["DATA_ANALYSIS"], []))}]}


async def test_the_tool_calls_of_each_attempt_are_listed(
    orchestrator: OrchestratorFactory,
    orchestrator_repositories: Repositories,
    fleet: Fleet,
    dashboard: DashboardFactory,
) -> None:
    analyst = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    async with orchestrator(SCENARIOS) as api:
        task_id = await submit(api, "Read the ledger and sum it")
        await wait_for_request(analyst, "read the ledger")
        [request] = analyst.requests_for("read the ledger")
        audit = orchestrator_repositories.audit
        for name, arguments, outcome, is_error in [
            ("read_file", {"path": "ledger.csv"}, "a,b\n1,2\n", False),
            ("database_query", {"sql": "DROP TABLE x"}, "permission denied for table x", True),
        ]:
            call = ToolCall(
                agent_id="agent1",
                task_id=task_id,
                subtask_id=request.subtask.id,
                attempt=1,
                tool_name=name,
                arguments=arguments,
                is_error=is_error,
                outcome=outcome,
                duration_ms=12.5,
            )
            await audit.record_tool_call(call)
        await fleet.report(result_for(request, "agent1"))
        await wait_until_ended(api, task_id)
        page = dashboard(url_of(api))
        page.app.session_state[tool_calls_key(task_id)] = True  # the expander is opened
        await page.open(task=task_id)

    assert cells(page.app, "Tool") == ["read_file", "database_query"]
    assert cells(page.app, "Arguments") == ['{"path": "ledger.csv"}', '{"sql": "DROP TABLE x"}']
    assert cells(page.app, "Result size") == ["8 chars", "29 chars"]
    assert cells(page.app, "Duration", table_with="Tool") == ["12 ms", "12 ms"]
    assert cells(page.app, "Error", table_with="Tool") == ["", "permission denied for table x"]
    assert cells(page.app, "Attempt", table_with="Tool") == [1, 1]


async def test_the_timeline_shows_each_attempt_with_its_agent_wait_run_and_error(
    orchestrator: OrchestratorFactory, fleet: Fleet, dashboard: DashboardFactory
) -> None:
    await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    await fleet.add("agent2", AgentCapability.DATA_ANALYSIS)
    async with orchestrator(SCENARIOS) as api:
        task_id = await submit(api, "Read the ledger twice if need be")
        runners = []
        for attempt, outcome in [(1, ResultStatus.FAILED), (2, ResultStatus.COMPLETED)]:
            request, runner = await attempt_sent(fleet, attempt)
            runners.append(runner)
            failed = {"error": "the CLI crashed", "retryable": True} if outcome is ResultStatus.FAILED else {}
            await fleet.report(result_for(request, runner, status=outcome, **failed))  # type: ignore[arg-type]
        await wait_until_ended(api, task_id)
        page = dashboard(url_of(api))
        page.app.session_state[timeline_key(task_id)] = True
        await page.open(task=task_id)

    assert cells(page.app, "Attempt", table_with="Waited") == [1, 2]
    assert cells(page.app, "Agent", table_with="Waited") == runners
    assert cells(page.app, "Status", table_with="Waited") == ["failed", "completed"]
    assert cells(page.app, "Error", table_with="Waited") == ["the CLI crashed", ""]
    assert "—" not in cells(page.app, "Waited") + cells(page.app, "Ran"), "both attempts waited and ran"
    assert len(page.app.get("vega_lite_chart")) == 1, "the waits and runs as a chart"


async def attempt_sent(fleet: Fleet, attempt: int) -> tuple[TaskExecutionRequest, str]:
    """The request of the subtask's given attempt, and the agent it went to."""

    async def sent() -> list[tuple[TaskExecutionRequest, str]]:
        return [
            (request, agent.agent_id)
            for agent in fleet.agents.values()
            for request in agent.requests_for("read the ledger")
            if request.subtask.attempt_count == attempt
        ]

    [found] = await eventually(sent, bool)
    return found
