"""An agent's POST /execute is reachable by anyone on the fleet's network, before any signature is checked: a body
over the limit must be refused as it streams in, like the orchestrator's, not read whole and parsed first."""

import asyncio
from urllib.parse import urlsplit

from agent.api import MAX_OFFER_BYTES
from agent.app import create_app
from shared.config import Settings
from shared.database import DatabaseManager
from shared.serving import serve_in_thread
from tests.contract.test_orchestrator_hygiene import ANSWER_TIMEOUT_SECONDS, raw_exchange


async def test_an_execute_body_declared_over_the_limit_is_refused_without_reading_it(
    agent_settings: Settings, db: DatabaseManager
) -> None:
    with serve_in_thread(create_app(agent_settings), name="agent") as agent_url:
        url = urlsplit(agent_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        head = (
            f"POST /execute HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {100 * MAX_OFFER_BYTES}\r\n\r\n"
        )
        writer.write(head.encode())  # and not one byte of the body it announces
        try:
            answer = await asyncio.wait_for(reader.read(4096), ANSWER_TIMEOUT_SECONDS)
        except TimeoutError:
            answer = b"no answer: the agent waits to read the whole body"
        finally:
            writer.close()

    assert answer.startswith(b"HTTP/1.1 413"), answer


async def test_a_chunked_execute_body_is_refused_once_it_passes_the_limit(
    agent_settings: Settings, db: DatabaseManager
) -> None:
    head = "POST /execute HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
    over_the_limit = 2 * MAX_OFFER_BYTES // 65_536

    with serve_in_thread(create_app(agent_settings), name="agent") as agent_url:
        try:
            answer = await raw_exchange(agent_url, head, over_the_limit, key="none")
        except TimeoutError:
            answer = b"no answer: the agent goes on reading the body"

    assert answer.startswith(b"HTTP/1.1 413"), answer
