"""Opening tasks: a click on a row or a `?task=` link shows the task and puts it in the URL; the list searches and
pages through every task, refreshing without losing what is watched."""

from typing import Any

from tests.orchestrator_harness import OrchestratorFactory, plan, submit
from tests.unit.ui.conftest import Dashboard, DashboardFactory, cells, url_of
from ui.navigation import task_link
from ui.sections.submit import DESCRIPTION
from ui.sections.tasks import PAGE, PAGE_SIZE, STATUS_FILTER, USER_FILTER

SCENARIOS: dict[str, Any] = {"plans": [{"match": "", "plan": plan(("s1", "the only step", ["DATA_ANALYSIS"], []))}]}


def watched_heading(page: Dashboard) -> str:
    [heading] = [text for text in page.texts("markdown") if text.startswith("#### ")]
    return heading


def click_row(page: Dashboard, row: int, generation: int = 0) -> None:
    """What a click on a row of the task table sends."""
    page.app.session_state[f"task_table_{generation}"] = {"selection": {"rows": [row], "columns": [], "cells": []}}


async def test_a_click_on_a_row_opens_that_task_and_a_later_rerun_keeps_it(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        older = await submit(api, "The task submitted first")
        newer = await submit(api, "The task submitted second")
        page = dashboard(url_of(api))
        await page.run()
        shown_first = watched_heading(page)
        click_row(page, 1)
        await page.run()
        clicked = watched_heading(page), page.app.query_params["task"]

        # The watched task changes status; a refused submission then reruns the whole page.
        assert (await api.post(f"/tasks/{older}/cancel")).status_code == 200
        page.app.text_area(key=DESCRIPTION).input("too short")
        page.app.button(key="submit_task").click()
        await page.run()

    assert shown_first.endswith(f"`{newer}`"), "without a link, the newest task is shown"
    assert clicked == (f"#### :material/hourglass_empty: pending · `{older}`", older)
    assert watched_heading(page) == f"#### :material/cancel: cancelled · `{older}`"
    assert page.app.query_params["task"] == older
    assert [error for error in page.texts("error") if "no task" in error] == []
    assert page.app.sidebar.error[0].value.startswith("Refused (HTTP 400)")


async def test_a_link_opens_a_task_the_list_does_not_show(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        linked = await submit(api, "A task someone sent a link to", user_id="ana")
        await submit(api, "A task of somebody else", user_id="bo")
        page = dashboard(url_of(api))
        page.app.query_params["task"] = linked
        await page.run()
        page.app.text_input(key=USER_FILTER).input("bo")
        await page.run()
        unknown = dashboard(url_of(api))
        await unknown.open(task="task_unknown")

    assert cells(page.app, "User", table_with="Created") == ["bo"]
    assert watched_heading(page).endswith(f"`{linked}`")
    assert any(error.startswith("Task task_unknown unavailable:") for error in unknown.texts("error"))


async def test_the_list_pages_through_every_task(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        created = [await submit(api, f"Task number {number} of the backlog") for number in range(PAGE_SIZE + 2)]
        page = dashboard(url_of(api))
        await page.run()
        first_page = cells(page.app, "ID")
        first_caption = [text for text in page.texts("caption") if text.startswith("Page ")]
        page.app.number_input(key=PAGE).set_value(2)
        await page.run()
        second_page = cells(page.app, "ID")
        page.app.selectbox(key=STATUS_FILTER).set_value("completed")
        await page.run()

    newest_first = [task_link(task_id) for task_id in reversed(created)]
    assert first_page == newest_first[:PAGE_SIZE]
    assert first_caption[0].startswith(f"Page 1 of 2 · 1 to {PAGE_SIZE} of {PAGE_SIZE + 2} task(s)")
    assert second_page == newest_first[PAGE_SIZE:]
    assert page.app.number_input(key=PAGE).value == 1, "a new filter starts at its first page"
    assert "No task matches." in " ".join(page.texts("info"))


async def test_the_list_says_how_long_tasks_are_kept(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    captions = {}
    for retention_days, said in [(7, "tasks are kept 7 day(s) after they end, then removed"), (0, "kept forever")]:
        async with orchestrator(SCENARIOS, retention_days=retention_days) as api:
            page = dashboard(url_of(api))
            await page.run()
        captions[said] = next(text for text in page.texts("caption") if text.startswith("Page "))

    assert all(said in caption for said, caption in captions.items()), captions
