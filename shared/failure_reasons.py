"""Why an attempt failed, or what went wrong with the model provider, as one of a few fixed codes.

Errors are free text (the agent's, the CLI's, the API's, the orchestrator's own reasons); metrics need labels from a
small fixed set, so that a new wording never makes a new time series. The first rule that matches wins; anything
else is `other`.
"""

import re

# (code, pattern), most specific first.
FAILURE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "agent_lost",
        re.compile(r"stopped heartbeating|stopped answering|delivery was lost|declared failed|no result from agent"),
    ),
    ("agent_stopped", re.compile(r"agent shutting down|agent drained")),
    ("rate_limited", re.compile(r"\b429\b|rate.?limit", re.IGNORECASE)),
    ("overloaded", re.compile(r"\b529\b|overloaded", re.IGNORECASE)),
    ("provider_error", re.compile(r"Claude API error|\bAPI error\b|Claude Code CLI", re.IGNORECASE)),
    ("timeout", re.compile(r"timed out|timeout", re.IGNORECASE)),
    ("limit_exceeded", re.compile(r"max_turns|max_budget|budget|limit", re.IGNORECASE)),
    ("crashed", re.compile(r"the agent failed to run")),
)
FAILURE_REASONS = (*(code for code, _ in FAILURE_RULES), "other")

PROVIDER_ERROR_KINDS = (
    "rate_limited",
    "overloaded",
    "server_error",
    "client_error",
    "timeout",
    "connection",
    "invalid_response",
)
OVERLOADED_STATUS = 529
_API_STATUS = re.compile(r"Claude API error (\d{3})")


def failure_reason(error: str | None) -> str:
    """The code of a failed attempt's error (one of FAILURE_REASONS)."""
    text = error or ""
    return next((code for code, pattern in FAILURE_RULES if pattern.search(text)), "other")


def provider_error_kind(status: int | None) -> str:
    """The kind of an error answer of the model's API by its HTTP status; None means no answer came (connection)."""
    if status is None:
        return "connection"
    if status == 429:
        return "rate_limited"
    if status == OVERLOADED_STATUS:
        return "overloaded"
    if status == 408:
        return "timeout"
    return "server_error" if status >= 500 else "client_error"


def provider_error_in(error: str | None) -> str | None:
    """The provider error kind an attempt's error reports (`Claude API error <status>: ...`), if it reports one."""
    found = _API_STATUS.search(error or "")
    return provider_error_kind(int(found.group(1))) if found else None
