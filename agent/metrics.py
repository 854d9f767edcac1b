"""The agent's Prometheus metrics (`GET /metrics`, no key): its slots, its attempts and what they spent.

Counted as each attempt ends (an increment in memory); labels are bounded sets (outcome, model, token kind,
provider error kind, the agent's tenant, TENANT_ID), never a task's id, description or output: whoever reaches the
agent's port may read them. Dollars here are what the Claude Agent SDK reported; the orchestrator's counters are the
cost ledger's, priced by MODEL_PRICES.
Counters start at zero with each agent process; Prometheus's `rate()` and `increase()` handle the reset.
"""

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.failure_reasons import provider_error_in
from shared.models import ReportedResult, ResultStatus, SubTaskResult
from shared.prometheus import RUN_TIME_BUCKETS, BoundedLabels, count_tokens

PREFIX = "fleet_agent_"


class Slots(Protocol):
    """What the slot gauge reads (the subtask runner)."""

    @property
    def slots_busy(self) -> int: ...

    @property
    def slots_free(self) -> int: ...


class SlotCollector(Collector):
    def __init__(self) -> None:
        self.slots: Slots | None = None  # None until the agent serves

    def describe(self) -> Iterable[Metric]:
        return list(self.collect())

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(f"{PREFIX}slots", "This agent's work slots, busy or free", labels=["state"])
        gauge.add_metric(["busy"], self.slots.slots_busy if self.slots else 0)
        gauge.add_metric(["free"], self.slots.slots_free if self.slots else 0)
        yield gauge


def attempt_outcome(result: SubTaskResult) -> str:
    if result.status is ResultStatus.COMPLETED:
        return "completed"
    if result.provider_wait is not None:
        return "provider_wait"  # handed back to wait on the provider: no attempt spent
    return "failed_retryable" if result.retryable else "failed"


class AgentMetrics:
    """The registry of one agent app (not the client library's global one: several apps share a test process)."""

    def __init__(self, tenant_id: str) -> None:
        self.registry = CollectorRegistry()
        self._tenant = tenant_id  # an agent serves one tenant's fleet
        self._slots = SlotCollector()
        self.registry.register(self._slots)
        self.attempts = Counter(
            f"{PREFIX}attempts", "Attempts this agent ran, by outcome", ["outcome"], registry=self.registry
        )
        self.attempt_duration = Histogram(
            f"{PREFIX}attempt_duration_seconds",
            "How long attempts ran here, by outcome",
            ["outcome"],
            buckets=RUN_TIME_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            f"{PREFIX}tokens",
            "Model tokens attempts used, by model, kind and tenant",
            ["model", "kind", "tenant"],
            registry=self.registry,
        )
        self.cost = Counter(
            f"{PREFIX}cost_usd",
            "Cost of attempts in US dollars (as the SDK reported it), by model and tenant",
            ["model", "tenant"],
            registry=self.registry,
        )
        self.provider_errors = Counter(
            f"{PREFIX}provider_errors",
            "Attempts that ended on an error of the model's API, by kind",
            ["kind"],
            registry=self.registry,
        )
        self._models = BoundedLabels()

    def watch(self, slots: Slots) -> None:
        self._slots.slots = slots

    def attempt_finished(self, result: SubTaskResult) -> None:
        outcome = attempt_outcome(result)
        self.attempts.labels(outcome).inc()
        self.attempt_duration.labels(outcome).observe(result.execution_time)
        model = result.model if isinstance(result, ReportedResult) else None
        model_label = self._models.label(model)
        count_tokens(self.tokens, model_label, self._tenant, result.token_usage)
        if result.cost_usd:
            self.cost.labels(model_label, self._tenant).inc(result.cost_usd)
        error_kind = (
            result.provider_wait.kind
            if result.provider_wait is not None
            else provider_error_in(result.error)
            if result.status is ResultStatus.FAILED
            else None
        )
        if error_kind is not None:
            self.provider_errors.labels(error_kind).inc()
