"""What the provider said about waiting, read from the CLI's own log, since the SDK does not pass it on.

The CLI reports a failed API call's HTTP status but not its `retry-after` header. Its Anthropic client logs every
response's headers when ANTHROPIC_LOG=debug and the CLI writes its debug log to stderr (`--debug-to-stderr`); this
watch reads that stream and keeps the last `retry-after` it saw. A CLI that logs differently only costs the exact
wait: the fleet then backs off on its own (PROVIDER_BACKOFF_BASE_SECONDS).
"""

import re

import structlog

log = structlog.get_logger(__name__)

# The CLI's environment and flags that put the response headers on stderr.
HEADER_LOG_ENV = {"ANTHROPIC_LOG": "debug"}
HEADER_LOG_ARGS: dict[str, str | None] = {"debug-to-stderr": None}
_RETRY_AFTER = re.compile(r"""["']?retry-after["']?\s*:\s*["']?(\d+(?:\.\d+)?)["']?""", re.IGNORECASE)


class RetryAfterWatch:
    """A stderr callback for one CLI run: logs each line (at debug) and remembers the last retry-after."""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def reset(self) -> None:
        """Forget what an earlier attempt of the same CLI was told."""
        self.retry_after = None

    def __call__(self, line: str) -> None:
        found = _RETRY_AFTER.search(line)
        if found:
            self.retry_after = float(found.group(1))
        log.debug("claude_cli_stderr", line=line.rstrip())
