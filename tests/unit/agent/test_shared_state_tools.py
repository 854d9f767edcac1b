"""Shared state is scoped to its task and expires; bad keys and values come back as tool errors."""

import json

from redis.asyncio import Redis

from agent.tools.shared_state import MAX_TTL_SECONDS
from shared.redis_manager import RedisManager
from tests.unit.agent.fixtures import ContextFactory, call_tool


async def test_a_value_is_visible_to_its_task_only(tool_context_factory: ContextFactory) -> None:
    writer = tool_context_factory(task_id="task_a", subtask_id="subtask_a1")
    reader_same_task = tool_context_factory(task_id="task_a", subtask_id="subtask_a2")
    reader_other_task = tool_context_factory(task_id="task_b", subtask_id="subtask_b1")

    stored, is_error = await call_tool(writer, "set_shared_state", key="best_quarter", value="Q4")
    same, _ = await call_tool(reader_same_task, "get_shared_state", key="best_quarter")
    other, _ = await call_tool(reader_other_task, "get_shared_state", key="best_quarter")

    assert not is_error, stored
    assert json.loads(same) == {"key": "best_quarter", "found": True, "value": "Q4"}
    assert json.loads(other) == {"key": "best_quarter", "found": False, "value": None}


async def test_values_expire_after_the_default_or_the_given_ttl(
    tool_context_factory: ContextFactory, agent_redis: RedisManager
) -> None:
    context = tool_context_factory()
    client: Redis = agent_redis.client
    default_ttl = context.settings.shared_state_ttl_seconds

    await call_tool(context, "set_shared_state", key="plain", value="1")
    await call_tool(context, "set_shared_state", key="short", value="2", ttl_seconds=30)

    plain_ttl = await client.ttl(agent_redis.keys.state(context.task_id, "plain"))
    short_ttl = await client.ttl(agent_redis.keys.state(context.task_id, "short"))
    assert 0 < plain_ttl <= default_ttl
    assert plain_ttl > 30
    assert 0 < short_ttl <= 30


async def test_keys_that_could_reach_other_keys_are_refused(tool_context_factory: ContextFactory) -> None:
    context = tool_context_factory()
    for key in ("a:b", "*", "x" * 129):
        set_text, set_error = await call_tool(context, "set_shared_state", key=key, value="v")
        get_text, get_error = await call_tool(context, "get_shared_state", key=key)
        assert set_error and get_error, key
        assert "invalid shared state key" in set_text and "invalid shared state key" in get_text


async def test_oversized_values_and_ttls_are_refused(tool_context_factory: ContextFactory) -> None:
    context = tool_context_factory()
    too_long, long_error = await call_tool(context, "set_shared_state", key="k", value="v" * 100_001)
    too_late, ttl_error = await call_tool(
        context, "set_shared_state", key="k", value="v", ttl_seconds=MAX_TTL_SECONDS + 1
    )
    missing, _ = await call_tool(context, "get_shared_state", key="k")

    assert long_error and "limit" in too_long
    assert ttl_error and "ttl_seconds" in too_late
    assert json.loads(missing)["found"] is False
