"""The task view follows the task's event stream: an event published on Redis shows in its timeline on the next run,
from a real orchestrator's GET /tasks/{id}/events."""

from typing import Any

from shared.redis import EventType
from shared.redis_manager import RedisManager
from tests.event_streams import StreamReader, following, publish, task_stream_ids
from tests.orchestrator_harness import OrchestratorFactory, plan, submit
from tests.polling import eventually
from tests.unit.ui.conftest import DashboardFactory, cells, url_of
from ui.sections.task_events import TIMELINES, events_key

SCENARIOS: dict[str, Any] = {"plans": [{"match": "", "plan": plan(("only", "the only step", ["DATA_ANALYSIS"], []))}]}


async def test_the_task_view_shows_each_new_event_and_stops_following_when_the_task_ends(
    orchestrator: OrchestratorFactory, test_redis: RedisManager, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        task_id = await submit(api, "A task whose events the dashboard follows")
        await publish(test_redis, task_id, EventType.AGENT_STARTED)
        page = dashboard(url_of(api))
        page.app.session_state[events_key(task_id)] = True  # the events are read once their expander is open
        await page.run()
        first = cells(page.app, "Event")

        [completed] = await publish(test_redis, task_id, EventType.AGENT_COMPLETED)
        await page.run()
        second = cells(page.app, "Event")
        kept = page.app.session_state[TIMELINES][task_id].last_event_id

        await publish(test_redis, task_id, EventType.TASK_COMPLETED)
        await page.run()
        every_event = await task_stream_ids(test_redis, task_id)

    assert first[-1] == "AGENT_STARTED"
    assert second == [*first, "AGENT_COMPLETED"]  # appended, nothing shown twice
    assert kept == completed
    timeline = page.app.session_state[TIMELINES][task_id]
    assert [event.event_id for event in timeline.events] == every_event
    assert timeline.ended
    assert cells(page.app, "Event")[-1] == "TASK_COMPLETED"


async def test_a_stream_the_orchestrator_refuses_is_shown_and_the_page_still_shows_the_task(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS, sse_max_clients=1) as api:
        task_id = await submit(api, "A task whose stream has no room")
        async with following(api, "/events") as holder:  # the only slot
            await eventually(lambda: _answered(holder), bool)
            page = dashboard(url_of(api))
            page.app.session_state[events_key(task_id)] = True
            await page.run()

    [warning] = [text for text in page.texts("warning") if "event stream is unavailable" in text]
    assert "SSE_MAX_CLIENTS" in warning
    assert f"`{task_id}`" in " ".join(page.texts("markdown"))  # the task itself is still shown


async def _answered(reader: StreamReader) -> bool:
    return reader.status_code is not None
