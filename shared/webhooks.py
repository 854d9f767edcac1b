"""Webhooks: a tenant's endpoints that lifecycle events are POSTed to, and how their deliveries went.

A webhook wants some event types (names of EventType, or `*` for all) of every task or of one task. It receives the
events published after it was created, each once (see orchestrator/webhook_deliverer.py).
"""

import secrets
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field

from shared.redis.events import EventType

ALL_EVENTS = "*"
EVENT_CHOICES = [ALL_EVENTS, *EventType]
URL_MAX_LENGTH = 2048
# A tenant's webhooks are matched against every event it publishes: a bound keeps that cheap and a runaway client
# from registering thousands.
MAX_WEBHOOKS_PER_TENANT = 100


def new_webhook_id() -> str:
    return f"wh_{secrets.token_hex(8)}"


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # given up: a final answer (4xx other than 429, 3xx), or every attempt failed


class DeliveryOutcome(BaseModel):
    """How delivering one event to one webhook ended."""

    event_id: str = Field(description="The event's id (its stream id)")
    status: DeliveryStatus
    http_status: int | None = Field(None, description="The endpoint's last answer; none when it never answered")
    error: str | None = Field(None, description="Why it failed, in words: a timeout, a refused address, an answer")
    attempts: int = Field(ge=0, description="Tries made (a try refused for its address sends nothing)")
    finished_at: AwareDatetime


class Webhook(BaseModel):
    id: str
    url: str
    events: list[str] = Field(description="The event types it receives (names of EventType), or ['*'] for all")
    task_id: str | None = Field(None, description="Only this task's events; none for every task's")
    created_at: AwareDatetime
    last_delivery: DeliveryOutcome | None = Field(None, description="Its most recent delivery; none before the first")

    def wants(self, event_type: str, task_id: str) -> bool:
        """Whether events of this type and task are for it (when they happened is the database's to check)."""
        return (ALL_EVENTS in self.events or event_type in self.events) and self.task_id in (None, task_id)
