"""Money and waiting on the dashboard: a task's cost by the ledger (planning and attempts apart, per subtask, attempt
and call), the Spend tab (per UTC day against the daily budget, per tenant for an operator), and the work that
waits on Claude or is paused on a budget, counted in the header and found by the list's "Why" filter."""

import pytest

from shared.api_keys import ApiKeyScope
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.ledger import CallPurpose, LedgerEntry
from shared.models import AgentCapability, ModelCallUsage, StatusReason, TaskStatus, TokenUsage
from tests.api_keys import issue_key
from tests.factories import build_task
from tests.fake_agent import result_for
from tests.orchestrator_harness import (
    Fleet,
    OrchestratorFactory,
    submit,
    task_state,
    wait_for_request,
)
from tests.polling import eventually
from tests.unit.ui.conftest import Dashboard, DashboardFactory, cells, url_of
from tests.unit.ui.test_task_actions import SCENARIOS  # a chain of two steps, else one step
from ui import formatting
from ui.navigation import SPEND_TAB, VIEW, task_link
from ui.sections.cost_view import calls_key
from ui.sections.spend import OPERATORS_ONLY
from ui.sections.tasks import REASON_FILTER
from ui.why import PROVIDER_UNAVAILABLE, TENANT_DAILY_BUDGET

USAGE = TokenUsage(input_tokens=1_000, output_tokens=100)
WAITING_ON_CLAUDE = StatusReason(
    code=PROVIDER_UNAVAILABLE, message="waiting on Claude: rate limited (429), next try at 12:03:07 UTC"
)


def metrics(page: Dashboard) -> dict[str, str]:
    return {metric.label: metric.value for metric in page.app.metric}


