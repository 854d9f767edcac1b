"""The parts of Anthropic's Messages API wire format the simulator reads and writes."""

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

JsonObject = dict[str, Any]
ModelT = TypeVar("ModelT", bound=BaseModel)

# Anthropic's error `type` for each HTTP status; anything else 5xx is an `api_error`.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for(status: int) -> str:
    """The Anthropic error type a real server uses for `status`."""
    default = "invalid_request_error" if status < 500 else "api_error"
    return ERROR_TYPES.get(status, default)


def error_body(status: int, message: str, error_type: str | None = None) -> JsonObject:
    """Anthropic's error envelope: `{"type": "error", "error": {"type": ..., "message": ...}}`."""
    return {"type": "error", "error": {"type": error_type or error_type_for(status), "message": message}}


class ApiError(Exception):
    """An error answer with Anthropic's shape (raised by request handling, rendered by one handler)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or error_type_for(status)
        self.headers = headers or {}

    def body(self) -> JsonObject:
        return error_body(self.status, self.message, self.error_type)


class MessagesRequest(BaseModel):
    """A `POST /v1/messages` body, lenient like the real server: unknown fields are kept, not refused.

    The CLI sends `thinking`, `context_management`, `metadata`, inline `system` messages and more;
    only what a real server would reject (missing `model`, `max_tokens`, `messages`) fails here.
    """

    model_config = ConfigDict(extra="allow")

    model: str
    max_tokens: int = Field(ge=1)
    messages: list[JsonObject]
    system: str | list[JsonObject] | None = None
    tools: list[JsonObject] | None = None
    tool_choice: JsonObject | None = None
    stream: bool = False


class CountTokensRequest(BaseModel):
    """A `POST /v1/messages/count_tokens` body: like a message request without `max_tokens`."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[JsonObject]
    system: str | list[JsonObject] | None = None
    tools: list[JsonObject] | None = None


def parse_request(model: type[ModelT], body: object) -> ModelT:
    """Validate `body` or raise a 400 `ApiError` phrased like Anthropic's (`field: problem`)."""
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise ApiError(400, f"{location}: {first['msg']}") from exc
