"""Results reported by agents, one row per delivered result (late and duplicate ones included)."""

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from shared.database.executor import Executor
from shared.database.subtask_repository import AttemptTimes
from shared.models import AgentCapability, ResultStatus, SubTaskResult, TaskType

RESULT_COLUMNS = (
    "result_id, subtask_id, task_id, agent_id, attempt, status, output, error, retryable, execution_time, "
    "input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens, cost_usd, num_turns, "
    "role_config_hash, simulated, delivery_token, created_at, claude_session_id, claude_config_dir, allowed_tools, "
    "provider_wait"
)
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


INSERT_RESULT = """
    INSERT INTO subtask_results (result_id, subtask_id, task_id, agent_id, attempt, status, output, error,
        retryable, execution_time, input_tokens, output_tokens, cache_read_input_tokens,
        cache_creation_input_tokens, cost_usd, num_turns, role_config_hash, simulated, applied, created_at,
        delivery_token, claude_session_id, claude_config_dir, allowed_tools, queued_at, assigned_at, tenant_id,
        provider_wait)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23,
            $24, $25, $26, $27, $28)
    ON CONFLICT (result_id) DO NOTHING
"""


def _result_values(result: SubTaskResult, applied: bool, times: AttemptTimes | None, tenant_id: str) -> tuple[Any, ...]:
    usage = result.token_usage
    times = times or AttemptTimes()
    return (
        result.result_id,
        result.subtask_id,
        result.task_id,
        result.agent_id,
        result.attempt,
        result.status.value,
        result.output,
        result.error,
        result.retryable,
        result.execution_time,
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
        result.cost_usd,
        result.num_turns,
        result.role_config_hash,
        result.simulated,
        applied,
        result.created_at,
        result.delivery_token,
        result.claude_session_id,
        result.claude_config_dir,
        result.allowed_tools,
        times.queued_at,
        times.assigned_at,
        tenant_id,
        result.provider_wait.model_dump(mode="json") if result.provider_wait else None,
    )


def result_from_row(row: Mapping[str, Any]) -> SubTaskResult:
    values = dict(row)
    values["token_usage"] = {field: values.pop(field) for field in TOKEN_FIELDS}
    return SubTaskResult.model_validate(values)


class RecordedOutcome(BaseModel):
    """One applied result, as routing learns from it: who did what kind of work, how it went, how long it took."""

    agent_id: str
    task_type: TaskType
    required_capabilities: list[AgentCapability]
    status: ResultStatus
    execution_time: float


class ResultRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def save_subtask_result(
        self, result: SubTaskResult, *, applied: bool, times: AttemptTimes | None = None
    ) -> bool:
        """Record a result, with when its attempt was queued and assigned (an applied result's timeline); False when
        this very result (same result_id) was recorded before."""
        status = await self._executor.execute(INSERT_RESULT, *_result_values(result, applied, times, self._tenant_id))
        return status == "INSERT 0 1"

    async def save_subtask_results(self, results: Sequence[tuple[SubTaskResult, bool, AttemptTimes | None]]) -> None:
        """Record several (result, applied, attempt times) in one round trip; ones recorded before are left as they
        are."""
        if results:
            await self._executor.executemany(
                INSERT_RESULT,
                [_result_values(result, applied, times, self._tenant_id) for result, applied, times in results],
            )

    async def recorded(self, result_ids: Collection[str]) -> set[str]:
        """Which of these results are recorded already (a result delivered again keeps its first record)."""
        # A probe per id, whatever the plan knows of the table's size (shared/database/subtask_repository.py).
        rows = await self._executor.fetch(
            """
            SELECT found.result_id FROM unnest($1::text[]) AS wanted (result_id)
            CROSS JOIN LATERAL (
                SELECT result_id FROM subtask_results WHERE result_id = wanted.result_id LIMIT 1
            ) AS found
            """,
            list(result_ids),
        )
        return {row["result_id"] for row in rows}

    async def get_subtask_results(self, task_id: str, *, applied_only: bool = False) -> list[SubTaskResult]:
        rows = await self._executor.fetch(
            f"""
            SELECT {RESULT_COLUMNS} FROM subtask_results
            WHERE task_id = $1 AND (applied OR NOT $2)
              AND EXISTS (SELECT FROM tasks WHERE id = $1 AND tenant_id = $3)
            ORDER BY created_at, result_id
            """,
            task_id,
            applied_only,
            self._tenant_id,
        )
        return [result_from_row(row) for row in rows]

    async def recent_outcomes(self, per_kind: int) -> list[RecordedOutcome]:
        """This tenant's last `per_kind` applied results of each agent for each task type and capability set,
        oldest first (provider waits left out: the provider's doing, not the agent's)."""
        rows = await self._executor.fetch(
            """
            SELECT agent_id, task_type, required_capabilities, status, execution_time FROM (
                SELECT r.agent_id, s.task_type, s.required_capabilities, r.status, r.execution_time, r.created_at,
                       r.result_id,
                       row_number() OVER (
                           PARTITION BY r.agent_id, s.task_type, s.required_capabilities ORDER BY r.created_at DESC
                       ) AS recency
                FROM subtask_results r JOIN subtasks s ON s.id = r.subtask_id
                WHERE r.applied AND r.provider_wait IS NULL AND s.tenant_id = $1
            ) ranked
            WHERE recency <= $2
            ORDER BY created_at, result_id
            """,
            self._tenant_id,
            per_kind,
        )
        return [RecordedOutcome.model_validate(dict(row)) for row in rows]
