"""The agent's HTTP API (seed 003 T007/T008, T024): health, status, and accepting a subtask to run.

/health is open and says only whether the agent serves; /status, /execute, /drain and /stop answer the orchestrator
alone (a token derived from FLEET_SECRET, a signed assignment, a signed drain or stop command: shared/fleet_trust.py).
"""

from typing import Annotated, Any, Literal

import claude_agent_sdk
from fastapi import APIRouter, Depends, Header, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from agent.heartbeat import agent_status
from agent.metrics import AgentMetrics
from agent.offers import OfferBook
from agent.runner import SubtaskRunner
from shared.config import Settings
from shared.errors import NotFoundError, error_responses
from shared.fleet_trust import FleetTrust
from shared.models import AgentState, AgentStatus, DrainCommand, StopCommand, TaskExecutionRequest
from shared.prometheus import OPENMETRICS, PLAIN_TEXT, exposition, prometheus_media_range

router = APIRouter()


class HealthResponse(BaseModel):
    status: Literal["healthy"] = "healthy"
    agent_id: str
    is_available: bool
    sdk_version: str


class ExecuteAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    agent_id: str


class DrainAccepted(BaseModel):
    agent_id: str
    state: AgentState = Field(description="`draining`: it refuses offers from now on")
    attempts_stopped: int = Field(ge=0, description="Running attempts stopped by this command (0 when repeated)")


class StopAccepted(BaseModel):
    agent_id: str
    subtask_id: str
    attempt: int = Field(ge=1)
    stopping: Literal[True] = Field(
        True, description="The attempt is being stopped; its result (failed, not retryable) names the reason"
    )


# Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request for a lookup.
async def get_runner(request: Request) -> SubtaskRunner:
    runner: SubtaskRunner = request.app.state.runner
    return runner


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_offers(request: Request) -> OfferBook:
    offers: OfferBook = request.app.state.offers
    return offers


async def get_trust(request: Request) -> FleetTrust:
    trust: FleetTrust = request.app.state.trust
    return trust


async def get_metrics(request: Request) -> AgentMetrics:
    metrics: AgentMetrics = request.app.state.metrics
    return metrics


Trust = Annotated[FleetTrust, Depends(get_trust)]
Metrics = Annotated[AgentMetrics, Depends(get_metrics)]
Runner = Annotated[SubtaskRunner, Depends(get_runner)]
Offers = Annotated[OfferBook, Depends(get_offers)]
AgentSettings = Annotated[Settings, Depends(get_settings)]


@router.get("/health", response_model=HealthResponse, responses=error_responses(500), tags=["agent"])
async def health(runner: Runner, settings: AgentSettings) -> HealthResponse:
    """Liveness, whether a subtask would be accepted now, and the Claude Agent SDK version (what it runs: /status)."""
    return HealthResponse(
        agent_id=settings.agent_id, is_available=runner.is_available, sdk_version=claude_agent_sdk.__version__
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        **error_responses(500),
        200: {
            "description": "Prometheus text format (OpenMetrics when `Accept` prefers it): slots, attempts by "
            "outcome and duration, tokens and cost by model, provider errors; no task content",
            "content": {PLAIN_TEXT: {"schema": {"type": "string"}}, OPENMETRICS: {"schema": {"type": "string"}}},
        },
    },
    tags=["agent"],
)
async def metrics(metrics: Metrics, accept: Annotated[str | None, Header(include_in_schema=False)] = None) -> Response:
    """This agent's Prometheus metrics, for a scrape (no key: they hold counts, never a task's content)."""
    body, content_type = exposition(metrics.registry, prometheus_media_range(accept))
    return Response(body, media_type=content_type)


# Anyone who reaches an agent can send it a body, and the signature is checked only once it is parsed: a larger body
# is refused as it streams in. Larger than the orchestrator's 1 MiB, since an offer carries its dependencies' outputs.
MAX_OFFER_BYTES = 16 * 1024 * 1024

UNTRUSTED: dict[int | str, dict[str, Any]] = {
    401: {**error_responses(401)[401], "description": "Not the orchestrator: no or a wrong credential"}
}
# auto_error=False: the check answers its own 401, in the project's error shape.
fleet_status_token = HTTPBearer(
    scheme_name="FleetStatusToken",
    description="A token derived from FLEET_SECRET (shared.fleet_trust.fleet_status_token); never the secret itself",
    auto_error=False,
)


