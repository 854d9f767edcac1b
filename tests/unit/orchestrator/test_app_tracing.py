"""The orchestrator app's trace ids sit around its whole stack: even an unexpected failure's 500 and log line carry
the request's."""

import httpx
import structlog
from structlog.testing import capture_logs

from orchestrator.app import create_app
from shared.config import Settings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_a_500_and_its_log_line_carry_the_request_s_trace_id(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"cors_origins": ["https://dashboard.example"]}))

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)  # no lifespan needed: the route touches no client
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with capture_logs([structlog.contextvars.merge_contextvars]) as logs:
            failed = await client.get("/broken", headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})
            preflight = await client.options(
                "/tasks",
                headers={
                    "Origin": "https://dashboard.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "traceparent, x-request-id",
                },
            )

    assert failed.status_code == 500 and failed.headers["x-request-id"] == TRACE_ID
    [line] = [line for line in logs if line["event"] == "request_failed"]
    assert line["trace_id"] == TRACE_ID
    # A browser on an allowed origin may send the trace headers and read the answer's.
    assert preflight.status_code == 200, preflight.text
    assert "traceparent" in preflight.headers["access-control-allow-headers"].lower()
    assert "x-request-id" in preflight.headers["access-control-allow-headers"].lower()
    assert preflight.headers["x-request-id"]
