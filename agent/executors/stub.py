"""The stub executor (seed 000 T06): no LLM, a configurable delay and failures chosen by a regex.

The orchestrator's tests and the benchmark run on it, so it does nothing per subtask beyond waiting.
"""

import asyncio
import json
import re
from collections.abc import Iterable

from agent.executors.base import ExecutionOutcome
from shared.attempt_prompt import dependency_outputs
from shared.config import ConfigurationError, Settings
from shared.models import TaskExecutionRequest
from shared.roles import LoadedRole


class StubExecutor:
    name = "stub"

    def __init__(
        self, *, delay_seconds: float = 0.0, fail_pattern: str | None = None, fail_retryable: bool = False
    ) -> None:
        self._delay_seconds = delay_seconds
        self._fail_pattern = re.compile(fail_pattern) if fail_pattern else None
        self._fail_retryable = fail_retryable

    @classmethod
    def from_settings(cls, settings: Settings) -> "StubExecutor":
        try:
            return cls(
                delay_seconds=settings.agent_stub_delay_seconds,
                fail_pattern=settings.agent_stub_fail_pattern,
                fail_retryable=settings.agent_stub_fail_retryable,
            )
        except re.error as error:
            raise ConfigurationError(f"invalid configuration: AGENT_STUB_FAIL_PATTERN: {error}") from None

    async def start(self, roles: Iterable[LoadedRole]) -> None:
        pass  # nothing to warm

    async def close(self) -> None:
        pass

    async def execute(self, request: TaskExecutionRequest, role: LoadedRole) -> ExecutionOutcome:
        if self._delay_seconds:
            await asyncio.sleep(self._delay_seconds)
        subtask = request.subtask
        if self._fail_pattern and self._fail_pattern.search(subtask.description):
            return ExecutionOutcome.failure(
                f"[stub] subtask {subtask.id} failed: its description matches {self._fail_pattern.pattern!r}",
                retryable=self._fail_retryable,
            )
        output = {
            "executor": "stub",
            "subtask_id": subtask.id,
            "attempt": subtask.attempt_count,
            "role": role.role.name,
            "summary": f"[stub] completed subtask {subtask.id}: {subtask.description}",
            "dependencies": [entry["subtask_id"] for entry in dependency_outputs(request)],
        }
        return ExecutionOutcome(output=json.dumps(output, sort_keys=True), num_turns=0)
