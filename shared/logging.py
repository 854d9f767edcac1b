"""Structured logging for every entry point: readable in a terminal, JSON lines anywhere else.

Every line goes through structlog, the libraries' too (uvicorn, asyncpg, httpx log through the standard library),
so with LOG_JSON each line of a service's log is one JSON object. A store being unreachable is expected now and
then: an error of that kind is logged as one line naming the store, never as a traceback.
"""

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from shared.outages import STORE_OUTAGES, unreachable_store


def summarize_outages(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """An outage error attached to an event becomes `store` and `error` fields instead of a traceback."""
    exc_info = event.get("exc_info")
    if exc_info is True:  # log.exception(): the exception being handled
        exc_info = sys.exc_info()
    error = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    if isinstance(error, STORE_OUTAGES):
        del event["exc_info"]
        store = unreachable_store(error)
        if store:
            event.setdefault("store", store)
        event.setdefault("error", repr(error))
    return event


def configure_logging(level: str = "INFO", json_output: bool | None = None) -> None:
    """Configure structlog and the standard library once per process.

    `json_output=None` picks JSON when stderr is not a terminal (containers, log files) and a
    coloured console renderer otherwise. Context such as `trace_id` and `task_id` bound with
    `structlog.contextvars.bind_contextvars` appears on every event of the current request.
    """
    if json_output is None:
        json_output = not sys.stderr.isatty()
    shared_processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        summarize_outages,
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_output
        # Plain tracebacks: the fancy renderer (when `rich` is installed) costs seconds of CPU per exception.
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    exceptions = structlog.processors.format_exc_info if json_output else structlog.dev.set_exc_info
    structlog.configure(
        processors=[*shared_processors, exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # The libraries' records (uvicorn, asyncpg, httpx) are rendered by the same processors, to the same stream.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared_processors],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, exceptions, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # asyncpg's pool warns on every failed try to reconnect its minimum; the loops already say the database is away.
    logging.getLogger("asyncpg.pool").setLevel(logging.ERROR)
