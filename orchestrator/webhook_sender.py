"""One event to one webhook: a signed POST to a checked address, retried with back-off while it may still succeed.

Connection errors, timeouts, 5xx and 429 are retried, up to WEBHOOK_MAX_ATTEMPTS requests, the wait doubling from
WEBHOOK_RETRY_BACKOFF_SECONDS; any other answer is final (a 4xx will not change by asking again, and redirects are
not followed: a 3xx is the receiver's answer, not a place to go). A webhook deleted meanwhile gets no more tries.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from orchestrator.webhook_addresses import IPAddress, RefusedAddressError, checked_address
from orchestrator.webhook_signing import signature_headers, webhook_key
from shared.config import Settings
from shared.errors import InvalidInputError
from shared.fleet_trust import require_fleet_secret
from shared.models import utc_now
from shared.redis.events import StreamedEvent
from shared.webhooks import DeliveryOutcome, DeliveryStatus, Webhook

RETRY_BACKOFF_MAX_SECONDS = 60.0
USER_AGENT = "mats-webhooks/1"


class DeliveryFailure(Exception):
    """A request that did not get a 2xx: what happened, and the answer's status when there was one."""

    def __init__(self, error: str, http_status: int | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.http_status = http_status


class RetryableFailure(DeliveryFailure):
    """Worth another try: the endpoint may be back, or less busy, in a moment."""


class WebhookGone(Exception):
    """The webhook was deleted between two tries."""


def webhook_client(settings: Settings) -> httpx.AsyncClient:
    """The client webhooks go out through: no redirects, no proxies or certificates from the environment."""
    return httpx.AsyncClient(
        timeout=settings.webhook_timeout_seconds,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=settings.webhook_concurrency),
        headers={"User-Agent": USER_AGENT},
    )


def pinned_request(url: str, address: IPAddress) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL with its host replaced by the checked address, and the Host header and TLS server name (SNI) that
    keep the request what it was: the receiver sees its own name and its certificate is checked against it."""
    parts = urlsplit(url)
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    extensions = {"sni_hostname": parts.hostname or ""} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": parts.netloc}, extensions


class WebhookSender:
    def __init__(
        self, settings: Settings, client: httpx.AsyncClient, still_registered: Callable[[str], Awaitable[bool]]
    ) -> None:
        self._settings = settings
        self._client = client
        self._still_registered = still_registered
        # Bounds the requests in flight, whatever the number of events and webhooks: waits for back-off hold none.
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)

    async def deliver(self, webhook: Webhook, streamed: StreamedEvent) -> DeliveryOutcome | None:
        """Deliver the event until it is received or given up on; None when the webhook was deleted meanwhile."""
        body = json.dumps(streamed.event.as_json(streamed.event_id), separators=(",", ":")).encode()
        key = webhook_key(require_fleet_secret(self._settings), self._settings.tenant_id, webhook.id)
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._settings.webhook_max_attempts),
            wait=wait_exponential(
                multiplier=self._settings.webhook_retry_backoff_seconds, max=RETRY_BACKOFF_MAX_SECONDS
            ),
            retry=retry_if_exception_type(RetryableFailure),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if attempts and not await self._still_registered(webhook.id):
                        raise WebhookGone
                    attempts += 1
                    http_status = await self._post(webhook.url, streamed.event_id, body, key)
        except WebhookGone:
            return None
        except DeliveryFailure as failure:
            return self._outcome(streamed, DeliveryStatus.FAILED, attempts, failure.http_status, failure.error)
        return self._outcome(streamed, DeliveryStatus.DELIVERED, attempts, http_status, None)

    async def _post(self, url: str, event_id: str, body: bytes, key: bytes) -> int:
        """One signed request to the checked address; its 2xx status, or DeliveryFailure saying what went wrong."""
        try:
            address = await checked_address(url, allow_private=self._settings.webhook_allow_private)
        except RefusedAddressError as refused:
            raise DeliveryFailure(refused.message) from None
        except InvalidInputError as unresolved:  # the name server may answer again soon
            raise RetryableFailure(unresolved.message) from None
        target, headers, extensions = pinned_request(url, address)
        headers |= {"Content-Type": "application/json", **signature_headers(key, event_id, int(time.time()), body)}
        try:
            async with self._slots:
                # httpx's timeout bounds each read, not the request: an endpoint sending its answer a byte at a
                # time would hold the slot as long as it liked. The whole request gets the timeout too.
                async with asyncio.timeout(self._settings.webhook_timeout_seconds):
                    status = await self._status_of(target, body, headers, extensions)
        except (httpx.TimeoutException, TimeoutError):
            raise RetryableFailure(f"no answer within {self._settings.webhook_timeout_seconds:g} s") from None
        except httpx.TransportError as error:
            raise RetryableFailure(f"could not reach {address}: {type(error).__name__}: {error}") from None
        if 200 <= status < 300:
            return status
        if status == 429 or status >= 500:
            raise RetryableFailure(f"answered HTTP {status}", status)
        if 300 <= status < 400:
            raise DeliveryFailure(f"answered HTTP {status}, a redirect (redirects are not followed)", status)
        raise DeliveryFailure(f"answered HTTP {status}", status)

    async def _status_of(self, target: str, body: bytes, headers: dict[str, str], extensions: dict[str, str]) -> int:
        # Streamed and left unread: the answer's status is all we need, however much a receiver sends back.
        async with self._client.stream("POST", target, content=body, headers=headers, extensions=extensions) as answer:
            return answer.status_code

    @staticmethod
    def _outcome(
        streamed: StreamedEvent, status: DeliveryStatus, attempts: int, http_status: int | None, error: str | None
    ) -> DeliveryOutcome:
        return DeliveryOutcome(
            event_id=streamed.event_id,
            status=status,
            http_status=http_status,
            error=error,
            attempts=attempts,
            finished_at=utc_now(),
        )
