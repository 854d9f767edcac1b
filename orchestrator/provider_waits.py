"""Work that waits on the model's provider, as the task lifecycle decides it: an attempt the provider could not serve
goes back to the queue as the same attempt (MAX_RETRIES counts genuine failures only), and a task whose planning
the provider could not serve is stored without a plan, to be planned later by the planning loop.

Each waits until the provider's retry-after, else a capped exponential back-off with full jitter
(PROVIDER_BACKOFF_BASE_SECONDS doubled for each wait in a row, capped at PROVIDER_BACKOFF_MAX_SECONDS, a random share
of that), with a status reason a person can read: "waiting on Claude: rate limited (429), next try at 12:03:07 UTC".
No cap on the number of waits: a deadline bounds how long a task may wait.
"""

import random
from datetime import datetime

from shared.config import Settings
from shared.database import Repositories
from shared.database.provider_wait_repository import Backoff
from shared.database.subtask_repository import RetriedAttempt
from shared.errors import ServiceUnavailableError
from shared.models import LogLevel, ProviderWait, SubTaskResult, Task

WHAT_HAPPENED = {
    "rate_limited": "rate limited (429)",
    "overloaded": "overloaded (529)",
    "server_error": "failing with server errors (5xx)",
    "connection": "unreachable",
    "timeout": "not answering in time",
}


def reason_prefix(wait: ProviderWait) -> str:
    """The start of the waiting reason's message; the statement that sets the wait appends its time."""
    return f"waiting on Claude: {WHAT_HAPPENED[wait.kind]}, next try at "


def backoff(wait: ProviderWait, settings: Settings) -> Backoff:
    return Backoff(
        retry_after=wait.retry_after_seconds,
        jitter=random.random(),  # spreads the waiting work out; nothing secret about it
        base_seconds=settings.provider_backoff_base_seconds,
        max_seconds=settings.provider_backoff_max_seconds,
    )


async def requeue_attempt(tx: Repositories, result: SubTaskResult, settings: Settings) -> RetriedAttempt | None:
    """running → queued, same attempt, not before the wait is over; None when the result's offer is not current."""
    wait = result.provider_wait
    assert wait is not None
    return await tx.provider_waits.requeue_attempt(
        result.subtask_id, result.attempt, result.delivery_token, backoff(wait, settings), reason_prefix(wait)
    )


async def defer_plan(tx: Repositories, task_id: str, wait: ProviderWait, settings: Settings) -> datetime | None:
    """The task's planning waits; when until (None: the task no longer waits for a plan)."""
    return await tx.provider_waits.defer_plan(task_id, backoff(wait, settings), reason_prefix(wait))


async def store_plan(tx: Repositories, task: Task) -> bool:
    """The plan of a task whose planning waited, while it still does (under the task's lock)."""
    await tx.tasks.lock_task(task.id)
    return await tx.provider_waits.store_plan(task)


def provider_unavailable(wait: ProviderWait, settings: Settings) -> ServiceUnavailableError:
    """The answer to a request that cannot wait for the provider (a dry run stores nothing to plan later): 503,
    with when to ask again."""
    retry_after = max(1, round(wait.retry_after_seconds or settings.provider_backoff_base_seconds))
    return ServiceUnavailableError(
        f"Claude is {WHAT_HAPPENED[wait.kind]}: the task cannot be planned now; try again in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def activity(result: SubTaskResult) -> tuple[LogLevel, str]:
    """The agent log line of an attempt handed back to wait on the provider."""
    return LogLevel.WARNING, f"attempt {result.attempt} waits on the provider, not counted: {result.error}"
