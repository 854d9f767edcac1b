"""Request hygiene of the live orchestrator: body size (413) and type (415) are refused before a route reads them,
and browsers of other origins get no CORS grant unless CORS_ORIGINS lists them."""

import asyncio
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest

from shared.config import Settings
from shared.database import DatabaseManager
from shared.request_limits import MAX_BODY_BYTES
from tests.contract.conftest import AppFactory
from tests.contract.orchestrator_support import TWO_STEP_TASK, assert_error

CHUNK = b"x" * 65_536
ANSWER_TIMEOUT_SECONDS = 10


async def raw_exchange(base_url: str, head: str, chunks: int, key: str) -> bytes:
    """Sends a request head and `chunks` 64 KiB chunks of a chunked body without ever ending it, and reads the
    answer: one that arrives proves the server answered before the body was complete."""
    url = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(f"{head}\r\nHost: {url.netloc}\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
        for _ in range(chunks):
            writer.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_TIMEOUT_SECONDS)
    finally:
        writer.close()


async def test_a_body_declared_over_1_mib_is_refused_without_reading_it(
    orchestrator_url: str, orchestrator_api_key: str, db: DatabaseManager
) -> None:
    url = urlsplit(orchestrator_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    head = (
        f"POST /tasks HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {orchestrator_api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {100 * MAX_BODY_BYTES}\r\n\r\n"
    )
    writer.write(head.encode())  # and not one byte of the 100 MiB it announces
    answer = await asyncio.wait_for(reader.read(4096), ANSWER_TIMEOUT_SECONDS)
    writer.close()

    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b"larger than 1048576 bytes" in answer
    assert await db.pool.fetchval("SELECT count(*) FROM tasks") == 0


async def test_a_chunked_body_is_refused_once_it_passes_1_mib(
    orchestrator_url: str, orchestrator_api_key: str, db: DatabaseManager
) -> None:
    head = "POST /tasks HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
    over_the_limit = MAX_BODY_BYTES // len(CHUNK) + 2

    answer = await raw_exchange(orchestrator_url, head, over_the_limit, orchestrator_api_key)

    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert await db.pool.fetchval("SELECT count(*) FROM tasks") == 0


async def test_a_body_of_1_mib_is_read_and_judged_by_the_route(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.post(
        "/tasks", content=b" " * MAX_BODY_BYTES, headers={"content-type": "application/json"}
    )

    assert_error(response, 400, "not valid JSON")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", f'{{"description": "{TWO_STEP_TASK}"}}'),
        ("application/x-www-form-urlencoded", f"description={TWO_STEP_TASK}"),
        ("multipart/form-data; boundary=x", "--x--"),
        (None, f'{{"description": "{TWO_STEP_TASK}"}}'),
    ],
    ids=["text-plain", "form", "multipart", "no-content-type"],
)
async def test_a_post_body_that_is_not_json_answers_415_and_creates_nothing(
    content_type: str | None, body: str, orchestrator_client: httpx.AsyncClient, db: DatabaseManager
) -> None:
    headers = {"content-type": content_type} if content_type else {}  # httpx adds none to raw content

    response = await orchestrator_client.post("/tasks", content=body.encode(), headers=headers)

    assert_error(response, 415, "must be JSON")
    assert await db.pool.fetchval("SELECT count(*) FROM tasks") == 0


async def test_an_empty_post_with_query_parameters_is_no_body_to_refuse(
    orchestrator_client: httpx.AsyncClient,
) -> None:
    response = await orchestrator_client.post(
        "/tasks", params={"description": TWO_STEP_TASK}, headers={"content-type": "text/plain"}
    )

    assert response.status_code == 200, response.text


async def test_cors_is_off_unless_origins_are_configured(orchestrator_client: httpx.AsyncClient) -> None:
    preflight = await orchestrator_client.options(
        "/tasks", headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    )
    read = await orchestrator_client.get("/tasks", headers={"Origin": "https://elsewhere.example"})

    assert "access-control-allow-origin" not in preflight.headers
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers


async def test_cors_grants_exactly_the_configured_origins(
    orchestrator_settings_factory: Callable[..., Settings], orchestrator_app_factory: AppFactory
) -> None:
    settings = orchestrator_settings_factory(cors_origins=["https://dashboard.example"])
    async with await orchestrator_app_factory(settings) as client:
        allowed = await client.options(
            "/tasks",
            headers={
                "Origin": "https://dashboard.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        read = await client.get("/tasks", headers={"Origin": "https://dashboard.example"})
        other = await client.get("/tasks", headers={"Origin": "https://elsewhere.example"})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://dashboard.example"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert read.headers["access-control-allow-origin"] == "https://dashboard.example"
    assert "access-control-allow-origin" not in other.headers
