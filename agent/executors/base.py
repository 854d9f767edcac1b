"""What an executor is: something that turns one subtask attempt into an outcome, never into an exception."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from shared.models import ModelCallUsage, ProviderWait, RoleLimit, TaskExecutionRequest, TokenUsage
from shared.roles import LoadedRole


@dataclass(frozen=True)
class ExecutionOutcome:
    """How an attempt ended: `output` when it succeeded, `error` (and whether retrying may help) when not."""

    output: str | None = None
    error: str | None = None
    retryable: bool = False
    token_usage: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    num_turns: int = 0
    # Where an attempt's time went (e.g. the CLI's start-up, waiting on the model), in seconds, for agent_logs.
    timings: dict[str, float] = field(default_factory=dict)
    # What isolated the attempt, for GET /isolation-report: the model conversation it ran in and the CLI's config
    # folder; None for executors without either (the stub).
    claude_session_id: str | None = None
    claude_config_dir: str | None = None
    # Set when the provider could not serve the attempt (429, 529, 5xx, unreachable, the fleet's limiter): the
    # orchestrator queues it again without counting it as an attempt.
    provider_wait: ProviderWait | None = None
    # Each model call (turn) of the attempt, for the cost ledger; empty when none was seen.
    model_calls: list[ModelCallUsage] = field(default_factory=list)
    # The role's cap that stopped the attempt, if one did (its error names the cap and its value).
    limit_reached: RoleLimit | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None

    @classmethod
    def failure(cls, error: str, *, retryable: bool) -> "ExecutionOutcome":
        return cls(error=error, retryable=retryable)

    @classmethod
    def waiting(cls, error: str, wait: ProviderWait) -> "ExecutionOutcome":
        """The attempt could not get the provider's service: no attempt spent, it waits on the queue."""
        return cls(error=error, retryable=True, provider_wait=wait)


class SubtaskExecutor(Protocol):
    name: str

    async def start(self, roles: Iterable[LoadedRole]) -> None:
        """Get ready to run attempts under `roles` (without delaying the agent's start)."""
        ...

    async def execute(self, request: TaskExecutionRequest, role: LoadedRole) -> ExecutionOutcome:
        """Run one attempt; expected failures come back as a failed outcome, cancellation propagates."""
        ...

    async def close(self) -> None:
        """Release what `start` took; nothing the executor started runs after it returns."""
        ...
