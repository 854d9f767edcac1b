"""The orchestrator's Prometheus metrics (`GET /metrics` with a scraper's `Accept`), in a registry of its own.

Two kinds. Events are counted where they happen (results applied, retries, failures, tokens, cost, provider errors,
store outages, assignment latency, attempt run time): an increment in memory on the hot path, never extra I/O; they
start at zero with each process, as Prometheus expects of counters. What mirrors stored state (tasks and subtasks by
state, queue depth per capability, dead letters, agent slots) is read at scrape time instead: the route fetches a
`StoredState` (one PostgreSQL statement, one Redis round trip, the registry as last read) and the collector reports
it, so those figures are the database's, whichever orchestrator process is scraped.

Labels are bounded sets: states, statuses, capabilities, queue and store names, model and tenant names (the first
MODEL_LABELS_MAX / TENANT_LABELS_MAX named; later ones as `other`), and the reason codes of
shared/failure_reasons.py; never task or subtask ids. Tokens and dollars are counted from the cost ledger's rows as
they are recorded (orchestrator/cost_ledger.py): planning calls and every attempt's turns, applied or not.
"""

import asyncio
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.database import DatabaseManager
from shared.failure_reasons import failure_reason
from shared.loop_service import OUTAGE_SETTLE_SECONDS
from shared.models import AgentState, AgentStatus, ResultStatus, SubTaskResult, SubTaskStatus, TaskStatus, TokenUsage
from shared.prometheus import RUN_TIME_BUCKETS, TENANT_LABELS_MAX, BoundedLabels, count_tokens, exposition
from shared.redis_manager import RedisManager

PREFIX = "fleet_"
# The `reason` of a retry an operator asked for (POST /tasks/{id}/retry), beside the failure reasons of the others.
OPERATOR_RETRY = "operator"
# Waits for an agent: from a few milliseconds (a free agent) to minutes (a full queue).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


@dataclass(frozen=True)
class StoredState:
    """What the scrape-time gauges report, read just before a scrape."""

    tasks_by_state: dict[str, int] = field(default_factory=dict)
    subtasks_by_state: dict[str, int] = field(default_factory=dict)
    queued_by_capability: dict[str, int] = field(default_factory=dict)
    dead_letters_by_queue: dict[str, int] = field(default_factory=dict)
    waiting_on_provider: dict[str, int] = field(default_factory=dict)  # by work: subtask, plan
    agents: Sequence[AgentStatus] = ()  # the registry as last read: agents taking work


async def read_stored_state(db: DatabaseManager, redis: RedisManager, agents: Sequence[AgentStatus]) -> StoredState:
    """The scrape-time figures: one PostgreSQL statement and one Redis round trip, side by side; `agents` is the
    registry as the orchestrator last read it (no I/O)."""
    counts, dead_letters = await asyncio.gather(db.repositories().metrics.scrape_counts(), redis.dead_letter_counts())
    return StoredState(
        tasks_by_state=counts.tasks_by_state,
        subtasks_by_state=counts.subtasks_by_state,
        queued_by_capability=counts.queued_by_capability,
        dead_letters_by_queue=dead_letters,
        waiting_on_provider=counts.waiting_on_provider,
        agents=list(agents),
    )


class StoredStateCollector(Collector):
    """Reports the StoredState last handed to it; the route hands it one per scrape, just before the scrape."""

    def __init__(self) -> None:
        self.state = StoredState()

    def describe(self) -> Iterable[Metric]:
        return list(self.collect())

    def collect(self) -> Iterator[Metric]:
        state = self.state
        # Every state is reported, zero included: a series that vanishes reads as "no data", not as none.
        yield _gauge("tasks", "Tasks by state", "state", _all(TaskStatus, state.tasks_by_state))
        yield _gauge("subtasks", "Subtasks by state", "state", _all(SubTaskStatus, state.subtasks_by_state))
        yield _gauge(
            "queue_depth",
            "Queued subtasks needing each capability (one needing two counts under both)",
            "capability",
            state.queued_by_capability,
        )
        yield _gauge("dead_letters", "Items set aside as unprocessable, by queue", "queue", state.dead_letters_by_queue)
        yield _gauge(
            "waiting_on_provider",
            "Work waiting on the model's provider: queued subtasks before their next try, tasks before their plan",
            "work",
            {"subtask": 0, "plan": 0, **state.waiting_on_provider},
        )
        taking_work = [agent for agent in state.agents if agent.state is AgentState.ACTIVE]
        busy = sum(min(len(agent.current_tasks), agent.slots) for agent in taking_work)
        free = sum(agent.slots for agent in taking_work) - busy
        # Not `fleet_agent_slots`: that is each agent's own gauge, which Prometheus scrapes from the agents.
        yield _gauge(
            "registry_slots",
            "Work slots of the agents taking work, by the registry",
            "state",
            {"busy": busy, "free": free},
        )
        live = GaugeMetricFamily(f"{PREFIX}registry_agents", "Agents registered and taking work")
        live.add_metric([], len(taking_work))
        yield live


