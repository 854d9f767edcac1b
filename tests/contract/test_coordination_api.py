"""Contract of the coordination pool's endpoints (seed 004): what each answers, in the committed contract's shapes."""

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis

from shared.api_keys import ApiKeyScope
from shared.config import Settings
from shared.database import DatabaseManager
from shared.models import AgentCapability, AgentStatus
from shared.redis_manager import RedisManager
from tests.api_keys import bearer, issue_key
from tests.contract.orchestrator_support import assert_error

CONTRACT = Path(__file__).resolve().parents[2] / "contracts" / "orchestrator-api.yaml"


@pytest.fixture(scope="module")
def contract() -> Any:
    return schemathesis.openapi.from_path(CONTRACT)


# --- declaring an agent failed ---


@pytest.fixture
async def fail_agent_id(orchestrator_redis_manager: RedisManager) -> AsyncIterator[str]:
    """An agent id of this test alone (the orchestrator is shared), and its declaration removed afterwards."""
    agent_id = f"agent-{uuid.uuid4().hex[:8]}"
    yield agent_id
    await orchestrator_redis_manager.client.hdel(orchestrator_redis_manager.keys.failed_agents(), agent_id)


async def test_fail_answers_what_it_did_and_the_registry_shows_the_agent_failed(
    orchestrator_client: httpx.AsyncClient,
    orchestrator_redis_manager: RedisManager,
    orchestrator_agent_status: Callable[..., AgentStatus],
    fail_agent_id: str,
    contract: Any,
) -> None:
    await orchestrator_redis_manager.register_agent(
        orchestrator_agent_status(fail_agent_id, AgentCapability.DATA_ANALYSIS)  # its address answers nothing
    )

    response = await orchestrator_client.post(f"/agents/{fail_agent_id}/fail")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"agent_id", "status", "attempts_handed_back", "agent_notified", "notification"}
    assert (body["agent_id"], body["status"], body["attempts_handed_back"], body["agent_notified"]) == (
        fail_agent_id,
        "failed",
        0,
        False,
    )
    assert "could not be reached" in body["notification"]
    contract["/agents/{agent_id}/fail"]["POST"].validate_response(response)
    listed = {agent["agent_id"]: agent for agent in (await orchestrator_client.get("/agents")).json()["agents"]}
    assert (listed[fail_agent_id]["state"], listed[fail_agent_id]["is_available"]) == ("failed", False)
    available = (await orchestrator_client.get("/agents/available")).json()["available_agents"]
    assert fail_agent_id not in {agent["agent_id"] for agent in available}
    again = await orchestrator_client.post(f"/agents/{fail_agent_id}/fail")
    assert (again.status_code, again.json()["attempts_handed_back"]) == (200, 0)


async def test_fail_of_an_unknown_agent_is_a_404_saying_so(
    orchestrator_client: httpx.AsyncClient, fail_agent_id: str, contract: Any
) -> None:
    response = await orchestrator_client.post(f"/agents/{fail_agent_id}/fail")

    assert_error(response, 404, f"no agent '{fail_agent_id}'", "runs no subtask")
    contract["/agents/{agent_id}/fail"]["POST"].validate_response(response)


async def test_fail_of_an_id_no_agent_can_have_is_a_400(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.post("/agents/agent%3Aone/fail")

    assert_error(response, 400, "agent_id")


@pytest.mark.parametrize("scope", [None, ApiKeyScope.CLIENT])
async def test_fail_needs_an_operator_key(
    orchestrator_url: str,
    orchestrator_settings: Settings,
    orchestrator_redis_manager: RedisManager,
    orchestrator_agent_status: Callable[..., AgentStatus],
    db: DatabaseManager,
    fail_agent_id: str,
    scope: ApiKeyScope | None,
) -> None:
    await orchestrator_redis_manager.register_agent(
        orchestrator_agent_status(fail_agent_id, AgentCapability.DATA_ANALYSIS)
    )
    headers = bearer(await issue_key(db, orchestrator_settings.tenant_id, scope)) if scope else {}
    async with httpx.AsyncClient(base_url=orchestrator_url, headers=headers, timeout=30) as client:
        response = await client.post(f"/agents/{fail_agent_id}/fail")

    expected: dict[str, tuple[int, str]] = {"none": (401, "API key"), "client": (403, "operator key")}
    status_code, words = expected[scope.value if scope else "none"]
    assert_error(response, status_code, words)
    agent = await orchestrator_redis_manager.registry.get_agent(fail_agent_id)
    assert agent is not None and agent.state.value == "active"