async def test_a_task_s_cost_splits_into_planning_and_attempts_per_subtask_attempt_and_call(
    orchestrator: OrchestratorFactory, fleet: Fleet, dashboard: DashboardFactory, orchestrator_settings: Settings
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    model = next(iter(orchestrator_settings.model_prices))
    turns = [ModelCallUsage(purpose=CallPurpose.ATTEMPT, model=model, usage=USAGE)] * 2
    async with orchestrator(SCENARIOS) as api:
        task_id = await submit(api, "A chain of two steps", max_cost_usd="5")
        await wait_for_request(agent, "fetch the rows")
        result = result_for(agent.requests_for("fetch the rows")[0], agent.agent_id)
        await fleet.report(result.model_copy(update={"model_calls": turns, "token_usage": USAGE + USAGE}))
        await wait_for_request(agent, "report on the rows")
        cost = (await api.get(f"/tasks/{task_id}/cost")).json()
        page = dashboard(url_of(api))
        await page.open(task=task_id)
        page.app.session_state[calls_key(task_id)] = True  # the ledger's expander, opened
        await page.run()

    [fetched] = cost["subtasks"]
    assert cost["decomposition_usd"] > 0 and cost["attempts_usd"] > 0, "the simulator's model has a price"
    assert metrics(page)["Cost"] == formatting.cost(cost["total_usd"])
    share = f"{cost['total_usd'] / 5:.0%}"
    assert page.has_text(
        "caption",
        f"Cost: planning {formatting.cost(cost['decomposition_usd'])} (1 call) · "
        f"attempts {formatting.cost(cost['attempts_usd'])} (2 calls) · {share} of its $5.00 budget",
    )
    assert cells(page.app, "Cost", table_with="Waits on") == [formatting.cost(fetched["totals"]["cost_usd"]), "$0"]
    assert cells(page.app, "Purpose") == ["decomposition", "attempt", "attempt"]
    assert cells(page.app, "Cost", table_with="Purpose") == [
        formatting.cost(call["cost_usd"]) for call in cost["model_calls"]
    ]


async def test_the_spend_tab_shows_today_against_the_daily_budget_and_every_tenant(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory, db: DatabaseManager, orchestrator_settings: Settings
) -> None:
    await Repositories(db.pool, "globex").ledger.record([LedgerEntry(CallPurpose.ESTIMATE, "m", USAGE, 4.0)])
    async with orchestrator(SCENARIOS, tenant_daily_budget_usd=5.0) as api:
        task_id = await submit(api, "Summarise the quarterly numbers")
        spent = (await task_state(api, task_id))["cost_usd"]
        page = dashboard(url_of(api))
        await page.open(view=SPEND_TAB)

    figures = metrics(page)
    assert spent > 0
    assert figures["Spent today (UTC)"] == formatting.cost(spent)
    assert figures["Daily budget"] == "$5.00"
    assert figures["Left today"] == formatting.cost(5.0 - spent)
    assert len(page.app.get("vega_lite_chart")) == 1, "the spend per day"
    tenants = dict(zip(cells(page.app, "Tenant"), cells(page.app, "Today (UTC)"), strict=True))
    assert tenants == {"globex": "$4.00", orchestrator_settings.tenant_id: formatting.cost(spent)}
    assert page.texts("error") == []


async def test_a_spent_daily_budget_shows_on_the_spend_tab_and_its_paused_task_in_the_header_and_list(
    orchestrator: OrchestratorFactory, fleet: Fleet, dashboard: DashboardFactory
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    async with orchestrator(SCENARIOS, tenant_daily_budget_usd=0.0001) as api:
        task_id = await submit(api, "A chain of two steps")  # its planning alone spends the day's budget
        await wait_for_request(agent, "fetch the rows")  # the first result applied finds it spent
        await fleet.report(result_for(agent.requests_for("fetch the rows")[0], agent.agent_id))
        paused = await eventually(lambda: task_state(api, task_id), lambda state: state["task"]["status"] == "paused")
        page = dashboard(url_of(api))
        await page.open(task=task_id)
        header = page.texts("warning")
        page.app.selectbox(key=REASON_FILTER).set_value(TENANT_DAILY_BUDGET)
        await page.run()
        listed, why, panels = cells(page.app, "ID"), cells(page.app, "Why", table_with="Created"), page.texts("warning")
        page.app.session_state[VIEW] = SPEND_TAB  # what a click on the tab does
        await page.run()

    reason = paused["task"]["status_reason"]
    assert reason["code"] == TENANT_DAILY_BUDGET
    assert any("**1** task(s) paused on a budget" in text for text in header), header
    assert listed == [task_link(task_id)]
    assert why == [reason["message"]]
    assert f"**Paused: today's budget is spent** — {formatting.plain(reason['message'])}" in panels
    assert metrics(page)["Left today"] == "$0"
    assert page.has_text("error", "Today's budget is spent")


async def test_a_client_key_sees_its_own_spend_and_a_note_instead_of_every_tenant(
    orchestrator: OrchestratorFactory,
    dashboard: DashboardFactory,
    db: DatabaseManager,
    orchestrator_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client_key = await issue_key(db, orchestrator_settings.tenant_id, ApiKeyScope.CLIENT)
    async with orchestrator(SCENARIOS) as api:
        await submit(api, "Summarise the quarterly numbers")
        page = dashboard(url_of(api))
        monkeypatch.setenv("ORCHESTRATOR_API_KEY", client_key)
        await page.open(view=SPEND_TAB)

    assert metrics(page)["Daily budget"] == "none"
    assert page.texts("info") == [OPERATORS_ONLY]
    assert page.texts("error") == []


async def test_work_waiting_on_claude_is_counted_in_the_header_found_by_the_filter_and_explained(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory, orchestrator_repositories: Repositories
) -> None:
    # What the planner stores when Claude cannot plan a task now: pending, no subtasks, the reason why.
    waiting = build_task(subtasks=0, status=TaskStatus.PENDING, status_reason=WAITING_ON_CLAUDE)
    async with orchestrator(SCENARIOS) as api:
        other = await submit(api, "Summarise the quarterly numbers")
        await orchestrator_repositories.tasks.create_task(waiting)
        page = dashboard(url_of(api))
        await page.open(task=waiting.id)
        header = page.texts("warning")
        page.app.selectbox(key=REASON_FILTER).set_value(PROVIDER_UNAVAILABLE)
        await page.run()

    assert other != waiting.id
    assert any("**1** task(s) waiting on Claude" in text for text in header), header
    assert cells(page.app, "ID") == [task_link(waiting.id)]
    assert cells(page.app, "Why", table_with="Created") == [WAITING_ON_CLAUDE.message]
    assert f"**Waiting on Claude** — {formatting.plain(WAITING_ON_CLAUDE.message)}" in page.texts("warning")
    assert page.has_text("info", "the plan waits on Claude")
