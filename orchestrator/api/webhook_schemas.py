"""Request and response bodies of the webhook endpoints (orchestrator/api/webhooks.py)."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from shared.webhooks import ALL_EVENTS, EVENT_CHOICES, URL_MAX_LENGTH, Webhook

EventName = Annotated[str, Field(json_schema_extra={"enum": EVENT_CHOICES})]


class WebhookCreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(
        description="Where events are POSTed: an http(s) URL of a public address (see WEBHOOK_ALLOW_PRIVATE)"
    )
    events: list[EventName] = Field(
        min_length=1,
        max_length=len(EVENT_CHOICES),
        description=f"The event types to receive (names of the lifecycle events), or ['{ALL_EVENTS}'] for all",
    )
    task_id: str | None = Field(
        None, min_length=1, max_length=128, pattern=r"^[^\x00]*$", description="Only this task's events"
    )

    @field_validator("url")
    @classmethod
    def check_url(cls, url: HttpUrl) -> HttpUrl:
        if len(str(url)) > URL_MAX_LENGTH:
            raise ValueError(f"is longer than {URL_MAX_LENGTH} characters")
        if url.username or url.password:
            raise ValueError("must not carry credentials: receivers check the signature of each delivery instead")
        return url

    @field_validator("events")
    @classmethod
    def check_events(cls, events: list[str]) -> list[str]:
        unknown = [name for name in events if name not in EVENT_CHOICES]
        if unknown:
            raise ValueError(
                f"unknown event type {', '.join(map(repr, unknown))}; use {', '.join(EVENT_CHOICES[1:])} "
                f"or '{ALL_EVENTS}' for all"
            )
        if ALL_EVENTS in events and len(events) > 1:
            raise ValueError(f"'{ALL_EVENTS}' means every event type: list it alone")
        return list(dict.fromkeys(events))


class WebhookCreatedResponse(Webhook):
    secret: str = Field(
        description="The key to check each delivery's signature with (`whsec_...`): shown this once, keep it safe"
    )


class WebhookListResponse(BaseModel):
    webhooks: list[Webhook]
