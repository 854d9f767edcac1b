"""POST /tasks with an `Idempotency-Key`: one task per key and body, however often and however concurrently it comes.

The first request with a key claims it in Redis (shared/redis/idempotency.py) and submits; the answer is kept for
IDEMPOTENCY_TTL_SECONDS and every later request with the key and the same body gets it back (200, no second
decomposition, no second task). A duplicate that arrives while the first is still being planned polls the record
until the answer is there. The same key with another body is a 409.

Failures do not stick: when the submit fails (400, 429, 503, a crash) the claim is released, and the next request
with the key submits afresh. A claim whose owner died (the orchestrator was killed mid-plan) is held by a lease the
owner renews while it works (IDEMPOTENCY_LEASE_SECONDS): it expires within one lease of the death, and a waiting or
later duplicate takes the key over.

Redis down: a request with the key gets 503 (the guard cannot be kept, and a client retrying through an outage is
just who would get a second task); a request without a key is not held to Redis.
"""

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable

import redis.exceptions
import structlog

from shared.config import Settings
from shared.errors import ConflictError
from shared.models import TaskCreatedResponse, TaskCreateRequest
from shared.redis.idempotency import IdempotencyRecords

log = structlog.get_logger(__name__)

# How long a duplicate waits for the first request's answer before it is told to come back (409, Retry-After).
WAIT_SECONDS = 60.0
RETRY_AFTER_SECONDS = 5
FIRST_POLL_SECONDS = 0.02
MAX_POLL_SECONDS = 0.25

Submit = Callable[[], Awaitable[TaskCreatedResponse]]


def request_fingerprint(request: TaskCreateRequest) -> str:
    """A digest of what the request asks, as validated: the query form and the JSON form of one request agree."""
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


class IdempotentSubmits:
    def __init__(self, records: IdempotencyRecords, settings: Settings) -> None:
        self._records = records
        self._ttl = settings.idempotency_ttl_seconds
        self._lease = settings.idempotency_lease_seconds

    async def submit(self, key: str, request: TaskCreateRequest, submit: Submit) -> tuple[TaskCreatedResponse, bool]:
        """The answer to the request with `key`, and whether it is a replay of an earlier request's answer."""
        fingerprint = request_fingerprint(request)
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + WAIT_SECONDS
        poll = FIRST_POLL_SECONDS
        while True:
            if await self._records.claim(key, fingerprint, owner, self._lease):
                return await self._submit_as_owner(key, owner, submit), False
            record = await self._records.read(key)
            if record is None:
                continue  # released or expired since the claim was refused: claim it again
            if record.fingerprint != fingerprint:
                raise ConflictError(
                    "this Idempotency-Key was used for another request (a different description, user_id, task_type, "
                    "context_pack_id or max_cost_usd); use a new key for a new request"
                )
            if record.response is not None:
                return TaskCreatedResponse.model_validate_json(record.response), True
            if time.monotonic() >= deadline:
                raise ConflictError(
                    f"the first request with this Idempotency-Key is still being processed after {WAIT_SECONDS:g} s; "
                    f"retry in {RETRY_AFTER_SECONDS} s to get its answer",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                )
            await asyncio.sleep(poll)
            poll = min(poll * 2, MAX_POLL_SECONDS)

    async def _submit_as_owner(self, key: str, owner: str, submit: Submit) -> TaskCreatedResponse:
        renewal = asyncio.create_task(self._renew_while_working(key, owner))
        try:
            created = await submit()
        except BaseException:
            await self._release(key, owner)
            raise
        finally:
            renewal.cancel()
        await self._keep_answer(key, owner, created)
        return created

    async def _renew_while_working(self, key: str, owner: str) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                if not await self._records.renew(key, owner, self._lease):
                    log.warning("idempotency_claim_lost", while_submitting=True)
                    return
            except redis.exceptions.RedisError as error:
                log.warning("idempotency_claim_not_renewed", error=str(error))

    async def _release(self, key: str, owner: str) -> None:
        try:
            await self._records.release(key, owner)
        except redis.exceptions.RedisError as error:
            # The lease runs out instead: the key is free again within IDEMPOTENCY_LEASE_SECONDS.
            log.warning("idempotency_claim_not_released", error=str(error))

    async def _keep_answer(self, key: str, owner: str, created: TaskCreatedResponse) -> None:
        """Store the answer for the duplicates; the task exists whatever Redis says, so the answer stands."""
        try:
            kept = await self._records.complete(key, owner, created.model_dump_json(), self._ttl)
        except redis.exceptions.RedisError as error:
            log.warning("idempotency_answer_not_kept", task_id=created.task_id, error=str(error))
            return
        if not kept:  # the lease ran out (the event loop stalled past it) and a duplicate took the key over
            log.warning("idempotency_claim_lost", task_id=created.task_id)
