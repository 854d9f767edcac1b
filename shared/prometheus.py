"""Serving Prometheus metrics: which format a scraper asks for (the `Accept` header) and the metrics in it.

The orchestrator's `GET /metrics` answers JSON to people and scripts and the Prometheus formats to scrapers, by the
request's `Accept`: a scraper names `application/openmetrics-text` or `text/plain` with a weight (q) above zero; a
browser, `curl` (`*/*`) or a client asking for `application/json` gets JSON. Agents answer only the Prometheus form.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import choose_encoder

from shared.models import TokenUsage

OPENMETRICS = "application/openmetrics-text"
PLAIN_TEXT = "text/plain"
PROMETHEUS_TYPES = (OPENMETRICS, PLAIN_TEXT)
JSON_TYPES = ("application/json", "application/*")

# The label of a model nobody named (a result from an agent of before results named it; a failure the orchestrator
# made for a lost attempt).
UNKNOWN_MODEL = "unknown"
# The `kind` label of token counters, by TokenUsage field.
TOKEN_KINDS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read_input_tokens",
    "cache_creation": "cache_creation_input_tokens",
}
# Attempts take from a stub's milliseconds to a model's many minutes.
RUN_TIME_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800)


@dataclass(frozen=True)
class MediaRange:
    """One entry of an `Accept` header: its media type (lower case), the entry as sent, and its weight."""

    media_type: str
    text: str
    quality: float


def media_ranges(accept: str | None) -> Iterator[MediaRange]:
    """The entries of an `Accept` header; one with an unreadable weight is left out, as if it were not there."""
    for entry in (accept or "").split(","):
        media_type, *parameters = (part.strip() for part in entry.split(";"))
        if not media_type:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                quality = _quality(value.strip())
        if 0.0 <= quality <= 1.0:
            yield MediaRange(media_type.lower(), entry.strip(), quality)


def _quality(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return -1.0  # out of range: the entry is dropped


def prometheus_media_range(accept: str | None) -> str | None:
    """The `Accept` entry to answer in Prometheus format, or None to answer JSON.

    Prometheus format when the header names one of its types with q > 0, preferred (by weight) to any JSON type it
    names explicitly; `*/*` alone, a browser's header or no header at all mean JSON, the endpoint's historic form.
    Among the Prometheus types the heaviest wins (OpenMetrics on a tie, as Prometheus lists it first).
    """
    ranges = list(media_ranges(accept))
    candidates = [item for item in ranges if item.media_type in PROMETHEUS_TYPES and item.quality > 0]
    if not candidates:
        return None
    best = max(candidates, key=lambda item: (item.quality, item.media_type == OPENMETRICS))
    json_quality = max((item.quality for item in ranges if item.media_type in JSON_TYPES), default=0.0)
    return best.text if best.quality > json_quality else None


def exposition(registry: CollectorRegistry, media_range: str | None = None) -> tuple[bytes, str]:
    """The registry's metrics in the format `media_range` asks for (`text/plain` 0.0.4 when None), and its
    Content-Type."""
    # The client library's own choice, given the one entry chosen by weight (it reads only the first it knows).
    encoder, content_type = choose_encoder(media_range or "")
    return encoder(registry), content_type


def count_tokens(tokens: Counter, model: str | None, usage: TokenUsage) -> None:
    """Add `usage` to a counter labelled (model, kind)."""
    for kind, field_name in TOKEN_KINDS.items():
        count = getattr(usage, field_name)
        if count:
            tokens.labels(model or UNKNOWN_MODEL, kind).inc(count)
