"""Which form GET /metrics answers by `Accept`, and the bounded codes metrics label failures with."""

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from shared.failure_reasons import FAILURE_REASONS, failure_reason, provider_error_in, provider_error_kind
from shared.prometheus import exposition, media_ranges, prometheus_media_range

PROMETHEUS_3 = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
PROMETHEUS_2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
PROMETHEUS_2 += "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        pytest.param(PROMETHEUS_3, "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6", id="prom3"),
        pytest.param(PROMETHEUS_2, "application/openmetrics-text;version=1.0.0", id="prom2"),
        pytest.param("text/plain;version=0.0.4;q=0.3,*/*;q=0.2", "text/plain;version=0.0.4;q=0.3", id="prom-old"),
        pytest.param("text/plain", "text/plain", id="plain"),
        pytest.param("TEXT/PLAIN; Q=0.5", "TEXT/PLAIN; Q=0.5", id="case-insensitive"),
        pytest.param("text/plain;q=0.2, application/openmetrics-text;q=0.9", "application/openmetrics-text;q=0.9"),
        pytest.param("application/json;q=0.5, text/plain", "text/plain", id="prometheus-preferred-to-json"),
    ],
)
def test_a_scraper_gets_the_prometheus_form_it_prefers(accept: str, chosen: str) -> None:
    assert prometheus_media_range(accept) == chosen


@pytest.mark.parametrize(
    "accept",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("*/*", id="curl"),
        pytest.param("application/json", id="json"),
        pytest.param(FIREFOX, id="browser"),
        pytest.param("text/plain;q=0", id="q0-excluded"),
        pytest.param("text/plain;q=0.0, application/openmetrics-text;q=0,*/*", id="all-q0"),
        pytest.param("application/json, text/plain;q=0.5", id="json-preferred"),
        pytest.param("application/json, text/plain", id="tie-keeps-json"),
        pytest.param("text/plain;q=high", id="unreadable-q"),
        pytest.param("text/plain;q=2", id="q-out-of-range"),
        pytest.param("text/*", id="wildcard-subtype"),
    ],
)
def test_everyone_else_gets_json(accept: str | None) -> None:
    assert prometheus_media_range(accept) is None


def test_media_ranges_read_weights_and_skip_empty_entries() -> None:
    ranges = list(media_ranges("text/plain;version=0.0.4;q=0.3, ,application/json"))
    assert [(item.media_type, item.quality) for item in ranges] == [("text/plain", 0.3), ("application/json", 1.0)]


def test_the_exposition_follows_the_chosen_entry() -> None:
    registry = CollectorRegistry()
    Counter("fleet_things", "Things", ["kind"], registry=registry).labels("a").inc(2)

    openmetrics, openmetrics_type = exposition(registry, prometheus_media_range(PROMETHEUS_3))
    plain, plain_type = exposition(registry, None)

    assert openmetrics_type.startswith("application/openmetrics-text; version=1.0.0")
    assert openmetrics.decode().endswith("# EOF\n")
    assert plain_type == "text/plain; version=0.0.4; charset=utf-8"
    samples = [sample for family in text_string_to_metric_families(plain.decode()) for sample in family.samples]
    assert [(sample.name, sample.labels, sample.value) for sample in samples if sample.name.endswith("_total")] == [
        ("fleet_things_total", {"kind": "a"}, 2.0)
    ]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("agent agent2 stopped heartbeating while running the subtask", "agent_lost"),
        ("agent agent2 was declared failed by an operator", "agent_lost"),
        ("no result from agent agent2 within 330 s", "agent_lost"),
        ("agent shutting down: the attempt was cancelled before it finished", "agent_stopped"),
        ("Claude API error 429: rate_limit_error", "rate_limited"),
        ("Claude API error 529: Overloaded", "overloaded"),
        ("Claude API error 500: internal error", "provider_error"),
        ("timed out after 300 s", "timeout"),
        ("error_max_turns", "limit_exceeded"),
        ("the agent failed to run the subtask: KeyError('x')", "crashed"),
        ("the model said no", "other"),
        (None, "other"),
    ],
)
def test_failures_map_to_a_few_reason_codes(error: str | None, reason: str) -> None:
    assert failure_reason(error) == reason
    assert reason in FAILURE_REASONS


@pytest.mark.parametrize(
    ("status", "kind"),
    [(None, "connection"), (429, "rate_limited"), (529, "overloaded"), (503, "server_error"), (400, "client_error")],
)
def test_provider_errors_map_to_a_kind_by_status(status: int | None, kind: str) -> None:
    assert provider_error_kind(status) == kind


def test_a_provider_error_is_read_from_an_attempts_error() -> None:
    assert provider_error_in("Claude API error 429: slow down") == "rate_limited"
    assert provider_error_in("the model said no") is None
    assert provider_error_in(None) is None
