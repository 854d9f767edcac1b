"""A small agent that speaks the agent contract (POST /execute) and lets the test decide every outcome.

It records what it was sent and answers 200 (or 503 when told to refuse); results are pushed by the test
itself through Redis, exactly as a real agent would, so the test controls timing, failures and duplicates.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from shared.models import AgentCapability, AgentStatus, ProviderWait, ReportedResult, ResultStatus, TaskExecutionRequest
from shared.serving import serve_in_thread

ANY_PORT = (1024, 65535)


@dataclass
class FakeAgent:
    agent_id: str
    capabilities: list[AgentCapability]
    slots: int = 1
    refuse: bool = False
    offers: int = 0  # every POST /execute, refused or not
    on_execute: Callable[[], None] | None = None  # run before an accepted request is answered
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
        app = FastAPI()

        @app.post("/execute")
        async def execute(request: TaskExecutionRequest) -> JSONResponse:
            self.offers += 1
            if self.refuse:
                return JSONResponse({"error": "busy"}, status_code=503)
            with self._lock:
                self.received.append(request)
                self.running.add(request.subtask.id)
            if self.on_execute is not None:
                self.on_execute()
            return JSONResponse({"status": "accepted", "agent_id": self.agent_id})

        return app


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
