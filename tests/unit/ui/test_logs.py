"""The Logs tab: agent logs from PostgreSQL through the API, filtered by agent, level, task and time range."""

from datetime import datetime, timedelta

from shared.database import Repositories
from shared.models import AgentCapability, LogLevel
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, submit
from tests.unit.ui.conftest import Dashboard, DashboardFactory, cells, url_of
from ui.navigation import LOGS_TAB
from ui.sections.logs import ANY, CUSTOM_RANGE

SCENARIOS = {"plans": [{"match": "", "plan": plan(("only", "the only step", ["DATA_ANALYSIS"], []))}]}


async def write_log(repos: Repositories, agent_id: str, level: LogLevel, message: str, age: timedelta) -> None:
    """A line of the test orchestrator's tenant, as its agents write them."""
    log = await repos.audit.log_agent_activity(agent_id, "task_0123456789abcdef", level, message, {"attempt": 1})
    # The repository stamps the current time; older lines are dated back directly.
    await repos.executor.execute("UPDATE agent_logs SET created_at = now() - $2::interval WHERE id = $1", log.id, age)


def messages(page: Dashboard) -> list[str]:
    return cells(page.app, "Message") if page.app.dataframe else []


async def choose(page: Dashboard, key: str, value: object) -> list[str]:
    page.app.selectbox(key=key).set_value(value)
    await page.run()
    return messages(page)


async def type_in(page: Dashboard, key: str, value: str) -> list[str]:
    page.app.text_input(key=key).input(value)
    await page.run()
    return messages(page)


async def test_log_filters_by_agent_level_and_time_range(
    orchestrator: OrchestratorFactory,
    fleet: Fleet,
    orchestrator_repositories: Repositories,
    dashboard: DashboardFactory,
) -> None:
    await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    await fleet.add("agent2", AgentCapability.WEB_SCRAPING)
    now = timedelta()
    await write_log(orchestrator_repositories, "agent1", LogLevel.INFO, "subtask started", now)
    await write_log(orchestrator_repositories, "agent1", LogLevel.ERROR, "tool call failed", now)
    await write_log(orchestrator_repositories, "agent2", LogLevel.WARNING, "slow answer from the API", now)
    await write_log(orchestrator_repositories, "agent2", LogLevel.INFO, "two hours ago", timedelta(hours=2))
    await write_log(orchestrator_repositories, "agent1", LogLevel.DEBUG, "three days ago", timedelta(days=3))
    async with orchestrator({}) as api:
        page = dashboard(url_of(api))
        await page.open(view=LOGS_TAB)
        last_day = messages(page)

        by_agent = await type_in(page, "log_agent", "agent1")
        by_agent_and_level = await choose(page, "log_level", LogLevel.ERROR)
        await type_in(page, "log_agent", "")
        by_level = await choose(page, "log_level", LogLevel.WARNING)
        await choose(page, "log_level", ANY)
        last_hour = await choose(page, "log_range", "Last hour")
        all_time = await choose(page, "log_range", "All time")
        await choose(page, "log_range", CUSTOM_RANGE)
        local_now = datetime.now()
        page.app.datetime_input(key="log_since").set_value(local_now - timedelta(days=4))
        page.app.datetime_input(key="log_until").set_value(local_now - timedelta(days=2))
        await page.run()

    assert last_day == ["slow answer from the API", "tool call failed", "subtask started", "two hours ago"]
    assert by_agent == ["tool call failed", "subtask started"]
    assert by_agent_and_level == ["tool call failed"]
    assert by_level == ["slow answer from the API"]
    assert last_hour == ["slow answer from the API", "tool call failed", "subtask started"]
    assert all_time == [*last_day, "three days ago"]
    assert messages(page) == ["three days ago"]
    assert cells(page.app, "Level") == ["DEBUG"]
    assert cells(page.app, "Task") == ["task_01234567"]


async def test_no_matching_logs_is_said_plainly(orchestrator: OrchestratorFactory, dashboard: DashboardFactory) -> None:
    async with orchestrator({}) as api:
        page = dashboard(url_of(api))
        await page.open(view=LOGS_TAB)

    assert "No logs match these filters." in page.texts("info")
    assert page.texts("error") == []


async def test_a_link_opens_the_logs_of_one_task_and_the_url_follows_the_filters(
    orchestrator: OrchestratorFactory, orchestrator_repositories: Repositories, dashboard: DashboardFactory
) -> None:
    repos = orchestrator_repositories
    await repos.audit.log_agent_activity("agent1", "task_0123456789abcdef", LogLevel.INFO, "about the task", {})
    await repos.audit.log_agent_activity("agent1", "task_fedcba9876543210", LogLevel.INFO, "about another", {})
    async with orchestrator({}) as api:
        page = dashboard(url_of(api))
        await page.open(logs_task="task_0123456789abcdef")  # no tab named: the link's logs open
        linked = messages(page)
        tasks_tab_ran = any(frame.key and frame.key.startswith("task_table") for frame in page.app.dataframe)
        by_agent = await type_in(page, "log_agent", "agent1")

    assert linked == ["about the task"]
    assert page.app.text_input(key="log_task").value == "task_0123456789abcdef"
    assert not tasks_tab_ran, "only the Logs tab runs"
    assert by_agent == ["about the task"]
    assert dict(page.app.query_params) == {"logs_task": "task_0123456789abcdef", "logs_agent": "agent1"}


async def test_a_task_s_logs_button_opens_the_logs_tab_filtered_to_it(
    orchestrator: OrchestratorFactory, orchestrator_repositories: Repositories, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        task_id = await submit(api, "A task with something to say")
        await orchestrator_repositories.audit.log_agent_activity("agent1", task_id, LogLevel.INFO, "said it", {})
        await orchestrator_repositories.audit.log_agent_activity("agent1", None, LogLevel.INFO, "unrelated", {})
        page = dashboard(url_of(api))
        await page.open(task=task_id)
        page.app.button(key=f"logs_{task_id}").click()
        await page.run()

    assert messages(page) == ["said it"]
    assert page.app.query_params["logs_task"] == task_id
    assert page.app.text_input(key="log_task").value == task_id


async def test_logs_filter_by_subtask_and_trace_from_a_link(
    orchestrator: OrchestratorFactory, orchestrator_repositories: Repositories, dashboard: DashboardFactory
) -> None:
    audit, task = orchestrator_repositories.audit, "task_0123456789abcdef"
    trace, other_trace = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7a3ce929d0e0e4736"
    await audit.log_agent_activity("agent1", task, LogLevel.INFO, "first step", subtask_id="subtask_1", trace_id=trace)
    await audit.log_agent_activity("agent1", task, LogLevel.INFO, "second step", subtask_id="subtask_2", trace_id=trace)
    await audit.log_agent_activity("agent2", "task_other", LogLevel.INFO, "elsewhere", trace_id=other_trace)
    async with orchestrator({}) as api:
        page = dashboard(url_of(api))
        await page.open(logs_trace=trace)
        by_trace = messages(page)
        traces = cells(page.app, "Trace")
        by_subtask = await type_in(page, "log_subtask", "subtask_2")

    assert by_trace == ["second step", "first step"]
    assert traces == [trace, trace]
    assert by_subtask == ["second step"]
    assert dict(page.app.query_params) == {"logs_trace": trace, "logs_subtask": "subtask_2"}
