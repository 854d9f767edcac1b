"""Why queued subtasks wait, as the lifecycle records it: once per change, never once per matching round."""

from collections.abc import Mapping, Sequence
from typing import Any

from structlog.testing import capture_logs

from orchestrator.lifecycle import TaskLifecycle
from orchestrator.waiting_reasons import WaitingReasons
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.models import QueuedSubtask, StatusReason
from tests.factories import build_task
from tests.network import link_to

NO_SCRAPER = StatusReason(code="no_live_agent", message="waiting: no live agent with WEB_SCRAPING")
DEPENDENCY_DOWN = StatusReason(
    code="dependency_unavailable", message="waiting: DISCOVERY needs x, which does not answer"
)


async def queued_item(lifecycle: TaskLifecycle) -> QueuedSubtask:
    [queued] = await lifecycle.submit(build_task(subtasks=1))
    return QueuedSubtask.for_subtask(queued)


async def stored_reason(repos: Repositories, item: QueuedSubtask) -> StatusReason | None:
    subtask = await repos.subtasks.get_subtask(item.subtask_id)
    assert subtask is not None
    return subtask.status_reason


async def note(lifecycle: TaskLifecycle, item: QueuedSubtask, reason: StatusReason | None) -> None:
    lifecycle.note_waiting([(item, reason)])
    await lifecycle.reasons_written()


def events(logs: Sequence[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    return [(entry["event"], entry.get("code")) for entry in logs if entry["event"].startswith("subtask_")]


async def test_a_reason_is_written_and_logged_once_however_many_rounds_find_it(
    lifecycle: TaskLifecycle, db: DatabaseManager, orchestrator_repositories: Repositories
) -> None:
    item = await queued_item(lifecycle)
    with capture_logs() as logs:
        await note(lifecycle, item, NO_SCRAPER)
        assert await stored_reason(orchestrator_repositories, item) == NO_SCRAPER
        # Cleared behind the lifecycle's back: had the next rounds written again, the reason would be back.
        await db.pool.execute("UPDATE subtasks SET status_reason = NULL WHERE id = $1", item.subtask_id)
        for _ in range(3):
            await note(lifecycle, item, NO_SCRAPER)

        assert await stored_reason(orchestrator_repositories, item) is None
        assert events(logs) == [("subtask_waiting", "no_live_agent")]


async def test_a_changed_reason_is_written_and_a_lifted_one_cleared(
    lifecycle: TaskLifecycle, orchestrator_repositories: Repositories
) -> None:
    item = await queued_item(lifecycle)
    with capture_logs() as logs:
        await note(lifecycle, item, NO_SCRAPER)
        await note(lifecycle, item, DEPENDENCY_DOWN)
        assert await stored_reason(orchestrator_repositories, item) == DEPENDENCY_DOWN

        await note(lifecycle, item, None)
        await note(lifecycle, item, None)

    assert await stored_reason(orchestrator_repositories, item) is None
    assert events(logs) == [
        ("subtask_waiting", "no_live_agent"),
        ("subtask_waiting", "dependency_unavailable"),
        ("subtask_resumed", None),
    ]


async def test_an_attempt_that_is_no_longer_queued_gets_no_reason(
    lifecycle: TaskLifecycle, orchestrator_repositories: Repositories
) -> None:
    item = await queued_item(lifecycle)
    [claimed] = await lifecycle.claim([(item.subtask_id, item.attempt, "agent1")])

    await note(lifecycle, item, NO_SCRAPER)  # a round that saw the item before the claim

    assert claimed.subtask.status_reason is None
    assert await stored_reason(orchestrator_repositories, item) is None


async def test_a_reason_postgresql_could_not_take_is_written_with_a_later_round(
    orchestrator_settings: Settings, lifecycle: TaskLifecycle, orchestrator_repositories: Repositories
) -> None:
    item = await queued_item(lifecycle)
    link, postgres_url = link_to(orchestrator_settings.postgres_url)
    cut_off = DatabaseManager(orchestrator_settings.model_copy(update={"postgres_url": postgres_url}))
    await cut_off.connect()
    reasons = WaitingReasons(cut_off)
    try:
        link.cut()
        with capture_logs() as logs:
            reasons.note([(item, NO_SCRAPER)])
            await reasons.written()
            link.restore()
            reasons.note([(item, NO_SCRAPER)])  # nothing new: only what could not be written goes again
            await reasons.written()
    finally:
        link.restore()
        await cut_off.disconnect()
        link.close()

    assert await stored_reason(orchestrator_repositories, item) == NO_SCRAPER
    assert [entry["event"] for entry in logs if entry["event"] != "status_reasons_written"] == [
        "subtask_waiting",  # once, though written twice
        "status_reasons_deferred",
    ]
