"""Retry-After follows the drain rate measured over the last minute, within sane bounds; admission reads the depth
only when it must, and refuses no room that is really there."""

import asyncio

import pytest

from orchestrator.backpressure import MAX_RETRY_AFTER_SECONDS, DrainMeter, QueueAdmission, queue_full
from shared.errors import TooManyRequestsError


def test_the_meter_counts_only_the_last_minute() -> None:
    meter = DrainMeter(window_seconds=60)
    meter.record(30, now=100.0)
    meter.record(0, now=110.0)
    meter.record(6, now=150.0)

    assert meter.per_second(now=155.0) == 36 / 60
    assert meter.per_second(now=165.0) == 6 / 60  # the first 30 are over a minute old
    assert meter.per_second(now=300.0) == 0


def test_retry_after_is_the_excess_over_the_measured_drain_rate() -> None:
    slow = queue_full(queued=100, arriving=1, limit=100, drain_per_second=6.4 / 60)
    fast = queue_full(queued=100, arriving=5, limit=100, drain_per_second=50.0)

    assert slow.headers == {"Retry-After": "10"}  # 1 subtask over, at 6.4 a minute
    assert fast.headers == {"Retry-After": "1"}
    assert "6 subtasks in the last minute" in slow.message
    assert slow.detail == {"queued_subtasks": 100, "max_queue_depth": 100}


def test_a_fleet_that_took_nothing_lately_gets_the_longest_wait() -> None:
    stalled = queue_full(queued=100, arriving=1, limit=100, drain_per_second=0.0)

    assert stalled.headers == {"Retry-After": str(MAX_RETRY_AFTER_SECONDS)}
    assert "no agent took work in the last minute" in stalled.message


class QueueTable:
    """The queued subtasks as PostgreSQL would count them, and how often they were counted."""

    def __init__(self, queued: int) -> None:
        self.queued = queued
        self.reads = 0
        self.read_twice = asyncio.Event()

    async def count(self) -> int:
        self.reads += 1
        if self.reads == 2:
            self.read_twice.set()
        return self.queued


async def test_the_depth_is_read_only_when_the_room_may_be_short() -> None:
    table = QueueTable(queued=10)
    admission = QueueAdmission(limit=15, count_queued=table.count, drain=DrainMeter())

    for _ in range(5):
        async with admission.admitted(1):
            table.queued += 1  # stored

    assert table.reads == 1  # 10 read once, then 11..15 by the estimate
    with pytest.raises(TooManyRequestsError):
        async with admission.admitted(1):
            pass
    assert table.reads == 2  # at the limit the estimate no longer says there is room: read, and refused


async def test_a_submit_near_the_limit_waits_for_those_being_stored_rather_than_being_refused() -> None:
    """The room another submit reserved is counted until its rows are committed. When that decides the answer,
    the submit waits for it and reads again: here the queue drained meanwhile, so there is room after all."""
    table = QueueTable(queued=0)
    admission = QueueAdmission(limit=2, count_queued=table.count, drain=DrainMeter())
    storing, stored = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with admission.admitted(2):
            storing.set()
            await stored.wait()
            table.queued = 0  # its two subtasks were stored and dispatched at once

    async def second() -> None:
        async with admission.admitted(1):
            table.queued += 1

    first_submit = asyncio.create_task(first())
    await storing.wait()
    second_submit = asyncio.create_task(second())
    async with asyncio.timeout(5):
        await table.read_twice.wait()  # the second has read the depth: 0 rows + 2 reserved, no room yet
    stored.set()
    await asyncio.gather(first_submit, second_submit)

    assert table.reads == 3 and table.queued == 1  # read again once the first was stored, and admitted
