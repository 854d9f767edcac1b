"""The shared error handlers: a backing store that cannot be reached is a 503 worth retrying, not a 500."""

import asyncpg
import httpx
import pytest
import redis.exceptions
from fastapi import FastAPI

from shared.errors import install_error_handlers


def failing_app(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/fails")
    async def fails() -> None:
        raise error

    return app


async def get(app: FastAPI) -> httpx.Response:
    # Starlette re-raises an unhandled error after answering it; the client should see the answer.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/fails")


@pytest.mark.parametrize(
    ("error", "store"),
    [
        (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"), "PostgreSQL"),
        (asyncpg.AdminShutdownError("terminating connection due to administrator command"), "PostgreSQL"),
        (asyncpg.CannotConnectNowError("the database system is starting up"), "PostgreSQL"),
        (redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379"), "Redis"),
        (redis.exceptions.TimeoutError("Timeout reading from socket"), "Redis"),
        (ConnectionRefusedError(111, "Connect call failed"), None),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
async def test_an_unreachable_store_is_a_503_to_retry(error: Exception, store: str | None) -> None:
    response = await get(failing_app(error))

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.json()
    assert body["detail"] == {"store": store}
    assert body["error"].startswith(f"{store or 'PostgreSQL or Redis'} cannot be reached right now")
    assert type(error).__name__ in body["error"] and "retry in 5 s" in body["error"]


async def test_any_other_failure_is_a_500_with_an_id_to_find_in_the_log() -> None:
    response = await get(failing_app(ValueError("a bug")))

    assert response.status_code == 500
    assert response.json()["error"].startswith("internal error (id ")
    assert "a bug" not in response.text
