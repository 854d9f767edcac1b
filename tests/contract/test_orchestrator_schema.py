"""The committed contract equals what the orchestrator serves, and the live orchestrator keeps to it (schemathesis)."""

from pathlib import Path

import hypothesis
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.app import create_app
from shared.config import Settings
from shared.database import DatabaseManager
from tests.api_keys import bearer

CONTRACT = Path(__file__).resolve().parents[2] / "contracts" / "orchestrator-api.yaml"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Valid and invalid inputs through the examples, coverage and fuzzing phases; 30 fuzzed cases per operation keep the
# run to about 15 s (the case counts are printed in the terminal summary). No example database: a failure is
# reported with its reproduction, and nothing is written to the working tree.
SCHEMATHESIS_CONFIG = schemathesis.Config.from_dict(
    {"generation": {"mode": "all", "max-examples": 30, "database": "none"}}
)

# Not POST /webhooks: a fuzzed URL may name a real public host, which the orchestrator would then send events to.
# tests/integration/orchestrator/webhooks/test_api.py covers it, with a receiver on this machine.
# Not GET /events: it answers a valid request with a stream that never ends, which a case cannot read to its end; its
# contract is checked by tests/contract/test_orchestrator_events.py. GET /tasks/{task_id}/events stays in: the ids
# schemathesis makes name no task, so its streams are answered at once (404, 400).
schema = (
    schemathesis.openapi.from_path(CONTRACT, config=SCHEMATHESIS_CONFIG)
    .exclude(method="POST", path="/webhooks")
    .exclude(method="GET", path="/events")
)


def test_committed_contract_equals_the_served_openapi(settings: Settings) -> None:
    committed = yaml.safe_load(CONTRACT.read_text())

    served = create_app(settings).openapi()

    assert committed == served, (
        f"{CONTRACT.relative_to(CONTRACT.parents[1])} differs from the orchestrator's OpenAPI; "
        "run `python scripts/export_contracts.py` and commit the result"
    )


@schema.parametrize()
# `db` empties the tables once per operation, not per case: intended, so the health check about it is off.
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
def test_live_orchestrator_keeps_to_its_contract(
    case: schemathesis.Case,
    orchestrator_url: str,
    orchestrator_api_key: str,
    orchestrator_schemathesis_cases: dict[str, int],
    db: DatabaseManager,
) -> None:
    label = case.operation.label
    orchestrator_schemathesis_cases[label] = orchestrator_schemathesis_cases.get(label, 0) + 1

    case.call_and_validate(base_url=orchestrator_url, headers=bearer(orchestrator_api_key), checks=CHECKS, timeout=30)
