"""A small agent that takes its offers from its Redis offer queue, as a real one does, and lets the test decide every
outcome.

It accepts each offer in PostgreSQL and records it (or, told to refuse, refuses it back to the orchestrator); results
are pushed by the test itself through Redis, exactly as a real agent would, so the test controls timing, failures and
duplicates. It serves HTTP only to have an address.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI

from shared.database import DatabaseManager
from shared.models import AgentCapability, AgentStatus, ProviderWait, ReportedResult, ResultStatus, TaskExecutionRequest
from shared.redis.offers import OFFER_CONSUMER, OfferRefusal
from shared.redis_manager import RedisManager
from shared.serving import serve_in_thread

ANY_PORT = (1024, 65535)


@dataclass
class FakeAgent:
    agent_id: str
    capabilities: list[AgentCapability]
    slots: int = 1
    refuse: bool = False
    offers: int = 0  # every offer taken, refused or not
    on_execute: Callable[[], None] | None = None  # run once an offer is recorded
    url: str = ""
    received: list[TaskExecutionRequest] = field(default_factory=list)
    running: set[str] = field(default_factory=set)  # subtasks received and not yet reported, as heartbeats say
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self) -> AgentStatus:
        fields = {
            "agent_id": self.agent_id,
            "url": self.url,
            "port": int(self.url.rsplit(":", 1)[1]),
            "is_available": len(self.running) < self.slots,
            "current_tasks": sorted(self.running),
            "capabilities": self.capabilities,
            "slots": self.slots,
        }
        # A fake agent's port is whatever the OS gave it; the tests widen the agent port range to match.
        return AgentStatus.model_validate(fields, context={"agent_port_range": ANY_PORT})

    def requests_for(self, description: str) -> list[TaskExecutionRequest]:
        with self._lock:
            return [request for request in self.received if request.subtask.description == description]

    def app(self) -> FastAPI:
        return FastAPI()

    async def take_offers(self, redis: RedisManager, db: DatabaseManager) -> None:
        """Until cancelled: take each offer from the agent's queue, accept and record it (or refuse it), settle it."""
        queue = redis.offers.of(self.agent_id)
        while True:
            for payload in await queue.take_many(OFFER_CONSUMER, timeout=0.2, limit=64):
                await self._take(redis, db, TaskExecutionRequest.model_validate_json(payload))
                await queue.ack(OFFER_CONSUMER, payload)

    async def _take(self, redis: RedisManager, db: DatabaseManager, request: TaskExecutionRequest) -> None:
        self.offers += 1
        if self.refuse:
            refusal = OfferRefusal(
                subtask_id=request.subtask.id,
                attempt=request.subtask.attempt_count,
                delivery_token=request.subtask.delivery_token or "",
                agent_id=self.agent_id,
                reason="told to refuse",
            )
            await redis.offers.refusals.push(refusal.model_dump_json())
            return
        subtask = request.subtask
        if not await db.repositories().subtasks.accept_delivery(
            subtask.id, subtask.delivery_token or "", self.agent_id
        ):
            return  # taken back meanwhile: a real agent drops it too
        with self._lock:
            self.received.append(request)
            self.running.add(request.subtask.id)
        if self.on_execute is not None:
            self.on_execute()


@contextmanager
def serving(agent: FakeAgent) -> Iterator[FakeAgent]:
    """Serve the fake agent; its registry entry (the heartbeat) is written by the test."""
    with serve_in_thread(agent.app(), name=agent.agent_id, lifespan="off") as base_url:
        agent.url = base_url
        yield agent


def result_for(
    request: TaskExecutionRequest,
    agent_id: str,
    *,
    status: ResultStatus = ResultStatus.COMPLETED,
    output: str | None = None,
    error: str | None = None,
    retryable: bool = False,
    provider_wait: ProviderWait | None = None,
) -> ReportedResult:
    completed = status is ResultStatus.COMPLETED
    return ReportedResult(
        subtask_id=request.subtask.id,
        task_id=request.task_id,
        agent_id=agent_id,
        attempt=request.subtask.attempt_count,
        delivery_token=request.subtask.delivery_token,
        status=status,
        output=(output or f"output of {request.subtask.description}") if completed else None,
        error=None if completed else (error or "it failed"),
        retryable=retryable,
        provider_wait=provider_wait,
        execution_time=0.05,
        assignment=request.assignment,  # what a real agent reports back: the orchestrator checks it
        trace_id=request.subtask.trace_id,
    )
