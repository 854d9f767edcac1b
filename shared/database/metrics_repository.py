"""What GET /metrics counts in PostgreSQL: the tenant's tasks by state, how long subtasks waited for an agent, the
queue's depth per capability, and each agent's record, which outlives the agent's process (its own counters do not);
and, for a Prometheus scrape, tasks and subtasks by state and the queue's depth per capability.
"""

from dataclasses import dataclass
from typing import Any

from shared.database.executor import Executor

METRICS_SQL = """
WITH task_counts AS (
    SELECT count(*) FILTER (WHERE status IN ('pending', 'in_progress', 'paused')) AS tasks_pending,
           count(*) FILTER (WHERE status = 'completed') AS tasks_completed,
           count(*) FILTER (WHERE status = 'failed') AS tasks_failed
    FROM tasks WHERE tenant_id = $1
), latency AS (
    SELECT avg(assignment_latency_ms)::float8 AS avg_assignment_latency_ms
    FROM subtasks WHERE tenant_id = $1 AND assignment_latency_ms IS NOT NULL
), queued AS (
    SELECT coalesce(jsonb_object_agg(capability, waiting), '{}') AS queued_by_capability
    FROM (
        SELECT capability, count(*) AS waiting
        FROM subtasks, unnest(required_capabilities) AS capability
        WHERE tenant_id = $1 AND status = 'queued'
        GROUP BY capability
    ) per_capability
), records AS (
    SELECT coalesce(jsonb_object_agg(agent_id, jsonb_build_object('completed', completed, 'failed', failed)), '{}')
               AS agent_records
    FROM (
        SELECT r.agent_id,
               count(*) FILTER (WHERE r.status = 'completed') AS completed,
               count(*) FILTER (WHERE r.status = 'failed' AND r.provider_wait IS NULL) AS failed
        FROM subtask_results r JOIN tasks t ON t.id = r.task_id
        WHERE t.tenant_id = $1 AND r.applied
        GROUP BY r.agent_id
    ) per_agent
)
SELECT * FROM task_counts, latency, queued, records
"""


# One statement for the scrape-time gauges: (kind, label, count) rows.
SCRAPE_COUNTS_SQL = """
SELECT 'task' AS kind, status AS label, count(*) AS count FROM tasks WHERE tenant_id = $1 GROUP BY status
UNION ALL
SELECT 'subtask', status, count(*) FROM subtasks WHERE tenant_id = $1 GROUP BY status
UNION ALL
SELECT 'capability', capability, count(*)
FROM subtasks, unnest(required_capabilities) AS capability
WHERE tenant_id = $1 AND status = 'queued'
GROUP BY capability
UNION ALL
SELECT 'provider_wait', 'subtask', count(*) FROM subtasks
WHERE tenant_id = $1 AND status = 'queued' AND not_before > now()
UNION ALL
SELECT 'provider_wait', 'plan', count(*) FROM tasks
WHERE tenant_id = $1 AND status = 'pending' AND plan_not_before IS NOT NULL
"""


@dataclass(frozen=True)
class ScrapeCounts:
    tasks_by_state: dict[str, int]
    subtasks_by_state: dict[str, int]
    queued_by_capability: dict[str, int]  # a subtask needing two capabilities counts under each
    waiting_on_provider: dict[str, int]  # queued subtasks (`subtask`) and unplanned tasks (`plan`) waiting on it


@dataclass(frozen=True)
class StoredMetrics:
    tasks_pending: int  # not ended yet: pending or in progress
    tasks_completed: int
    tasks_failed: int
    avg_assignment_latency_ms: float | None  # None until a subtask has been assigned
    queued_by_capability: dict[str, int]  # a subtask needing two capabilities counts under each
    agent_records: dict[str, dict[str, int]]  # agent id -> applied results, completed and failed


class MetricsRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def fleet_metrics(self) -> StoredMetrics:
        """Every figure in one statement, so they agree with one another."""
        row: Any = await self._executor.fetchrow(METRICS_SQL, self._tenant_id)
        return StoredMetrics(**dict(row))

    async def scrape_counts(self) -> ScrapeCounts:
        """Tasks and subtasks by state, queued subtasks per capability, and the work waiting on the provider, in one
        statement."""
        counts: dict[str, dict[str, int]] = {"task": {}, "subtask": {}, "capability": {}, "provider_wait": {}}
        for row in await self._executor.fetch(SCRAPE_COUNTS_SQL, self._tenant_id):
            counts[row["kind"]][row["label"]] = row["count"]
        return ScrapeCounts(counts["task"], counts["subtask"], counts["capability"], counts["provider_wait"])
