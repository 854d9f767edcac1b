"""Structured logging for every entry point: readable in a terminal, JSON lines anywhere else."""

import logging
import sys

import structlog


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
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_output
        # Plain tracebacks: the fancy renderer (when `rich` is installed) costs seconds of CPU per exception.
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.format_exc_info if json_output else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries that log through the standard library (uvicorn, asyncpg, httpx) go to the same stream.
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
