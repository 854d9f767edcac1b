"""How values read on screen."""

from datetime import UTC, datetime, timedelta

import pytest

from ui import formatting

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (0.25, "250 ms"), (12.34, "12.3 s"), (125, "2 min 5 s"), (7260, "2 h 1 min")],
)
def test_durations(seconds: float | None, text: str) -> None:
    assert formatting.duration(seconds) == text


def test_ages_treat_naive_times_as_utc() -> None:
    assert formatting.age(NOW - timedelta(seconds=12), NOW) == "12 s ago"
    assert formatting.age((NOW - timedelta(minutes=3)).replace(tzinfo=None), NOW) == "3 min ago"
    assert formatting.age(NOW + timedelta(seconds=2), NOW) == "0 s ago", "a clock slightly ahead is not negative"


def test_ids_tokens_and_costs() -> None:
    assert formatting.short_id("task_0123456789abcdef") == "task_01234567"
    assert formatting.short_id("agent1") == "agent1"
    assert [formatting.token_count(n) for n in (999, 1500, 2_500_000)] == ["999", "1.5k", "2.5M"]
    assert [formatting.cost(usd) for usd in (0.0123, 3.5)] == ["$0.0123", "$3.50"]


def test_user_text_cannot_become_markdown() -> None:
    assert formatting.plain("# Title with [link](x) and :red[colour] $x$") == (
        "\\# Title with \\[link\\]\\(x\\) and \\:red\\[colour\\] \\$x\\$"
    )
    assert formatting.preview("a  long\nline of words", 10) == "a long li…"
