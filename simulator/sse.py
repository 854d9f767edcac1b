"""A message as Anthropic's server-sent event sequence, and a response that can drop mid-stream."""

import json
import logging
from collections.abc import Iterator

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from simulator.protocol import JsonObject

Event = tuple[str, JsonObject]
_CHUNK_CHARS = 16  # small chunks so clients really assemble deltas, as they must with a real model
_INCOMPLETE_RESPONSE = "ASGI callable returned without completing response."


def _chunks(text: str) -> list[str]:
    return [text[start : start + _CHUNK_CHARS] for start in range(0, len(text), _CHUNK_CHARS)] or [""]


def _block_events(index: int, block: JsonObject) -> Iterator[Event]:
    if block["type"] == "text":
        start: JsonObject = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": chunk} for chunk in _chunks(block["text"])]
    else:
        start = {**block, "input": {}}
        serialized = json.dumps(block["input"], ensure_ascii=False)
        deltas = [{"type": "input_json_delta", "partial_json": chunk} for chunk in _chunks(serialized)]
    yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
    for delta in deltas:
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": index}


def message_events(message: JsonObject) -> list[Event]:
    """`message_start`, `ping`, per-block start/deltas/stop, `message_delta` (stop reason, usage), `message_stop`."""
    usage = {key: value for key, value in message["usage"].items() if key != "service_tier"}
    opening = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    events: list[Event] = [("message_start", {"type": "message_start", "message": opening}), ("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        events.extend(_block_events(index, block))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def encode_event(event: Event) -> bytes:
    name, data = event
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


class ChunkedResponse(Response):
    """A response sent in chunks that can stop before its end, the way a dropped connection does.

    With `complete=False` the body is never finished: uvicorn then closes the connection and the
    client sees a truncated stream (an incomplete chunked body or a short Content-Length body).
    """

    def __init__(
        self,
        chunks: list[bytes],
        *,
        media_type: str,
        headers: dict[str, str],
        complete: bool = True,
        content_length: int | None = None,
    ) -> None:
        super().__init__(media_type=media_type, headers=headers)
        self.chunks = chunks
        self.complete = complete
        # Response.__init__ declared an empty body; the length, if any, is the one the caller announces.
        self.raw_headers = [(key, value) for key, value in self.raw_headers if key != b"content-length"]
        if content_length is not None:
            self.raw_headers.append((b"content-length", str(content_length).encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        for chunk in self.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if self.complete:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class _IgnoreDeliberateCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _INCOMPLETE_RESPONSE


_CUT_FILTER = _IgnoreDeliberateCuts()


def quiet_deliberate_cuts() -> None:
    """Hide uvicorn's error line for an unfinished response: for a scripted cut it is the point."""
    logging.getLogger("uvicorn.error").addFilter(_CUT_FILTER)  # idempotent: the same filter object
