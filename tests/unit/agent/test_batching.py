"""Batch writers: what arrives within a window is written in one call; a failed write is retried for a while, and
then costs its batch, never the loop."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent.batching import BatchWriter
from tests.polling import eventually

WINDOW_SECONDS = 0.05


class Sink:
    """A write function that records each batch, and fails the ones it is told to."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.failures = 0

    async def write(self, batch: list[int]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database unreachable")
        self.batches.append(batch)


async def written(sink: Sink, count: int) -> list[list[int]]:
    """The sink's batches once there are `count` of them."""
    return await eventually(lambda: asyncio.sleep(0, result=sink.batches), lambda batches: len(batches) >= count)


async def logged(logs: list[dict[str, Any]], event: str) -> None:
    """Once `event` is among the captured log entries."""
    await eventually(lambda: asyncio.sleep(0, result=logs), lambda entries: any(e["event"] == event for e in entries))


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
async def running_writer(sink: Sink) -> AsyncIterator[BatchWriter[int]]:
    writer = BatchWriter("numbers", sink.write, WINDOW_SECONDS)
    loop = asyncio.create_task(writer.start())
    yield writer
    writer.stop()
    await asyncio.wait_for(loop, 5)


async def test_items_of_one_window_are_written_together_in_order(running_writer: BatchWriter[int], sink: Sink) -> None:
    for number in range(5):
        running_writer.add(number)
    assert sink.batches == []  # not one write per item

    assert await written(sink, 1) == [[0, 1, 2, 3, 4]]

    running_writer.add(5)  # a later item gets a later write
    assert await written(sink, 2) == [[0, 1, 2, 3, 4], [5]]


async def test_a_failed_write_is_tried_again_with_what_arrived_meanwhile(sink: Sink) -> None:
    writer = BatchWriter("numbers", sink.write, WINDOW_SECONDS, retry_after=0.2)
    loop = asyncio.create_task(writer.start())
    sink.failures = 2  # the database is unreachable for two writes
    with capture_logs() as logs:
        writer.add(1)
        await logged(logs, "batch_write_retrying")
        writer.add(2)  # during the pause before the retry
        assert await written(sink, 1) == [[1, 2]]
    writer.stop()
    await asyncio.wait_for(loop, 5)

    retries = [entry["count"] for entry in logs if entry["event"] == "batch_write_retrying"]
    assert retries == [1, 2] and "batch_write_failed" not in {entry["event"] for entry in logs}


async def test_a_write_failing_for_too_long_drops_its_items_and_later_items_are_still_written(sink: Sink) -> None:
    writer = BatchWriter("numbers", sink.write, WINDOW_SECONDS, retry_after=0.05, retry_for=0.2)
    loop = asyncio.create_task(writer.start())
    sink.failures = 1_000
    with capture_logs() as logs:
        writer.add(1)
        await logged(logs, "batch_write_failed")
    assert (logs[-1]["writer"], logs[-1]["count"]) == ("numbers", 1)

    sink.failures = 0
    writer.add(2)
    assert await written(sink, 1) == [[2]]
    writer.stop()
    await asyncio.wait_for(loop, 5)


async def test_flush_after_stop_writes_what_the_loop_left(sink: Sink) -> None:
    writer = BatchWriter("numbers", sink.write, window=30)  # a window the test never waits out
    loop = asyncio.create_task(writer.start())
    await asyncio.sleep(0.05)  # the loop's first iteration is behind it: it waits for items
    writer.add(1)
    await asyncio.sleep(0.05)
    writer.stop()
    await asyncio.wait_for(loop, 5)  # a stop does not wait for the window
    assert sink.batches == []

    await writer.flush()

    assert sink.batches == [[1]] and writer.pending == 0


async def test_a_write_failing_on_shutdown_is_dropped_at_once(sink: Sink) -> None:
    writer = BatchWriter("numbers", sink.write, window=30)
    writer.add(1)
    writer.stop()
    sink.failures = 1

    with capture_logs() as logs:
        await asyncio.wait_for(writer.flush(), 1)

    assert [entry["event"] for entry in logs] == ["batch_write_failed"] and writer.pending == 0


async def test_items_beyond_the_limit_are_dropped_and_counted(sink: Sink) -> None:
    writer = BatchWriter("numbers", sink.write, WINDOW_SECONDS, max_pending=2)
    for number in range(5):
        writer.add(number)

    with capture_logs() as logs:
        await writer.flush()

    assert sink.batches == [[0, 1]]
    assert [(entry["event"], entry["count"]) for entry in logs] == [("batch_items_dropped", 3)]
