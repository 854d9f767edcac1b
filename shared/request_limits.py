"""Request hygiene before any route runs: a body's size and type are checked before it is read.

A pure ASGI middleware rather than Starlette's BaseHTTPMiddleware: it sees the body as it streams in, so a body
over the limit is refused after the limit's worth of bytes, not after it has been read whole, whether it declares
its Content-Length or comes chunked.
"""

from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import AppError, PayloadTooLargeError, UnsupportedMediaTypeError, app_error_response

MAX_BODY_BYTES = 1_048_576
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def _is_multipart(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() == "multipart/form-data"


def _declared_body(headers: Headers) -> bool:
    """Whether the request says a body follows (HTTP/1.1 has one only with a length or a transfer coding)."""
    length = headers.get("content-length")
    return "transfer-encoding" in headers or (length is not None and length.strip() not in ("", "0"))


class RequestLimits:
    """413 for a body over `max_body_bytes`; 415 for a non-empty body that is not JSON in a POST, PUT or PATCH.

    An empty POST stays allowed: it is how `POST /tasks?description=...` and `POST /tasks/{id}/cancel` are sent.
    The paths of `uploads` take multipart/form-data too, up to their own limit (POST /context-packs).
    """

    def __init__(
        self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES, uploads: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.uploads = dict(uploads or {})

    def _limit(self, scope: Scope) -> int:
        return self.uploads.get(scope["path"], self.max_body_bytes)

    def _too_large(self, limit: int) -> PayloadTooLargeError:
        return PayloadTooLargeError(f"the request body is larger than {limit} bytes")

    def _refusal(self, scope: Scope, headers: Headers) -> AppError | None:
        length, limit = headers.get("content-length", ""), self._limit(scope)
        if length.isdigit() and int(length) > limit:
            return self._too_large(limit)
        content_type = headers.get("content-type", "")
        if scope["path"] in self.uploads and _is_multipart(content_type):
            return None
        if scope["method"] in METHODS_WITH_BODY and _declared_body(headers) and not _is_json(content_type):
            return UnsupportedMediaTypeError(
                f"the request body must be JSON (Content-Type: application/json), not "
                f"{headers.get('content-type') or 'a body without a Content-Type'}; "
                "or send no body and pass the fields as query parameters"
            )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await app_error_response(refusal)(scope, receive, send)
            return
        if not _declared_body(headers):
            await self.app(scope, receive, send)
            return
        await self._counting(scope, receive, send)

    async def _counting(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Counts the body as it arrives; past the limit, answers 413 itself and tells the app the client left."""
        received = 0
        limit = self._limit(scope)
        refused = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not response_started:
                        await app_error_response(self._too_large(limit))(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # the 413 is the answer; whatever the app makes of the "disconnect" goes nowhere
            response_started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
