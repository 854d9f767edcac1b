"""The simulator's HTTP surface: Anthropic's Messages API routes, health probes and error shapes."""

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from simulator import tokens
from simulator.protocol import ApiError, CountTokensRequest, MessagesRequest, error_body, parse_request
from simulator.service import SimulatorConfig, SimulatorService
from simulator.sse import quiet_deliberate_cuts


def get_service(request: Request) -> SimulatorService:
    service: SimulatorService = request.app.state.service
    return service


ServiceDep = Annotated[SimulatorService, Depends(get_service)]


async def _json_body(request: Request) -> object:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from exc


async def create_message(request: Request, service: ServiceDep) -> Response:
    """`POST /v1/messages` (the CLI adds `?beta=true`): a JSON or streamed answer, or an injected error."""
    message_request = parse_request(MessagesRequest, await _json_body(request))
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return await service.answer(message_request, path)


async def count_tokens(request: Request, service: ServiceDep) -> dict[str, int]:
    """`POST /v1/messages/count_tokens`: the same estimate the answers report as `input_tokens`."""
    count_request = parse_request(CountTokensRequest, await _json_body(request))
    counted = tokens.input_tokens(count_request.system, count_request.messages, count_request.tools)
    service.request_log.record_count(
        model=count_request.model, system=count_request.system, messages=count_request.messages, input_tokens=counted
    )
    return {"input_tokens": counted}


async def hello() -> Response:
    """Reachability probes: the CLI sends `HEAD /api/hello`; scripts probe `/`."""
    return JSONResponse({"simulator": True})


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    # Unknown paths and wrong methods both mean "no such endpoint" to an API client.
    status = 404 if exc.status_code in (404, 405) else exc.status_code
    message = f"{request.method} {request.url.path}: not found" if status == 404 else str(exc.detail)
    return JSONResponse(error_body(status, message), status_code=status)


def create_app(config: SimulatorConfig | None = None) -> FastAPI:
    """The simulator application; everything it answers depends on `config` and the request alone."""
    app = FastAPI(title="Claude Messages API simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = SimulatorService(config or SimulatorConfig())
    quiet_deliberate_cuts()
    app.add_api_route("/v1/messages", create_message, methods=["POST"])
    app.add_api_route("/v1/messages/count_tokens", count_tokens, methods=["POST"])
    app.add_api_route("/", hello, methods=["GET", "HEAD"])
    app.add_api_route("/api/hello", hello, methods=["GET", "HEAD"])
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    return app
