"""Declaring an agent failed, on the real PostgreSQL and Redis: exactly its running attempts are handed back and
queued again without it, the registry shows it failed to every orchestrator until it restarts, and repeating the
declaration changes nothing more. The agents here answer nothing (their address is a closed port): the agent's
side of the drain is tested with the agent (tests/unit/agent/test_drain.py) and end to end
(tests/integration/test_coordination_pool.py)."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.agent_client import AgentClient
from orchestrator.agent_failures import AgentFailures
from orchestrator.fleet_view import FleetView
from orchestrator.lifecycle import TaskLifecycle
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.errors import NotFoundError
from shared.models import AgentCapability, AgentState, AgentStatus, ResultStatus, SubTaskStatus, Task
from shared.redis_manager import RedisManager
from tests.factories import build_planned_task, current_result, run_attempt, subtask_id
from tests.fake_agent import ANY_PORT

STARTED = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
async def failures(lifecycle: TaskLifecycle, test_redis: RedisManager) -> AsyncIterator[AgentFailures]:
    agents = AgentClient()
    await agents.start()
    yield AgentFailures(lifecycle, test_redis, agents)
    await agents.close()


def unreachable_agent(agent_id: str, started_at: datetime | None = STARTED) -> AgentStatus:
    """A registry entry whose address answers nothing (port 9 is closed)."""
    values = {
        "agent_id": agent_id,
        "url": "http://127.0.0.1:9",
        "port": 8009,
        "is_available": True,
        "capabilities": [AgentCapability.DATA_ANALYSIS],
        "started_at": started_at,
    }
    return AgentStatus.model_validate(values, context={"agent_port_range": ANY_PORT})


async def submitted_and_running(
    lifecycle: TaskLifecycle, repos: Repositories, running_on: dict[str, str], waiting: int = 0
) -> Task:
    """A task with one subtask running on each agent of `running_on` (name -> agent id) and `waiting` queued ones."""
    names = [*running_on, *(f"waiting{n}" for n in range(waiting))]
    task = build_planned_task({name: [] for name in names})
    await lifecycle.submit(task)
    for name, agent_id in running_on.items():
        await run_attempt(repos, subtask_id(task, name), agent_id=agent_id)
    return task


async def test_only_the_failed_agents_running_attempts_are_handed_back_and_queued_without_it(
    failures: AgentFailures, lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    repos = db.repositories()
    await test_redis.register_agent(unreachable_agent("agent1"))
    await test_redis.register_agent(unreachable_agent("agent2"))
    task = await submitted_and_running(lifecycle, repos, {"a": "agent1", "b": "agent1", "c": "agent2"}, waiting=1)
    late = await current_result(repos, task, "a")  # what agent1 reports once it finishes

    answer = await failures.declare_failed("agent1")

    assert (answer.agent_id, answer.status, answer.attempts_handed_back) == ("agent1", "failed", 2)
    assert answer.agent_notified is False and "could not be reached" in answer.notification
    subtasks = {s.id.removeprefix(f"{task.id}_"): s for s in await repos.subtasks.list_for_task(task.id)}
    for name in ("a", "b"):
        handed_back = subtasks[name]
        assert (handed_back.status, handed_back.attempt_count) == (SubTaskStatus.QUEUED, 2)
        assert handed_back.failed_agent_ids == ["agent1"] and handed_back.assigned_agent is None
    assert (subtasks["c"].status, subtasks["c"].assigned_agent, subtasks["c"].attempt_count) == (
        SubTaskStatus.RUNNING,
        "agent2",
        1,
    )
    assert (subtasks["waiting0"].status, subtasks["waiting0"].attempt_count) == (SubTaskStatus.QUEUED, 1)
    assert {(subtasks[n].id, 2) for n in ("a", "b")} <= await test_redis.queued_task_items()
    # What agent1 reports of its attempt later is a superseded offer's result: it changes nothing.
    assert (await lifecycle.apply_results([late])).applied == []
    assert (await repos.subtasks.get_subtask(subtasks["a"].id)) == subtasks["a"]


async def test_the_registry_shows_it_failed_and_no_directory_offers_it_work(
    failures: AgentFailures,
    lifecycle: TaskLifecycle,
    test_redis: RedisManager,
    orchestrator_settings: Settings,
) -> None:
    await test_redis.register_agent(unreachable_agent("agent1"))
    await test_redis.register_agent(unreachable_agent("agent2"))
    await lifecycle.fleet.directory.refresh()
    another_orchestrator = FleetView.of(test_redis, orchestrator_settings.heartbeat_ttl_seconds).directory

    await failures.declare_failed("agent1")

    # This orchestrator leaves it out at once; another one at its next read of the registry.
    assert [agent.agent_id for agent in lifecycle.fleet.directory.agents] == ["agent2"]
    await another_orchestrator.refresh()
    assert [agent.agent_id for agent in another_orchestrator.agents] == ["agent2"]
    listed = {agent.agent_id: agent for agent in await test_redis.get_agents()}
    assert (listed["agent1"].state, listed["agent1"].is_available) == (AgentState.FAILED, False)
    assert listed["agent2"].state is AgentState.ACTIVE
    assert [agent.agent_id for agent in await test_redis.get_available_agents()] == ["agent2"]
    # Its heartbeats go on, and it stays failed.
    await test_redis.register_agent(unreachable_agent("agent1"))
    await lifecycle.fleet.directory.refresh()
    assert [agent.agent_id for agent in lifecycle.fleet.directory.agents] == ["agent2"]


async def test_the_declaration_ends_when_the_agent_restarts(
    failures: AgentFailures, lifecycle: TaskLifecycle, test_redis: RedisManager
) -> None:
    await test_redis.register_agent(unreachable_agent("agent1"))
    await failures.declare_failed("agent1")

    await test_redis.register_agent(unreachable_agent("agent1", started_at=STARTED + timedelta(minutes=5)))

    restarted = await test_redis.registry.get_agent("agent1")
    assert restarted is not None and restarted.state is AgentState.ACTIVE
    await lifecycle.fleet.directory.refresh()
    assert [agent.agent_id for agent in lifecycle.fleet.directory.agents] == ["agent1"]


async def test_declaring_it_again_hands_back_nothing_more(
    failures: AgentFailures, lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    repos = db.repositories()
    await test_redis.register_agent(unreachable_agent("agent1"))
    task = await submitted_and_running(lifecycle, repos, {"a": "agent1"})
    first = await failures.declare_failed("agent1")
    after_first = await repos.subtasks.list_for_task(task.id)

    again = await failures.declare_failed("agent1")

    assert (first.attempts_handed_back, again.attempts_handed_back) == (1, 0)
    assert again.status == "failed"
    assert await repos.subtasks.list_for_task(task.id) == after_first
    failures_recorded = await db.pool.fetchval(
        "SELECT count(*) FROM subtask_results WHERE task_id = $1 AND applied AND status = $2",
        task.id,
        ResultStatus.FAILED.value,
    )
    assert failures_recorded == 1


async def test_an_agent_gone_from_the_registry_with_running_attempts_is_failed_without_being_told(
    failures: AgentFailures, lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    repos = db.repositories()
    task = await submitted_and_running(lifecycle, repos, {"a": "agent7"})

    answer = await failures.declare_failed("agent7")

    assert (answer.attempts_handed_back, answer.agent_notified) == (1, False)
    assert "no live registry entry" in answer.notification
    handed_back = await repos.subtasks.get_subtask(subtask_id(task, "a"))
    assert handed_back is not None and handed_back.failed_agent_ids == ["agent7"]
    # The process that was running then, should it heartbeat again, is still the one declared failed.
    await test_redis.register_agent(unreachable_agent("agent7", started_at=datetime.now(UTC) - timedelta(hours=1)))
    returned = await test_redis.registry.get_agent("agent7")
    assert returned is not None and returned.state is AgentState.FAILED


async def test_an_unknown_agent_is_not_found_and_nothing_is_marked(
    failures: AgentFailures, lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    await submitted_and_running(lifecycle, db.repositories(), {"a": "agent1"})

    with pytest.raises(NotFoundError, match="no agent 'agent9'"):
        await failures.declare_failed("agent9")

    assert await test_redis.client.exists(test_redis.keys.failed_agents()) == 0
    await test_redis.register_agent(unreachable_agent("agent9"))
    joined = await test_redis.registry.get_agent("agent9")
    assert joined is not None and joined.state is AgentState.ACTIVE
