"""Every operation of the contract needs a key of the orchestrator's tenant; operator operations an operator's.

The operations come from the committed contract, so an endpoint added later is checked without anyone listing it.
"""

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.api_keys import ApiKeyScope
from shared.config import Settings
from shared.database import DatabaseManager
from tests.api_keys import bearer, issue_key
from tests.contract.orchestrator_support import assert_error

CONTRACT = yaml.safe_load((Path(__file__).resolve().parents[2] / "contracts" / "orchestrator-api.yaml").read_text())
OPEN_PATHS = {"/health"}
# Called by agents of the fleet, which sign the body with FLEET_SECRET instead of sending an API key.
FLEET_SIGNED_PATHS = {"/coordination/follow-up-subtasks"}
# A valid value for each path parameter; none of them exists, so a request that gets past the key check answers 404.
PATH_VALUES = {
    "task_id": "task_00000000000000000000000000000000",
    "subtask_id": "subtask_00000000000000000000000000000000",
    "agent_id": "agent_never_registered",
    "artifact_id": "artifact_00000000000000000000000000000000",
    "context_pack_id": "ctx_00000000000000000000000000000000",
    "webhook_id": "wh_never_registered",
}


def operations(*, role: str | None = None) -> list[Any]:
    """(method, path) of each operation that needs a key (with `role`, only those that need that role)."""
    found = []
    for path, methods in CONTRACT["paths"].items():
        for method, operation in methods.items():
            roles = [role for requirement in operation.get("security", []) for role in requirement.get("ApiKey", [])]
            if path in OPEN_PATHS | FLEET_SIGNED_PATHS or (role is not None and role not in roles):
                continue
            found.append(pytest.param(method.upper(), path.format(**PATH_VALUES), id=f"{method.upper()} {path}"))
    return found


def test_every_operation_but_health_declares_the_key_and_its_refusals() -> None:
    for path, methods in CONTRACT["paths"].items():
        for operation in methods.values():
            if path in OPEN_PATHS:
                assert "security" not in operation
            elif path in FLEET_SIGNED_PATHS:
                assert operation["security"] == [{"FleetSignature": []}] and "401" in operation["responses"]
            else:
                assert [set(requirement) for requirement in operation["security"]] == [{"ApiKey"}]
                assert {"401", "403"} <= set(operation["responses"])
    assert CONTRACT["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": CONTRACT["components"]["securitySchemes"]["ApiKey"]["description"],
    }


@pytest.mark.parametrize(("method", "path"), operations())
@pytest.mark.parametrize("credentials", ["none", "unknown", "not-bearer"])
async def test_an_operation_without_a_valid_key_answers_401_saying_how_to_get_one(
    method: str, path: str, credentials: str, orchestrator_url: str, db: DatabaseManager
) -> None:
    headers = {
        "none": {},
        "unknown": bearer("mats_" + uuid.uuid4().hex),
        "not-bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
    }[credentials]
    async with httpx.AsyncClient(base_url=orchestrator_url, timeout=30) as client:
        response = await client.request(method, path, headers=headers)

    assert_error(response, 401, "python -m orchestrator api-keys create")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await db.pool.fetchval("SELECT count(*) FROM tasks") == 0


@pytest.mark.parametrize(("method", "path"), operations())
async def test_an_operation_with_another_tenants_key_answers_403(
    method: str, path: str, orchestrator_url: str, db: DatabaseManager
) -> None:
    other_tenants_key = await issue_key(db, f"other-{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient(base_url=orchestrator_url, timeout=30) as client:
        response = await client.request(method, path, headers=bearer(other_tenants_key))

    assert_error(response, 403, "another tenant")


@pytest.mark.parametrize(("method", "path"), operations(role=ApiKeyScope.OPERATOR.value))
async def test_an_operator_operation_with_a_client_key_answers_403(
    method: str, path: str, orchestrator_url: str, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    client_key = await issue_key(db, orchestrator_settings.tenant_id, ApiKeyScope.CLIENT)
    operator_key = await issue_key(db, orchestrator_settings.tenant_id, ApiKeyScope.OPERATOR)
    async with httpx.AsyncClient(base_url=orchestrator_url, timeout=30) as client:
        refused = await client.request(method, path, headers=bearer(client_key))
        allowed = await client.request(method, path, headers=bearer(operator_key))

    assert_error(refused, 403, "operator key")
    # Past the key check, whatever the operation then answers without a body (400), for an id that does not exist
    # (404), or where the deployment cannot start agents (409).
    assert allowed.status_code not in (401, 403), allowed.text


def test_there_are_operator_operations_to_check() -> None:
    """The parametrized test above would pass vacuously on an empty list."""
    assert {param.id for param in operations(role="operator")} == {
        "GET /agents",
        "POST /agents",
        "GET /agents/available",
        "GET /isolation-report",
        "GET /metrics",
        "POST /agents/{agent_id}/fail",
        "POST /pool/initialize",
        "GET /pool",
        "DELETE /pool",
        "POST /webhooks",
        "GET /webhooks",
        "DELETE /webhooks/{webhook_id}",
        "DELETE /tasks/{task_id}",
    }


async def test_a_client_key_submits_reads_lists_and_cancels(
    orchestrator_url: str, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    key = await issue_key(db, orchestrator_settings.tenant_id, ApiKeyScope.CLIENT)
    async with httpx.AsyncClient(base_url=orchestrator_url, headers=bearer(key), timeout=30) as client:
        created = await client.post("/tasks", params={"description": "Summarise last week's support tickets"})
        assert created.status_code == 200, created.text
        task_id = created.json()["task_id"]
        for path in (f"/tasks/{task_id}", "/tasks", f"/tasks/{task_id}/tool-calls", f"/logs?task_id={task_id}"):
            assert (await client.get(path)).status_code == 200, path
        assert (await client.post(f"/tasks/{task_id}/cancel")).status_code == 200


async def test_a_revoked_key_is_refused_from_its_next_request(
    orchestrator_url: str, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    record, key = await db.repositories().api_keys.create(
        orchestrator_settings.tenant_id, "soon revoked", ApiKeyScope.CLIENT
    )
    async with httpx.AsyncClient(base_url=orchestrator_url, headers=bearer(key), timeout=30) as client:
        assert (await client.get("/tasks")).status_code == 200
        assert await db.repositories().api_keys.revoke(record.id) is not None
        response = await client.get("/tasks")

    assert_error(response, 401, "unknown or revoked")


async def test_health_and_the_openapi_documents_need_no_key(orchestrator_url: str) -> None:
    async with httpx.AsyncClient(base_url=orchestrator_url, timeout=30) as client:
        for path in ("/health", "/openapi.json", "/docs", "/redoc"):
            assert (await client.get(path)).status_code == 200, path
