"""Retry-After follows the drain rate measured over the last minute, within sane bounds."""

from orchestrator.backpressure import MAX_RETRY_AFTER_SECONDS, DrainMeter, queue_full


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
