"""The agent's API contract (seed 003 T007/T008): the committed contracts/agent-api.yaml is what the app serves,
its answers conform to it, and schemathesis finds no 5xx and no response outside it (stub executor)."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import claude_agent_sdk
import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agent.app import create_app
from shared.config import Settings
from shared.database import DatabaseManager
from shared.serving import serve_in_thread
from tests.polling import eventually
from tests.unit.agent.fixtures import (  # noqa: F401 - fixtures used by name
    OfferFactory,
    SettingsFactory,
    agent_settings_factory,
    agent_tenant,
    fleet_status_headers,
    serving,
)

CONTRACT = Path(__file__).parents[2] / "contracts" / "agent-api.yaml"
OPENMETRICS_ACCEPT = "application/openmetrics-text;version=1.0.0;q=0.6,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONTRACT.read_text())
    return loaded


@pytest.fixture(scope="module")
def contract_schema(contract: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_dict(contract)


@pytest.fixture
async def agent_client(
    agent_settings_factory: SettingsFactory,  # noqa: F811
    db: DatabaseManager,
) -> AsyncIterator[httpx.AsyncClient]:
    """A running agent (stub executor, one slot, subtasks that take a while) and a client for it."""
    agent = agent_settings_factory(agent_stub_delay_seconds=30, agent_concurrency=1, agent_shutdown_grace_seconds=0)
    async with serving(agent) as (_, client):
        yield client


def test_the_committed_contract_is_what_the_app_serves(contract: dict[str, Any], settings: Settings) -> None:
    served = create_app(settings).openapi()
    assert contract == served, "contracts/agent-api.yaml is stale: run python scripts/export_contracts.py"


async def test_health_answers_healthy_with_the_sdk_version(
    agent_client: httpx.AsyncClient, contract_schema: Any
) -> None:
    response = await agent_client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["is_available"] is True
    assert body["sdk_version"] == claude_agent_sdk.__version__
    assert set(body) == {"status", "agent_id", "is_available", "sdk_version"}  # open to all: no work, no load
    contract_schema["/health"]["GET"].validate_response(response)


async def test_status_answers_the_full_agent_status(
    agent_client: httpx.AsyncClient, contract_schema: Any, settings: Settings
) -> None:
    response = await agent_client.get("/status", headers=fleet_status_headers(settings))

    assert response.status_code == 200
    body = response.json()
    assert body["executor"] == "stub"
    assert 0 <= body["cpu_usage"] <= 100 and 0 < body["memory_usage"] <= 100
    contract_schema["/status"]["GET"].validate_response(response)


@pytest.mark.parametrize("authorization", [None, "Bearer not-the-token", "Basic dXNlcjpwYXNz"])
async def test_status_without_the_fleet_token_is_a_401(
    agent_client: httpx.AsyncClient, contract_schema: Any, authorization: str | None
) -> None:
    response = await agent_client.get("/status", headers={"Authorization": authorization} if authorization else {})

    assert response.status_code == 401
    assert "status token" in response.json()["error"]
    contract_schema["/status"]["GET"].validate_response(response)


async def test_execute_accepts_then_answers_busy(
    agent_client: httpx.AsyncClient,
    contract_schema: Any,
    offered_request: OfferFactory,
) -> None:
    operation = contract_schema["/execute"]["POST"]

    accepted = await agent_client.post("/execute", json=(await offered_request()).model_dump(mode="json"))
    busy = await agent_client.post("/execute", json=(await offered_request()).model_dump(mode="json"))

    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert busy.status_code == 503
    assert "busy" in busy.json()["error"]
    operation.validate_response(accepted)
    operation.validate_response(busy)
    assert (await agent_client.get("/health")).json()["is_available"] is False


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"task_id": "t1"},
        {"task_id": "t1", "subtask": {"task_id": "t2", "description": "x", "required_capabilities": ["DATA_ANALYSIS"]}},
        {"task_id": "t1", "subtask": {"task_id": "t1", "description": "x", "required_capabilities": ["TELEPATHY"]}},
        {"task_id": "t1", "subtask": {"task_id": "t1", "description": "x", "required_capabilities": []}},
    ],
)
async def test_a_malformed_request_is_a_400(
    agent_client: httpx.AsyncClient, contract_schema: Any, body: dict[str, Any]
) -> None:
    response = await agent_client.post("/execute", json=body)
    assert response.status_code == 400
    assert response.json()["error"]
    contract_schema["/execute"]["POST"].validate_response(response)


async def test_a_missing_capability_is_a_400(
    agent_settings_factory: SettingsFactory,  # noqa: F811
    db: DatabaseManager,
    offered_request: OfferFactory,
) -> None:
    agent = agent_settings_factory(agent_capabilities="WEB_SCRAPING,API_INTEGRATION")
    async with serving(agent) as (_, client):
        response = await client.post("/execute", json=(await offered_request()).model_dump(mode="json"))
    assert response.status_code == 400
    assert "DATA_ANALYSIS" in response.json()["error"]


async def test_metrics_need_no_key_and_hold_no_task_content(
    agent_settings_factory: SettingsFactory,  # noqa: F811
    db: DatabaseManager,
    offered_request: OfferFactory,
    contract_schema: Any,
) -> None:
    agent = agent_settings_factory(agent_concurrency=2, agent_stub_fail_pattern="refuse", agent_stub_delay_seconds=0)
    offers = [await offered_request("Summarise the secret figures"), await offered_request("Please refuse this")]
    async with serving(agent) as (_, client):
        idle = await client.get("/metrics")
        for offer in offers:
            assert (await client.post("/execute", json=offer.model_dump(mode="json"))).status_code == 200

        async def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            response = await client.get("/metrics", headers={"Accept": OPENMETRICS_ACCEPT})
            assert response.status_code == 200
            return {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in parse_openmetrics(response.text)
                for sample in family.samples
            }

        samples = await eventually(
            scraped, lambda found: ("fleet_agent_attempts_total", (("outcome", "failed"),)) in found
        )
        plain = await client.get("/metrics")

    assert idle.status_code == 200 and idle.headers["content-type"].startswith("text/plain; version=0.0.4")
    contract_schema["/metrics"]["GET"].validate_response(idle)
    assert 'fleet_agent_slots{state="free"} 2.0' in idle.text
    assert samples[("fleet_agent_attempts_total", (("outcome", "completed"),))] == 1
    assert samples[("fleet_agent_attempts_total", (("outcome", "failed"),))] == 1
    assert samples[("fleet_agent_attempt_duration_seconds_count", (("outcome", "completed"),))] == 1
    for offer in offers:  # counts only: no id, description or output of any task
        for content in (offer.task_id, offer.subtask.id, offer.subtask.description, "secret", "[stub]"):
            assert content not in plain.text


@pytest.fixture
def agent_url(agent_settings_factory: SettingsFactory, database: DatabaseManager) -> Iterator[str]:  # noqa: F811
    """The agent served over real HTTP for schemathesis (stub executor, two slots)."""
    agent = agent_settings_factory(agent_concurrency=2, agent_shutdown_grace_seconds=0)
    with serve_in_thread(create_app(agent), name="agent") as base_url:
        yield base_url


# Valid and invalid inputs, a small budget per operation; no example database is written to the working tree.
fuzzed_schema = schemathesis.openapi.from_path(
    CONTRACT,
    config=schemathesis.Config.from_dict({"generation": {"mode": "all", "max-examples": 30, "database": "none"}}),
)


@fuzzed_schema.parametrize()
# The agent fixture is started once per operation, not per case: intended.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_fuzzed_requests_get_no_5xx_and_no_answer_outside_the_contract(case: schemathesis.Case, agent_url: str) -> None:
    case.call_and_validate(base_url=agent_url, checks=CHECKS, timeout=30)
