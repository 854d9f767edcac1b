"""The Metrics tab: charts of the orchestrator's per-minute history, the same for every browser session."""

from typing import Any

from shared.models import AgentCapability, ResultStatus
from tests.fake_agent import result_for
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, submit, wait_for_request, wait_until_ended
from tests.unit.ui.conftest import DashboardFactory, url_of
from ui.navigation import METRICS_TAB
from ui.sections.metrics import WINDOW

SCENARIOS: dict[str, Any] = {
    "plans": [
        {"match": "fails", "plan": plan(("bad", "the failing step", ["DATA_ANALYSIS"], []))},
        {"match": "", "plan": plan(("good", "the working step", ["DATA_ANALYSIS"], []))},
    ]
}


async def test_the_charts_come_from_the_server_history(
    orchestrator: OrchestratorFactory, fleet: Fleet, dashboard: DashboardFactory
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    async with orchestrator(SCENARIOS) as api:
        for description, step, status in [
            ("A task that works", "the working step", ResultStatus.COMPLETED),
            ("A task that fails", "the failing step", ResultStatus.FAILED),
        ]:
            task_id = await submit(api, description)
            await wait_for_request(agent, step)
            await fleet.report(result_for(agent.requests_for(step)[0], "agent1", status=status))
            await wait_until_ended(api, task_id)
        page = dashboard(url_of(api))  # a new session: nothing was sampled in the browser
        await page.open(view=METRICS_TAB)
        totals = {metric.label: metric.value for metric in page.app.metric}
        page.app.selectbox(key=WINDOW).set_value("Last 15 minutes")
        await page.run()

    assert totals["Subtasks completed"] == "1"
    assert totals["Subtasks failed"] == "1"
    assert totals["Tasks completed"] == "1"
    assert len(page.app.get("vega_lite_chart")) == 5, "throughput, latency, cost, failure rate, queue depth"
    assert page.texts("error") == []
