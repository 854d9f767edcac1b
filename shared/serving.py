"""Serve an ASGI app on a free loopback port in a background thread: how tests run a real service in-process.

A thread (not a task) so the same helper serves sync and async tests, and so a test's own event loop
blocking on a client call cannot starve the server. The app gets its own event loop, as in a real process.
"""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0


def bound_socket() -> socket.socket:
    """A socket bound to a free loopback port: its address is known before anything serves on it.

    Binding port 0 here and handing the socket to uvicorn avoids the race of "find a free port, then bind".
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread, name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the {name} server stopped during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {name} server did not start within {START_TIMEOUT_SECONDS} s")
        time.sleep(0.01)


@contextmanager
def serve_in_thread(
    app: ASGIApp, *, name: str = "app", lifespan: Literal["on", "off"] = "on", sock: socket.socket | None = None
) -> Iterator[str]:
    """Serve `app` on `127.0.0.1:<free port>` (or `sock`, from `bound_socket()`, when the app must know its address
    before it starts) for the `with` block; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan=lifespan,
            ws="none",
            timeout_graceful_shutdown=5,
        )
    )
    sock = sock or bound_socket()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        _wait_until_started(server, thread, name)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_SECONDS)
        sock.close()
