"""The simulator in-process for tests: a real uvicorn server on a free loopback port, in a background thread.

A thread (not a task) so the same helper serves sync and async tests, and so a test's own event loop
blocking on a client call cannot starve the server.
"""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from simulator.app import create_app
from simulator.request_log import read_request_log
from simulator.scenarios import ScenarioSet, load_scenarios, parse_scenarios
from simulator.service import SimulatorConfig

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SimulatorHandle:
    base_url: str
    request_log: Path | None

    def requests(self) -> list[dict[str, Any]]:
        """The requests logged so far (needs `request_log`)."""
        if self.request_log is None:
            raise RuntimeError("running_simulator(request_log=...) was not given a path")
        return read_request_log(self.request_log)


def as_scenario_set(scenarios: Path | dict[str, Any] | ScenarioSet | None) -> ScenarioSet:
    """Scenarios from a file, from decoded data, or none (fallback answers only)."""
    if isinstance(scenarios, ScenarioSet):
        return scenarios
    if isinstance(scenarios, Path):
        return load_scenarios(scenarios)
    return parse_scenarios(scenarios, "scenarios")


def _bound_socket() -> socket.socket:
    # Binding port 0 here and handing the socket to uvicorn avoids the race of "find a free port, then bind".
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the simulator server stopped during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the simulator did not start within {_START_TIMEOUT_S} s")
        time.sleep(0.01)


@contextmanager
def running_simulator(
    scenarios: Path | dict[str, Any] | ScenarioSet | None = None,
    *,
    latency_ms: int = 0,
    request_log: Path | None = None,
) -> Iterator[SimulatorHandle]:
    """Serve the simulator on `127.0.0.1:<free port>` for the duration of the `with` block."""
    config = SimulatorConfig(scenarios=as_scenario_set(scenarios), latency_ms=latency_ms, request_log=request_log)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=5,
        )
    )
    sock = _bound_socket()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="simulator", daemon=True)
    thread.start()
    try:
        _wait_until_started(server, thread)
        port = sock.getsockname()[1]
        yield SimulatorHandle(base_url=f"http://127.0.0.1:{port}", request_log=request_log)
    finally:
        server.should_exit = True
        thread.join(_STOP_TIMEOUT_S)
        sock.close()
