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
# The format versions the client library writes, by media type (OpenMetrics 0.0.1 it answers in text 0.0.4).
SPOKEN_VERSIONS = {OPENMETRICS: ("0.0.1", "1.0.0"), PLAIN_TEXT: ("0.0.4", "1.0.0")}

# The label of a model nobody named (a result from an agent of before results named it; a failure the orchestrator
# made for a lost attempt).
UNKNOWN_MODEL = "unknown"
# A model name is whatever a result says, so each registry labels only the first MODEL_LABELS_MAX models it meets and
# counts any later one under OTHER_MODELS: an agent naming a new model per result cannot grow a scrape without bound.
# Tenants are capped the same way (TENANT_LABELS_MAX), though an orchestrator or agent serves one tenant.
MODEL_LABELS_MAX = 20
TENANT_LABELS_MAX = 20
OTHER_MODELS = "other"
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
    encoder, content_type = choose_encoder(_spoken(media_range) if media_range else "")
    return encoder(registry), content_type


def _spoken(media_range: str) -> str:
    """The entry without a `version` the client library does not write: it fails comparing one it cannot read (a
    500), and echoes any other into the Content-Type as if it spoke it. Without one, it answers its default."""
    media_type, *parameters = (part.strip() for part in media_range.split(";"))
    media_type = media_type.lower()
    versions = SPOKEN_VERSIONS.get(media_type, ())
    kept = [
        parameter
        for parameter in parameters
        if parameter.partition("=")[0].strip().lower() != "version" or parameter.partition("=")[2].strip() in versions
    ]
    return ";".join([media_type, *kept])


class BoundedLabels:
    """The values of one label of a registry: a name as given for the first `limit` names met, OTHER_MODELS
    ("other") for any later one, UNKNOWN_MODEL ("unknown") when none is given."""

    def __init__(self, limit: int = MODEL_LABELS_MAX) -> None:
        self._limit = limit
        self._labelled: set[str] = set()

    def label(self, name: str | None) -> str:
        if not name:
            return UNKNOWN_MODEL
        if name not in self._labelled and len(self._labelled) < self._limit:
            self._labelled.add(name)
        return name if name in self._labelled else OTHER_MODELS


def count_tokens(tokens: Counter, model_label: str, tenant_label: str, usage: TokenUsage) -> None:
    """Add `usage` to a counter labelled (model, kind, tenant)."""
    for kind, field_name in TOKEN_KINDS.items():
        count = getattr(usage, field_name)
        if count:
            tokens.labels(model_label, kind, tenant_label).inc(count)
