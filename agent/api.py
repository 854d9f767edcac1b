"""The agent's HTTP API (seed 003 T007/T008, T024): health, status, and accepting a subtask to run."""

from typing import Annotated, Literal

import claude_agent_sdk
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from agent.heartbeat import agent_status
from agent.offers import OfferBook
from agent.runner import SubtaskRunner
from shared.config import Settings
from shared.errors import error_responses
from shared.models import AgentStatus, TaskExecutionRequest

router = APIRouter()


class HealthResponse(BaseModel):
    status: Literal["healthy"] = "healthy"
    agent_id: str
    is_available: bool
    current_task: str | None
    sdk_version: str


class ExecuteAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    agent_id: str


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


Runner = Annotated[SubtaskRunner, Depends(get_runner)]
Offers = Annotated[OfferBook, Depends(get_offers)]
AgentSettings = Annotated[Settings, Depends(get_settings)]


@router.get("/health", response_model=HealthResponse, responses=error_responses(500), tags=["agent"])
async def health(runner: Runner, settings: AgentSettings) -> HealthResponse:
    """Liveness, whether a subtask would be accepted now, and the Claude Agent SDK version."""
    current_tasks = runner.current_tasks
    return HealthResponse(
        agent_id=settings.agent_id,
        is_available=runner.is_available,
        current_task=current_tasks[0] if current_tasks else None,
        sdk_version=claude_agent_sdk.__version__,
    )


@router.get("/status", response_model=AgentStatus, responses=error_responses(500), tags=["agent"])
async def status(runner: Runner, settings: AgentSettings) -> AgentStatus:
    """The full AgentStatus the heartbeat registers, with the host's CPU and memory use."""
    return agent_status(settings, runner)


@router.post(
    "/execute",
    response_model=ExecuteAccepted,
    responses={
        **error_responses(500),
        400: {**error_responses(400)[400], "description": "Malformed request, or a capability this agent lacks"},
        409: {**error_responses(409)[409], "description": "The offer is not this agent's: taken back, or superseded"},
        503: {**error_responses(503)[503], "description": "All slots are busy, or the agent is shutting down"},
    },
    tags=["agent"],
)
async def execute(
    request: TaskExecutionRequest, runner: Runner, offers: Offers, settings: AgentSettings
) -> ExecuteAccepted:
    """Accept one offer of a subtask attempt and run it in the background; its result goes to the result queue."""
    reservation = runner.reserve(request)
    if reservation is not None:  # None: this very attempt already runs here, a repeated delivery
        try:
            await offers.accept(request)
        except BaseException:
            runner.release(reservation)
            raise
        runner.start(reservation)
    return ExecuteAccepted(agent_id=settings.agent_id)