@router.get("/status", response_model=AgentStatus, responses={**error_responses(500), **UNTRUSTED}, tags=["agent"])
async def status(
    runner: Runner,
    settings: AgentSettings,
    trust: Trust,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(fleet_status_token)],
) -> AgentStatus:
    """The full AgentStatus the heartbeat registers, with the host's CPU and memory use (fleet status token)."""
    trust.check_status_token(credentials.credentials if credentials else None)
    return agent_status(settings, runner)


@router.post(
    "/execute",
    response_model=ExecuteAccepted,
    responses={
        **error_responses(500),
        **UNTRUSTED,
        400: {**error_responses(400)[400], "description": "Malformed request, or a capability this agent lacks"},
        413: {
            **error_responses(413)[413],
            "description": f"The body is over {MAX_OFFER_BYTES} bytes (refused as it streams in)",
        },
        415: {**error_responses(415)[415], "description": "The body is not JSON"},
        409: {
            **error_responses(409)[409],
            "description": "The offer is not this agent's (taken back, or superseded), or the agent was told to drain",
        },
        503: {**error_responses(503)[503], "description": "All slots are busy, or the agent is shutting down"},
    },
    tags=["agent"],
)
async def execute(request: TaskExecutionRequest, offers: Offers, settings: AgentSettings) -> ExecuteAccepted:
    """Accept one offer of a subtask attempt, signed by the orchestrator, and run it in the background; its result
    goes to the result queue. (The orchestrator's dispatcher delivers through the agent's Redis offer queue; this is
    the same acceptance, one offer at a time.)"""
    [outcome] = await offers.take([request])
    if outcome.refusal is not None:
        raise outcome.refusal
    return ExecuteAccepted(agent_id=settings.agent_id)


@router.post(
    "/drain",
    response_model=DrainAccepted,
    responses={
        **error_responses(500),
        **UNTRUSTED,
        400: {**error_responses(400)[400], "description": "Malformed command"},
        413: {**error_responses(413)[413], "description": f"The body is over {MAX_OFFER_BYTES} bytes"},
        415: {**error_responses(415)[415], "description": "The body is not JSON"},
    },
    tags=["agent"],
)
async def drain(command: DrainCommand, runner: Runner, settings: AgentSettings, trust: Trust) -> DrainAccepted:
    """The orchestrator declared this agent failed: from now on it refuses offers (409) and its heartbeats say
    `draining`; its running attempts stop at once (the orchestrator already gave them to other agents). Signed by
    the fleet for this agent process; repeating it changes nothing."""
    trust.check_drain(command, settings.agent_id, runner.started_at)
    stopped = runner.drain(command.reason)
    return DrainAccepted(agent_id=settings.agent_id, state=runner.state, attempts_stopped=stopped)


@router.post(
    "/stop",
    response_model=StopAccepted,
    responses={
        **error_responses(500),
        **UNTRUSTED,
        400: {**error_responses(400)[400], "description": "Malformed command"},
        404: {
            **error_responses(404)[404],
            "description": "This agent does not run that offer (any more): there is nothing to stop",
        },
        413: {**error_responses(413)[413], "description": f"The body is over {MAX_OFFER_BYTES} bytes"},
        415: {**error_responses(415)[415], "description": "The body is not JSON"},
    },
    tags=["agent"],
)
async def stop(command: StopCommand, runner: Runner, settings: AgentSettings, trust: Trust) -> StopAccepted:
    """The orchestrator ended the attempt's task (cancelled, or past its deadline): the attempt stops at once and is
    reported failed, not retryable, with the reason. Signed by the fleet for this agent and this very offer
    (delivery token); repeating it changes nothing."""
    trust.check_stop(command, settings.agent_id)
    if not runner.stop(command.subtask_id, command.attempt, command.delivery_token, command.reason):
        raise NotFoundError(
            f"{settings.agent_id} runs no attempt {command.attempt} of subtask {command.subtask_id} under that offer: "
            "it ended already, or was never this agent's"
        )
    return StopAccepted(agent_id=settings.agent_id, subtask_id=command.subtask_id, attempt=command.attempt)
