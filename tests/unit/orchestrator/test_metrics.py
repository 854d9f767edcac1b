"""What the orchestrator's metrics count as events happen: store outages once per outage, results by status and
reason, and the scrape-time gauges from the state handed to them."""

import asyncio

import redis.exceptions
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.metrics import OrchestratorMetrics, StoredState
from shared.loop_service import LoopService
from shared.models import AgentCapability, AgentState, AgentStatus, ResultStatus, SubTaskResult, TokenUsage
from shared.prometheus import MODEL_LABELS_MAX, OTHER_MODELS

CUT = redis.exceptions.ConnectionError("Connection refused")


class FailingLoop(LoopService):
    """A loop whose store is away for its first `failures` iterations."""

    def __init__(self, failures: int) -> None:
        super().__init__("failing")
        self.failures = failures
        self.iterations = 0

    async def run_once(self) -> None:
        self.iterations += 1
        if self.iterations > self.failures:
            self.stop()
            return
        raise CUT

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)  # the back-off is not what this test is about


def sample(metrics: OrchestratorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_an_outage_several_loops_notice_is_counted_once_by_store() -> None:
    metrics = OrchestratorMetrics()
    loops = [FailingLoop(3), FailingLoop(2)]
    for loop in loops:
        loop.report_outages_to(metrics.store_outage)

    await asyncio.gather(*(loop.start() for loop in loops))
    metrics.store_outage("PostgreSQL")

    assert sample(metrics, "fleet_store_outages_total", store="redis") == 1
    assert sample(metrics, "fleet_store_outages_total", store="postgresql") == 1


def result(status: ResultStatus, error: str | None = None, retryable: bool = False) -> SubTaskResult:
    return SubTaskResult(
        subtask_id="s1",
        task_id="t1",
        agent_id="agent1",
        attempt=1,
        status=status,
        output="done" if status is ResultStatus.COMPLETED else None,
        error=error,
        retryable=retryable,
        execution_time=2.0,
        token_usage=TokenUsage(input_tokens=10, output_tokens=4),
        cost_usd=0.5,
    )


def test_applied_results_count_by_status_and_reason() -> None:
    metrics = OrchestratorMetrics()

    metrics.result_applied(result(ResultStatus.COMPLETED), retried=False)
    metrics.result_applied(result(ResultStatus.FAILED, "timed out after 300 s", True), retried=True)
    metrics.result_applied(result(ResultStatus.FAILED, "Claude API error 400: bad"), retried=False)

    assert sample(metrics, "fleet_results_applied_total", status="completed") == 1
    assert sample(metrics, "fleet_results_applied_total", status="failed") == 2
    assert sample(metrics, "fleet_retries_total", reason="timeout") == 1
    assert sample(metrics, "fleet_subtask_failures_total", reason="provider_error") == 1
    assert sample(metrics, "fleet_attempt_run_seconds_count", status="failed") == 2


def test_model_calls_count_tokens_and_dollars_by_model_and_tenant() -> None:
    metrics = OrchestratorMetrics()

    metrics.model_call("acme", "claude-haiku-5-5", TokenUsage(input_tokens=10, output_tokens=4), 0.5)
    metrics.model_call("acme", None, TokenUsage(output_tokens=8), 0.25)
    metrics.model_call("globex", None, TokenUsage(output_tokens=1), 0.0)

    assert sample(metrics, "fleet_tokens_total", model="claude-haiku-5-5", kind="input", tenant="acme") == 10
    assert sample(metrics, "fleet_tokens_total", model="unknown", kind="output", tenant="acme") == 8
    assert sample(metrics, "fleet_tokens_total", model="unknown", kind="output", tenant="globex") == 1
    assert sample(metrics, "fleet_cost_usd_total", model="unknown", tenant="acme") == 0.25


def agent(agent_id: str, slots: int, running: int, state: AgentState = AgentState.ACTIVE) -> AgentStatus:
    return AgentStatus.model_validate(
        {
            "agent_id": agent_id,
            "url": "http://agent:8001",
            "port": 8001,
            "is_available": running < slots,
            "current_tasks": [f"subtask{n}" for n in range(running)],
            "capabilities": [AgentCapability.DATA_ANALYSIS],
            "slots": slots,
            "state": state,
        }
    )


def test_the_scrape_reports_the_state_it_is_handed_with_every_status() -> None:
    metrics = OrchestratorMetrics()
    state = StoredState(
        subtasks_by_state={"queued": 3},
        queued_by_capability={"DATA_ANALYSIS": 3},
        dead_letters_by_queue={"agent_tasks": 0, "agent_results": 2},
        agents=[agent("agent1", 2, 1), agent("agent2", 1, 1), agent("agent3", 4, 0, AgentState.DRAINING)],
    )

    body, content_type = metrics.render(state, None)

    assert content_type.startswith("text/plain")
    samples = {
        (item.name, tuple(item.labels.values())): item.value
        for family in text_string_to_metric_families(body.decode())
        for item in family.samples
    }
    assert samples[("fleet_subtasks", ("queued",))] == 3
    assert samples[("fleet_subtasks", ("blocked",))] == 0  # every status, zeros included
    assert samples[("fleet_tasks", ("in_progress",))] == 0
    assert samples[("fleet_queue_depth", ("DATA_ANALYSIS",))] == 3
    assert samples[("fleet_dead_letters", ("agent_results",))] == 2
    # A draining agent's slots are no capacity.
    assert (samples[("fleet_registry_slots", ("busy",))], samples[("fleet_registry_slots", ("free",))]) == (2, 1)
    assert samples[("fleet_registry_agents", ())] == 2


def test_model_names_from_results_cannot_grow_the_labels_without_bound() -> None:
    # The model is whatever an agent's result says: a misconfigured or hostile agent could name a new one each time.
    metrics = OrchestratorMetrics()

    for number in range(1_000):
        metrics.model_call("acme", f"model-{number}", TokenUsage(input_tokens=10), 0.0)

    tokens = [
        sample
        for family in text_string_to_metric_families(metrics.render(StoredState(), None)[0].decode())
        for sample in family.samples
        if sample.name == "fleet_tokens_total" and sample.labels["kind"] == "input"
    ]
    assert len(tokens) <= MODEL_LABELS_MAX + 1
    assert sum(sample.value for sample in tokens) == 1_000 * 10  # every token still counted
    assert sample(metrics, "fleet_tokens_total", model="model-0", kind="input", tenant="acme") == 10
    expected_other = (1_000 - MODEL_LABELS_MAX) * 10
    assert sample(metrics, "fleet_tokens_total", model=OTHER_MODELS, kind="input", tenant="acme") == expected_other
