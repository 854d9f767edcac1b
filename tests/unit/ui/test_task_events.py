"""The task view follows the task's event stream: an event published on Redis shows in its timeline on the next run,
from a real orchestrator's GET /tasks/{id}/events."""

from typing import Any

from shared.redis import EventType
from shared.redis_manager import RedisManager
from tests.event_streams import publish, task_stream_ids
from tests.orchestrator_harness import OrchestratorFactory, plan, submit
from tests.unit.ui.conftest import DashboardFactory, cells, url_of
from ui.sections.task_events import TIMELINES

SCENARIOS: dict[str, Any] = {"plans": [{"match": "", "plan": plan(("only", "the only step", ["DATA_ANALYSIS"], []))}]}


async def test_the_task_view_shows_each_new_event_and_stops_following_when_the_task_ends(
    orchestrator: OrchestratorFactory, test_redis: RedisManager, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        task_id = await submit(api, "A task whose events the dashboard follows")
        await publish(test_redis, task_id, EventType.AGENT_STARTED)
        page = dashboard(url_of(api))
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