def _all(states: Iterable[TaskStatus] | Iterable[SubTaskStatus], counts: dict[str, int]) -> dict[str, int]:
    return {state.value: counts.get(state.value, 0) for state in states}


def _gauge(name: str, documentation: str, label: str, values: dict[str, int]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(f"{PREFIX}{name}", documentation, labels=[label])
    for value_label, value in sorted(values.items()):
        gauge.add_metric([value_label], value)
    return gauge


class OrchestratorMetrics:
    """The registry of one orchestrator app and the counters its parts increment."""

    def __init__(self) -> None:
        # Not the client library's global registry: each app (several in one test process) counts for itself.
        self.registry = CollectorRegistry()
        self._stored = StoredStateCollector()
        self.registry.register(self._stored)
        self.assignment_latency = Histogram(
            f"{PREFIX}assignment_latency_seconds",
            "From a subtask attempt being queued to an agent accepting it",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.attempt_run_time = Histogram(
            f"{PREFIX}attempt_run_seconds",
            "How long applied attempts ran on their agent, by result status",
            ["status"],
            buckets=RUN_TIME_BUCKETS,
            registry=self.registry,
        )
        self.results_applied = self._counter("results_applied", "Results applied to their subtask", ["status"])
        self.results_ignored = self._counter("results_ignored", "Late or duplicate results, recorded but not applied")
        self.results_rejected = self._counter(
            "results_rejected",
            "Results refused for good (another tenant's, unsigned, or refused by PostgreSQL), dead-lettered",
        )
        self.retries = self._counter("retries", "Failed attempts queued again, by reason", ["reason"])
        self.failures = self._counter("subtask_failures", "Subtasks that failed for good, by reason", ["reason"])
        self.tokens = self._counter(
            "tokens",
            "Model tokens of every call in the cost ledger (planning, attempts applied or not), by model, kind, tenant",
            ["model", "kind", "tenant"],
        )
        self.cost = self._counter(
            "cost_usd", "US dollars of every call in the cost ledger, by model and tenant", ["model", "tenant"]
        )
        self.provider_errors = self._counter(
            "provider_errors", "Errors of the model's API in decomposition, by kind", ["kind"]
        )
        self.provider_waits = self._counter(
            "provider_waits",
            "Attempts and plannings the provider could not serve, queued to wait instead of failing, by kind",
            ["kind"],
        )
        self.pauses = self._counter(
            "task_pauses", "Tasks paused on a budget, by reason (budget_exhausted, tenant_daily_budget)", ["reason"]
        )
        self.store_outages = self._counter("store_outages", "Outages of PostgreSQL or Redis noticed", ["store"])
        self._models = BoundedLabels()
        self._tenants = BoundedLabels(TENANT_LABELS_MAX)
        self._outage_noted_at: dict[str, float] = {}

    def _counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(f"{PREFIX}{name}", documentation, list(labels), registry=self.registry)

    def render(self, state: StoredState, media_range: str | None) -> tuple[bytes, str]:
        """Every metric, the scrape-time ones from `state`, in the format asked for; synchronous, so no other scrape
        can hand the collector its state in between."""
        self._stored.state = state
        return exposition(self.registry, media_range)

    # --- events -----------------------------------------------------------------------------------------------------

    def result_applied(self, result: SubTaskResult, retried: bool) -> None:
        """An applied result: its status and run time; a failure's reason, retried or final."""
        status = result.status.value
        self.results_applied.labels(status).inc()
        self.attempt_run_time.labels(status).observe(result.execution_time)
        if result.status is ResultStatus.FAILED:
            (self.retries if retried else self.failures).labels(failure_reason(result.error)).inc()

    def model_call(self, tenant: str, model: str | None, usage: TokenUsage, cost_usd: float) -> None:
        """One model call recorded in the cost ledger: its tokens by kind and its dollars."""
        model_label, tenant_label = self._models.label(model), self._tenants.label(tenant)
        count_tokens(self.tokens, model_label, tenant_label, usage)
        if cost_usd:
            self.cost.labels(model_label, tenant_label).inc(cost_usd)

    def store_outage(self, store: str) -> None:
        """A loop found a store gone. Every loop notices the same outage within moments of the others, so a note
        within OUTAGE_SETTLE_SECONDS of the store's previous one is the same outage and is not counted again."""
        now = time.monotonic()
        previous = self._outage_noted_at.get(store)
        self._outage_noted_at[store] = now
        if previous is None or now - previous >= OUTAGE_SETTLE_SECONDS:
            self.store_outages.labels(store.lower()).inc()
