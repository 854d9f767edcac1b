"""From what the SDK reports (a ResultMessage, a raised error) to an ExecutionOutcome: succeeded, failed (retryable or
not), or waiting on the provider.

The provider failing to serve a call (429, 529, another 5xx, no answer at all) is not the attempt's failure: the
outcome carries a ProviderWait, and the orchestrator queues the attempt again without counting it. A request the
API refuses as malformed or unauthorized (400, 401, 403, ...) is a genuine failure.
"""

import re
from dataclasses import dataclass
from typing import Any

from claude_agent_sdk import ResultMessage

from agent.executors.base import ExecutionOutcome
from shared.failure_reasons import provider_error_kind
from shared.models import ProviderWait, RoleLimit, TokenUsage

# Rate limits, overload (529), server errors and timeouts may pass; a bad request or a refused key will not.
RETRYABLE_CLIENT_STATUSES = frozenset({408, 409, 425, 429})
# Limits the role sets: another attempt would hit them again.
PERMANENT_SUBTYPES = frozenset({"error_max_turns", "error_max_budget_usd", "error_max_structured_output_retries"})
NO_ANSWER_TEXT = "(the agent finished without a text answer)"
# How the CLI ends a run whose API call failed (ResultError.terminal_reason).
API_ERROR_REASON = "api_error"
_EXIT_CODE = re.compile(r" \(exit code: -?\d+\)")
_TIMED_OUT = re.compile(r"timed? ?out|timeout", re.IGNORECASE)
# The role caps the CLI stops an attempt on, by the result's subtype.
LIMIT_SUBTYPES: dict[str, RoleLimit] = {"error_max_turns": "max_turns", "error_max_budget_usd": "max_budget_usd"}
# A response cut at CLAUDE_CODE_MAX_OUTPUT_TOKENS: the CLI asks the model to go on a few times, then gives up with an
# API error of its own (no HTTP status) saying so; newer CLIs may say it in the result's stop_reason.
_OUTPUT_CAP = re.compile(r"exceeded the \d+ output token maximum")


@dataclass(frozen=True)
class RoleCaps:
    """The per-attempt caps of the role an attempt ran under, for the error that says which one stopped it."""

    max_turns: int | None = None
    max_budget_usd: float | None = None
    max_output_tokens: int | None = None

    def explain(self, limit: RoleLimit, text: str) -> str:
        """The error of an attempt `limit` stopped: the cap, its value, and what the CLI said."""
        value = getattr(self, limit)
        if value is None:
            return f"the role's {limit} cap stopped the attempt: {text}"
        shown = f"${value:g}" if limit == "max_budget_usd" else str(value)
        return f"the role's {limit} cap ({shown}) stopped the attempt: {text}"


def limit_reached(subtype: str | None, stop_reason: str | None, text: str) -> RoleLimit | None:
    """The role cap an error result says stopped the attempt, if any."""
    if subtype in LIMIT_SUBTYPES:
        return LIMIT_SUBTYPES[subtype]
    if stop_reason == "max_tokens" or _OUTPUT_CAP.search(text):
        return "max_output_tokens"
    return None


def is_retryable(status: int | None, subtype: str | None) -> bool:
    if status is not None:
        return status in RETRYABLE_CLIENT_STATUSES or status >= 500
    # Without an HTTP status the API call never got an answer (lost connection, timeout) or the CLI broke.
    return subtype not in PERMANENT_SUBTYPES


def provider_wait(
    status: int | None, terminal_reason: str | None, text: str, retry_after: float | None = None
) -> ProviderWait | None:
    """The wait an API error calls for, or None when the run did not end on the provider's trouble (a refused
    request, a role's limit, a CLI that broke)."""
    if status is None and terminal_reason != API_ERROR_REASON:
        return None
    kind = provider_error_kind(status)
    if kind == "client_error":
        return None
    if kind == "connection" and _TIMED_OUT.search(text):
        kind = "timeout"
    return ProviderWait(kind=kind, retry_after_seconds=retry_after)


def token_usage(usage: dict[str, Any] | None) -> TokenUsage:
    usage = usage or {}
    return TokenUsage(
        **{name: int(usage.get(name) or 0) for name in TokenUsage.model_fields}  # absent counters are zero
    )


def accounting(result: ResultMessage | None) -> dict[str, Any]:
    """Usage, cost and turns of a query, zero when it produced no result."""
    if result is None:
        return {}
    return {
        "token_usage": token_usage(result.usage),
        "cost_usd": max(result.total_cost_usd or 0.0, 0.0),
        "num_turns": max(result.num_turns, 0),
    }


def describe(status: int | None, text: str) -> str:
    text = text.removeprefix("Claude Code returned an error result: ").strip() or "unknown error"
    return f"Claude API error {status}: {text}" if status is not None and str(status) not in text else text


def outcome_from_result(
    result: ResultMessage, caps: RoleCaps | None = None, retry_after: float | None = None
) -> ExecutionOutcome:
    if not result.is_error:
        return ExecutionOutcome(output=result.result or NO_ANSWER_TEXT, **accounting(result))
    text = result.result or "; ".join(result.errors or []) or result.subtype
    status = result.api_error_status
    wait = provider_wait(status, result.terminal_reason, text, retry_after)
    return _failure(describe(status, text), result, status, result.subtype, caps, wait)


def failure_from_error(
    error: Exception,
    result: ResultMessage | None,
    *,
    status: int | None,
    subtype: str | None,
    caps: RoleCaps | None = None,
    terminal_reason: str | None = None,
    retry_after: float | None = None,
) -> ExecutionOutcome:
    """A failed outcome for an error `query()` raised, keeping the usage of the result it may have sent first."""
    text = _EXIT_CODE.sub("", str(error), count=1)
    wait = provider_wait(status, terminal_reason, text, retry_after)
    return _failure(describe(status, text), result, status, subtype, caps, wait)


def _failure(
    error: str,
    result: ResultMessage | None,
    status: int | None,
    subtype: str | None,
    caps: RoleCaps | None,
    wait: ProviderWait | None,
) -> ExecutionOutcome:
    """A failed outcome: a role cap that stopped the attempt says which (not retryable: it would again), else the
    provider's trouble makes it wait, else it failed, retryable or not."""
    limit = limit_reached(subtype, result.stop_reason if result else None, error) if status is None else None
    if limit is None:
        retryable = is_retryable(status, subtype)
        return ExecutionOutcome(error=error, retryable=retryable, provider_wait=wait, **accounting(result))
    explained = (caps or RoleCaps()).explain(limit, error)
    return ExecutionOutcome(error=explained, retryable=False, limit_reached=limit, **accounting(result))
