"""GET /metrics for a Prometheus scrape: after real work through a live orchestrator (PostgreSQL, Redis, the
simulator, agents speaking the agent contract), the scrape parses with the client library's parsers and its figures
are PostgreSQL's and Redis's."""

from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from shared.api_keys import ApiKeyScope
from shared.database import DatabaseManager, Repositories
from shared.models import AgentCapability, ResultStatus, TokenUsage
from shared.redis_manager import RedisManager
from tests.api_keys import bearer, issue_key
from tests.fake_agent import result_for
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, submit, wait_for_request, wait_until_ended
from tests.polling import eventually

# What Prometheus (3.x) sends when it scrapes.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
OLDER_PROMETHEUS_ACCEPT = "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
MODEL = "claude-sonnet-5-5"
SCENARIOS: dict[str, Any] = {
    "plans": [{"match": "single step", "plan": plan(("s1", "the only step", ["DATA_ANALYSIS"], []))}]
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples_of(families: Iterable[Metric]) -> Samples:
    """Every sample by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(
        value
        for (sample_name, sample_labels), value in samples.items()
        if sample_name == name and set(labels.items()) <= set(sample_labels)
    )


async def scrape(client: httpx.AsyncClient, accept: str = PROMETHEUS_ACCEPT) -> httpx.Response:
    response = await client.get("/metrics", headers={"Accept": accept})
    assert response.status_code == 200, response.text
    return response


async def stored_figures(repositories: Repositories, db: DatabaseManager, tenant_id: str) -> dict[str, Any]:
    """What PostgreSQL holds for the tenant: subtasks by state, applied results by status, tokens and cost."""
    subtasks = await db.pool.fetch(
        "SELECT status, count(*) AS n FROM subtasks WHERE tenant_id = $1 GROUP BY status", tenant_id
    )
    results = await db.pool.fetch(
        """SELECT r.status, count(*) AS n, sum(r.input_tokens + r.output_tokens) AS tokens, sum(r.cost_usd) AS cost
           FROM subtask_results r JOIN tasks t ON t.id = r.task_id
           WHERE t.tenant_id = $1 AND r.applied GROUP BY r.status""",
        tenant_id,
    )
    decomposition = await db.pool.fetchrow(
        """SELECT coalesce(sum((decomposition->'token_usage'->>'input_tokens')::int
                              + (decomposition->'token_usage'->>'output_tokens')::int), 0) AS tokens,
                  coalesce(sum((decomposition->>'cost_usd')::float8), 0) AS cost
           FROM tasks WHERE tenant_id = $1""",
        tenant_id,
    )
    return {
        "subtasks": {row["status"]: row["n"] for row in subtasks},
        "results": {row["status"]: row["n"] for row in results},
        "result_tokens": sum(row["tokens"] for row in results),
        "cost": sum(row["cost"] for row in results),
        "decomposition_tokens": decomposition["tokens"],
        "decomposition_cost": decomposition["cost"],
    }


async def test_a_scrape_after_a_run_agrees_with_postgresql_and_redis(
    orchestrator: OrchestratorFactory,
    fleet: Fleet,
    orchestrator_repositories: Repositories,
    orchestrator_settings: Any,
    db: DatabaseManager,
    test_redis: RedisManager,
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS, slots=2)
    usage = TokenUsage(input_tokens=120, output_tokens=30, cache_read_input_tokens=7)
    async with orchestrator(SCENARIOS) as client:
        completed = await submit(client, "Do a single step of work")
        await wait_for_request(agent, "the only step")
        done = result_for(agent.requests_for("the only step")[0], "agent1")
        await fleet.report(done.model_copy(update={"token_usage": usage, "cost_usd": 0.25, "model": MODEL}))
        await wait_until_ended(client, completed)

        failed = await submit(client, "Do a single step of work, again")
        await wait_for_request(agent, "the only step", count=2)
        rate_limited = result_for(
            agent.requests_for("the only step")[1],
            "agent1",
            status=ResultStatus.FAILED,
            error="Claude API error 429: rate limited",
            retryable=True,
        )
        await fleet.report(rate_limited.model_copy(update={"model": MODEL}))
        await wait_for_request(agent, "the only step", count=3)  # the retry
        final = result_for(agent.requests_for("the only step")[2], "agent1", status=ResultStatus.FAILED)
        await fleet.report(final.model_copy(update={"error": "the role's max_turns limit was reached"}))
        await wait_until_ended(client, failed)

        for ordinal in ("third", "fourth", "fifth"):  # two run on agent1's two slots, one waits on the queue
            await submit(client, f"Do a single step of work, a {ordinal} time")
        await wait_for_request(agent, "the only step", count=5)
        await test_redis.result_queue.push("not a result")  # dead-lettered by the result processor

        async def settled() -> Samples:
            return samples_of(parse_openmetrics((await scrape(client)).text))

        samples = await eventually(
            settled,
            # Counters move just after the event the test waited for (a commit, an agent's answer): settled here.
            lambda found: (
                total(found, "fleet_registry_slots", state="busy") == 2
                and total(found, "fleet_dead_letters", queue="agent_results") == 1
                and total(found, "fleet_results_applied_total") == 3
                and total(found, "fleet_assignment_latency_seconds_count") == 5
            ),
        )
        openmetrics = await scrape(client)
        plain = await scrape(client, OLDER_PROMETHEUS_ACCEPT)
        stored = await stored_figures(orchestrator_repositories, db, orchestrator_settings.tenant_id)

    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    plain_samples = samples_of(parse_text(plain.text))
    # Scrape-time gauges are PostgreSQL's counts.
    for state in ("pending", "queued", "running", "completed", "failed", "blocked", "cancelled"):
        expected = stored["subtasks"].get(state, 0)
        assert total(samples, "fleet_subtasks", state=state) == expected, state
        assert total(plain_samples, "fleet_subtasks", state=state) == expected, state
    assert (total(samples, "fleet_subtasks", state="queued"), total(samples, "fleet_subtasks", state="running")) == (
        1,
        2,
    )
    assert total(samples, "fleet_queue_depth", capability="DATA_ANALYSIS") == 1
    assert total(samples, "fleet_tasks", state="completed") == total(samples, "fleet_tasks", state="failed") == 1
    assert (total(samples, "fleet_registry_slots", state="free"), total(samples, "fleet_registry_agents")) == (0, 1)
    # Counters agree with the results PostgreSQL applied.
    assert total(samples, "fleet_results_applied_total", status="completed") == stored["results"]["completed"] == 1
    assert total(samples, "fleet_results_applied_total", status="failed") == stored["results"]["failed"] == 2
    assert total(samples, "fleet_attempt_run_seconds_count") == 3
    assert total(samples, "fleet_retries_total", reason="rate_limited") == 1
    assert total(samples, "fleet_subtask_failures_total", reason="limit_exceeded") == 1
    assert total(samples, "fleet_subtask_failures_total") == stored["subtasks"]["failed"] == 1
    # Dollars are the cost ledger's, priced by MODEL_PRICES, not what the agent's SDK said (0.25).
    assert stored["cost"] == pytest.approx(orchestrator_settings.model_prices[MODEL].cost_usd(usage))
    assert stored["decomposition_cost"] > 0
    assert total(samples, "fleet_cost_usd_total") == pytest.approx(stored["cost"] + stored["decomposition_cost"])
    tenant = orchestrator_settings.tenant_id
    assert total(samples, "fleet_cost_usd_total", tenant=tenant) == total(samples, "fleet_cost_usd_total")
    assert total(samples, "fleet_tokens_total", model=MODEL, kind="cache_read", tenant=tenant) == 7
    tokens = total(samples, "fleet_tokens_total", kind="input") + total(samples, "fleet_tokens_total", kind="output")
    assert stored["decomposition_tokens"] > 0
    assert tokens == stored["result_tokens"] + stored["decomposition_tokens"]
    assert total(samples, "fleet_assignment_latency_seconds_count") == 5  # every attempt an agent accepted
    assert total(samples, "fleet_store_outages_total") == total(samples, "fleet_provider_errors_total") == 0


async def test_the_prometheus_form_needs_an_operator_key_and_the_json_form_stays(
    orchestrator: OrchestratorFactory, orchestrator_settings: Any, db: DatabaseManager
) -> None:
    client_key = await issue_key(db, orchestrator_settings.tenant_id, ApiKeyScope.CLIENT)
    async with orchestrator(SCENARIOS) as client:
        as_client = await client.get("/metrics", headers={**bearer(client_key), "Accept": PROMETHEUS_ACCEPT})
        anonymous = await client.get("/metrics", headers={"Authorization": "", "Accept": PROMETHEUS_ACCEPT})
        as_json = {accept: await client.get("/metrics", headers={"Accept": accept}) for accept in ("*/*", "")}
        browser = await client.get("/metrics", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})

    assert as_client.status_code == 403 and "operator key" in as_client.json()["error"]
    assert anonymous.status_code == 401
    for response in [*as_json.values(), browser]:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert "tasks_pending" in response.json()
