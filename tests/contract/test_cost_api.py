"""The cost ledger's endpoints against a live orchestrator: a tenant sees its own spend only, every tenant's is an
operator's view, and bad windows are refused with a message a person can act on."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.api_keys import ApiKeyScope
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.ledger import CallPurpose, LedgerEntry
from shared.models import TokenUsage
from tests.api_keys import bearer, issue_key
from tests.contract.orchestrator_support import TWO_STEP_TASK, assert_error
from tests.orchestrator_harness import submit

USAGE = TokenUsage(input_tokens=1_000, output_tokens=100)


async def test_another_tenant_s_task_cost_answers_like_an_unknown_one(
    orchestrator_client: httpx.AsyncClient, db: DatabaseManager
) -> None:
    await Repositories(db.pool, "globex").ledger.record(
        [LedgerEntry(CallPurpose.ATTEMPT, "m", USAGE, 1.0, task_id="task_of_globex")]
    )
    await db.pool.execute(
        "INSERT INTO tasks (id, description, tenant_id) VALUES ('task_of_globex', 'Another tenant s task', 'globex')"
    )

    for task_id in ("task_of_globex", "task_nobody_has"):
        assert_error(await orchestrator_client.get(f"/tasks/{task_id}/cost"), 404, task_id)


async def test_a_new_task_s_cost_is_its_planning(orchestrator_client: httpx.AsyncClient) -> None:
    task_id = await submit(orchestrator_client, TWO_STEP_TASK)

    cost = (await orchestrator_client.get(f"/tasks/{task_id}/cost")).json()
    detail = (await orchestrator_client.get(f"/tasks/{task_id}")).json()

    assert [row["purpose"] for row in cost["model_calls"]] == ["decomposition"]
    assert cost["total_usd"] == cost["decomposition_usd"] == pytest.approx(detail["task"]["decomposition"]["cost_usd"])
    assert (cost["attempts_usd"], cost["subtasks"]) == (0.0, [])


async def test_spend_by_tenant_is_an_operator_s_view_of_every_tenant(
    orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    ours = Repositories(db.pool, orchestrator_settings.tenant_id)
    await ours.ledger.record([LedgerEntry(CallPurpose.ATTEMPT, "m", USAGE, 0.25)])
    await Repositories(db.pool, "globex").ledger.record([LedgerEntry(CallPurpose.ESTIMATE, "m", USAGE, 4.0)])
    client_headers = bearer(await issue_key(db, orchestrator_settings.tenant_id, ApiKeyScope.CLIENT))

    own = await orchestrator_client.get("/spend", headers=client_headers)
    refused = await orchestrator_client.get("/spend", params={"by": "tenant"}, headers=client_headers)
    every = await orchestrator_client.get("/spend", params={"by": "tenant", "days": 7})

    assert own.status_code == 200, own.text
    assert (own.json()["today_usd"], own.json()["total"]["calls"]) == (pytest.approx(0.25), 1)
    assert own.json()["since"] == datetime.now(UTC).date().isoformat() and len(own.json()["daily"]) == 1
    assert (own.json()["daily_budget_usd"], own.json()["left_today_usd"]) == (None, None), "no daily budget here"
    assert_error(refused, 403, "operator key")
    body = every.json()
    assert body["since"] == (datetime.now(UTC).date() - timedelta(days=6)).isoformat() and body["daily"] == []
    assert {tenant["tenant_id"]: tenant["today_usd"] for tenant in body["tenants"]} == {
        orchestrator_settings.tenant_id: pytest.approx(0.25),
        "globex": pytest.approx(4.0),
    }
    assert body["today_usd"] == pytest.approx(4.25)


@pytest.mark.parametrize(
    ("params", "words"),
    [({"days": 0}, ["days"]), ({"days": 91}, ["days"]), ({"by": "model"}, ["by", "day", "tenant"])],
)
async def test_a_window_outside_the_limits_is_refused(
    orchestrator_client: httpx.AsyncClient, params: dict[str, object], words: list[str]
) -> None:
    assert_error(await orchestrator_client.get("/spend", params=params), 400, *words)
