"""With LOG_JSON every line a service writes is one JSON object, the libraries' too; an outage is no traceback."""

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

# Run in a process of its own: logging is configured once per process, and the test run has its own.
SERVICE = """
import logging, asyncpg, structlog
from shared.logging import configure_logging

configure_logging("INFO", json_output=True)
logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
try:
    raise asyncpg.PostgresConnectionError("connection refused")
except Exception:
    structlog.get_logger().exception("delivery_failed")
    logging.getLogger("asyncpg.pool").error("lost a connection", exc_info=True)
try:
    raise ValueError("a real bug")
except Exception:
    structlog.get_logger().exception("loop_iteration_failed")
"""


def test_every_line_is_json_and_an_outage_is_one_line_without_a_traceback() -> None:
    written = subprocess.run(
        [sys.executable, "-c", SERVICE], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stderr

    started, delivery, pool, bug = (json.loads(line) for line in written.splitlines())
    assert (started["event"], started["logger"], started["level"]) == (
        "Started server process [42]",
        "uvicorn.error",
        "info",
    )
    for outage in (delivery, pool):
        assert "exception" not in outage
        assert outage["store"] == "PostgreSQL" and "connection refused" in outage["error"]
    assert "Traceback" in bug["exception"] and "a real bug" in bug["exception"]  # a bug keeps its traceback
