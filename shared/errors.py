"""One error family for every service, rendered by one set of handlers as `{"error": ..., "detail": ...}`."""

import uuid
from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.outages import STORE_OUTAGES, unreachable_store

log = structlog.get_logger(__name__)

# A request that meets an unreachable store is worth a retry: a 503 saying when, not a 500.
OUTAGE_RETRY_AFTER_SECONDS = 5


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    error: str
    detail: Any = None


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each status code it may answer with, all with the ErrorResponse body."""
    return {status_code: {"model": ErrorResponse} for status_code in status_codes}


class AppError(Exception):
    status_code = 500

    def __init__(self, message: str, *, detail: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.headers = headers


class InvalidInputError(AppError):
    status_code = 400


class UnauthenticatedError(AppError):
    """No credentials, or ones nobody issued (or that were revoked): 401 with the challenge RFC 9110 asks for."""

    status_code = 401

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message, detail=detail, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenError(AppError):
    status_code = 403


class NotFoundError(AppError):
    status_code = 404


class ConflictError(AppError):
    status_code = 409


class PayloadTooLargeError(AppError):
    status_code = 413


class UnsupportedMediaTypeError(AppError):
    status_code = 415


class TooManyRequestsError(AppError):
    status_code = 429

    def __init__(self, message: str, *, retry_after_seconds: int, detail: Any = None) -> None:
        super().__init__(message, detail=detail, headers={"Retry-After": str(retry_after_seconds)})


class PoolFullError(AppError):
    """The pool already has MAX_POOL_SIZE live agents."""

    status_code = 429


class ServiceUnavailableError(AppError):
    status_code = 503


def describe_validation_errors(errors: list[Any]) -> str:
    """`description: String should have at least 10 characters; user_id: ...` from pydantic's error list."""
    parts = []
    for item in errors:
        if item.get("type") == "json_invalid":  # FastAPI's loc is ("body", <character offset>), not a field
            position = (item.get("loc") or ("?",))[-1]  # () when a JSON string was validated outside a request
            reason = (item.get("ctx") or {}).get("error", "JSON decode error")
            parts.append(f"the request body is not valid JSON: {reason} (at character {position})")
            continue
        location = [str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path")]
        message = str(item.get("msg", "is invalid")).removeprefix("Value error, ")
        parts.append(f"{'.'.join(location)}: {message}" if location else message)
    return "; ".join(parts) or "the request is invalid"


def _error(status_code: int, message: str, detail: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorResponse(error=message, detail=detail).model_dump(), status_code, headers=headers)


def app_error_response(error: AppError) -> JSONResponse:
    """The answer to an AppError, for the handler and for middleware that refuses a request before any route."""
    return _error(error.status_code, error.message, error.detail, error.headers)


async def _app_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AppError)
    return app_error_response(error)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # The seed's contract answers 400 for invalid input, not FastAPI's default 422.
    details = [{"loc": list(item.get("loc", ())), "msg": item.get("msg")} for item in error.errors()]
    return _error(400, describe_validation_errors(list(error.errors())), details)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    return _error(error.status_code, str(error.detail), headers=getattr(error, "headers", None))


async def _storage_outage(request: Request, error: Exception) -> JSONResponse:
    store = unreachable_store(error)
    log.warning("storage_unavailable", store=store, path=request.url.path, method=request.method, error=repr(error))
    message = (
        f"{store or 'PostgreSQL or Redis'} cannot be reached right now ({type(error).__name__}); "
        f"retry in {OUTAGE_RETRY_AFTER_SECONDS} s"
    )
    return _error(503, message, {"store": store}, headers={"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)})


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex[:12]
    log.exception("request_failed", error_id=error_id, path=request.url.path, method=request.method)
    message = f"internal error (id {error_id}); the service log has the details"
    # Starlette re-raises after this response and uvicorn then drops the connection; saying so up front keeps a
    # keep-alive client from sending its next request into a connection that is about to be reset.
    return _error(500, message, {"error_id": error_id}, headers={"Connection": "close"})


def _openapi_without_422(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI documents a 422 on every route; these services answer invalid input with 400 instead."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            for unused in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def install_error_handlers(app: FastAPI) -> None:
    """The error handlers, and an OpenAPI document that lists the status codes they really produce."""
    app.openapi = _openapi_without_422(app)  # type: ignore[method-assign]
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for outage in STORE_OUTAGES:
        app.add_exception_handler(outage, _storage_outage)
    app.add_exception_handler(Exception, _unexpected_error)
