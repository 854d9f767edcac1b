"""An outage costs the log one warning and one line when it is over, and the retries back off."""

import asyncpg
import redis
from structlog.testing import capture_logs

from shared.loop_service import OUTAGE_BACKOFF_MAX_SECONDS, OutageWatch

CUT = asyncpg.PostgresConnectionError("connection refused")


def test_one_warning_per_outage_one_line_when_it_is_over_and_a_growing_wait() -> None:
    watch = OutageWatch("store_down", "store_back", loop="results")
    with capture_logs() as logs:
        waits = [watch.failed(CUT) for _ in range(6)]
        watch.succeeded()
        watch.succeeded()

    assert waits == [1.0, 2.0, 4.0, OUTAGE_BACKOFF_MAX_SECONDS, OUTAGE_BACKOFF_MAX_SECONDS, OUTAGE_BACKOFF_MAX_SECONDS]
    loud = [(entry["event"], entry["log_level"]) for entry in logs if entry["log_level"] != "debug"]
    assert loud == [("store_down", "warning"), ("store_back", "info")]
    assert logs[0]["store"] == "PostgreSQL" and logs[0]["loop"] == "results"


def test_a_relapse_right_after_the_store_came_back_is_the_same_outage() -> None:
    """A loop that waits idle for work succeeds without touching the store; that is no end of the outage."""
    watch = OutageWatch("store_down", "store_back")
    with capture_logs() as logs:
        watch.failed(CUT)
        watch.succeeded()
        second_wait = watch.failed(CUT)

    assert [entry["event"] for entry in logs if entry["log_level"] == "warning"] == ["store_down"]
    assert second_wait == 2.0  # the back-off goes on where it was


def test_nothing_is_logged_while_all_is_well() -> None:
    with capture_logs() as logs:
        OutageWatch("store_down", "store_back").succeeded()
    assert logs == []


def test_each_outage_is_told_once_with_its_store() -> None:
    watch = OutageWatch("store_down", "store_back")
    told: list[str] = []
    watch.on_outage = told.append

    for _ in range(3):
        watch.failed(CUT)
    watch.succeeded()

    assert told == ["PostgreSQL"]


def test_loops_of_one_process_that_notice_the_same_outage_warn_once_per_store() -> None:
    results, deadlines, dispatch = (OutageWatch("store_down", "store_back", loop=name) for name in ("a", "b", "c"))
    with capture_logs() as logs:
        results.failed(CUT)
        deadlines.failed(CUT)
        dispatch.failed(redis.ConnectionError("Connection refused"))  # another store: an outage of its own

    assert [(entry["log_level"], entry["loop"], entry["store"]) for entry in logs] == [
        ("warning", "a", "PostgreSQL"),
        ("info", "b", "PostgreSQL"),
        ("warning", "c", "Redis"),
    ]


def test_once_every_loop_that_noticed_an_outage_is_done_with_it_the_next_outage_warns_again() -> None:
    first, second = OutageWatch("store_down", "store_back"), OutageWatch("store_down", "store_back")
    first.failed(CUT)
    second.failed(CUT)
    first.forget()  # its loop stopped
    with capture_logs() as during:
        OutageWatch("store_down", "store_back").failed(CUT)  # `second` still holds the outage open
    second.forget()
    with capture_logs() as after:
        OutageWatch("store_down", "store_back").failed(CUT)

    assert [entry["log_level"] for entry in during] == ["info"]
    assert [entry["log_level"] for entry in after] == ["warning"]
