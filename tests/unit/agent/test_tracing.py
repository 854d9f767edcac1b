"""An agent takes an attempt's trace id from the signed offer, never from a header: every line it logs about the
attempt (accepting, running, each tool call, reporting) carries it, and so does the sealed result."""

from collections.abc import AsyncIterator

import httpx
import pytest
import structlog
from fastapi import FastAPI
from structlog.testing import capture_logs

from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.fleet_trust import FleetTrust
from shared.models import ReportedResult
from shared.redis_manager import RedisManager
from tests.polling import eventually
from tests.unit.agent.fixtures import ContextFactory, OfferFactory, call_tool, serving

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
MERGED = [structlog.contextvars.merge_contextvars]


async def events(logs: list[dict[str, object]]) -> set[object]:
    return {line["event"] for line in logs}


@pytest.fixture
async def agent(agent_settings: Settings, db: DatabaseManager) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serving(agent_settings) as served:
        yield served


async def test_the_attempt_s_lines_and_result_carry_the_offer_s_trace_id_not_a_header_s(
    agent: tuple[FastAPI, httpx.AsyncClient],
    agent_settings: Settings,
    agent_redis: RedisManager,
    offered_request: OfferFactory,
    db: DatabaseManager,
) -> None:
    _, client = agent
    offer = await offered_request(trace_id=TRACE_ID)
    headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "X-Request-ID": "spoofed"}

    with capture_logs(MERGED) as logs:
        answer = await client.post("/execute", json=offer.model_dump(mode="json"), headers=headers)
        assert answer.status_code == 200, answer.text
        delivery = await agent_redis.dequeue_result("test-consumer", 10.0)
        await eventually(lambda: events(logs), lambda events: "result_published" in events)

    assert delivery is not None
    result = delivery[1]
    assert isinstance(result, ReportedResult) and result.trace_id == TRACE_ID
    assert FleetTrust.from_settings(agent_settings).result_problem(result) is None  # sealed with it
    about_it = [line for line in logs if line.get("subtask_id") == offer.subtask.id]
    assert {"subtask_accepted", "result_published"} <= {line["event"] for line in about_it}
    assert {(line.get("trace_id"), line.get("task_id"), line.get("agent_id")) for line in about_it} == {
        (TRACE_ID, offer.task_id, agent_settings.agent_id)
    }
    assert "x-request-id" not in answer.headers
    # Its agent_logs rows (started, completed) carry the trace as well, and GET /logs finds them by it.
    audit = Repositories(db.pool, agent_settings.tenant_id).audit
    rows = await eventually(lambda: audit.list_agent_logs(trace_id=TRACE_ID), lambda rows: len(rows) == 2)
    assert {(row.subtask_id, row.trace_id) for row in rows} == {(offer.subtask.id, TRACE_ID)}


async def test_a_tool_call_s_lines_carry_the_attempt_s_trace_id(tool_context_factory: ContextFactory) -> None:
    context = tool_context_factory(trace_id=TRACE_ID)

    with capture_logs(MERGED) as logs:
        _, is_error = await call_tool(context, "read_file", path="missing.txt")

    assert is_error
    [called] = [line for line in logs if line["event"] == "tool_called"]
    assert (called["trace_id"], called["task_id"], called["subtask_id"]) == (TRACE_ID, "task_tools", "subtask_tools")
    assert called["agent_id"] == context.agent_id
    assert structlog.contextvars.get_contextvars() == {}
