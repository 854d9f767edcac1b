"""Answering one message request: decide, log, wait the simulated model time, then reply or fail."""

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from starlette.responses import JSONResponse, Response

from simulator.bursts import BurstSchedule
from simulator.conversation import Conversation
from simulator.message import build_message, request_digest
from simulator.protocol import ApiError, MessagesRequest
from simulator.request_log import RequestLog
from simulator.responder import Decision, Responder
from simulator.scenarios import InjectedError, ScenarioSet
from simulator.sse import ChunkedResponse, encode_event, message_events

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SimulatorConfig:
    scenarios: ScenarioSet = field(default_factory=ScenarioSet)
    latency_ms: int = 0  # simulated model time added to every answer
    request_log: Path | None = None


class SimulatorService:
    """The simulated model behind `POST /v1/messages`."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.responder = Responder(config.scenarios)
        self.request_log = RequestLog(config.request_log)
        self.bursts = BurstSchedule(config.scenarios.bursts)

    async def answer(self, request: MessagesRequest, path: str) -> Response:
        conversation = Conversation(request)
        burst = self.bursts.answering()
        if burst is not None:
            source, current = burst
            self.request_log.record(path=path, conversation=conversation, source=source, status=current.error.status)
            log.info("message_answered", source=source, model=request.model, status=current.error.status)
            raise self._injected_error(current.error, {"request-id": f"req_sim_{request_digest(request)[:24]}"})
        try:
            decision = self.responder.decide(conversation)
        except ApiError as exc:
            self.request_log.record(path=path, conversation=conversation, source="rejected", status=exc.status)
            raise
        status = decision.error.status if decision.error else 200
        self.request_log.record(path=path, conversation=conversation, source=decision.source, status=status)
        log.info(
            "message_answered",
            source=decision.source,
            model=request.model,
            turn=conversation.assistant_turns,
            stream=request.stream,
            status=status,
        )
        await asyncio.sleep((self.config.latency_ms + decision.delay_ms) / 1000)
        headers = {"request-id": f"req_sim_{request_digest(request)[:24]}"}
        if decision.error:
            raise self._injected_error(decision.error, headers)
        return self._reply(request, decision, headers)

    @staticmethod
    def _injected_error(error: InjectedError, headers: dict[str, str]) -> ApiError:
        if error.retry_after is not None:
            headers = {**headers, "retry-after": str(error.retry_after)}
        return ApiError(error.status, error.message, error_type=error.type, headers=headers)

    @staticmethod
    def _reply(request: MessagesRequest, decision: Decision, headers: dict[str, str]) -> Response:
        message = build_message(request, decision)
        cut = decision.cut_after_events
        if cut is not None:
            log.info("stream_cut", source=decision.source, after_events=cut, stream=request.stream)
        if request.stream:
            chunks = [encode_event(event) for event in message_events(message)]
            headers = {**headers, "cache-control": "no-cache"}
            return ChunkedResponse(
                chunks[:cut] if cut is not None else chunks,
                media_type="text/event-stream; charset=utf-8",
                headers=headers,
                complete=cut is None,
            )
        if cut is None:
            return JSONResponse(message, headers=headers)
        # A non-streamed answer is cut halfway through a body whose full length was announced.
        body = json.dumps(message).encode()
        return ChunkedResponse(
            [body[: len(body) // 2]],
            media_type="application/json",
            headers=headers,
            complete=False,
            content_length=len(body),
        )
