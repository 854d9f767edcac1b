"""A task's attempts in the dashboard: the tool calls each attempt made (name, arguments, result size, duration,
error), and the timeline of its attempts with their waits."""

from typing import Any

from shared.database import Repositories
from shared.models import AgentCapability, ToolCall
from tests.fake_agent import result_for
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, submit, wait_for_request, wait_until_ended
from tests.unit.ui.conftest import DashboardFactory, cells, url_of

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
        await page.open(task=task_id)

    assert cells(page.app, "Tool") == ["read_file", "database_query"]
    assert cells(page.app, "Arguments") == ['{"path": "ledger.csv"}', '{"sql": "DROP TABLE x"}']
    assert cells(page.app, "Result size") == ["8 chars", "29 chars"]
    assert cells(page.app, "Duration", table_with="Tool") == ["12 ms", "12 ms"]
    assert cells(page.app, "Error", table_with="Tool") == ["", "permission denied for table x"]
    assert cells(page.app, "Attempt", table_with="Tool") == [1, 1]
