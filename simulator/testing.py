"""The simulator in-process for tests: a real uvicorn server on a free loopback port, in a background thread."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.serving import serve_in_thread
from simulator.app import create_app
from simulator.request_log import read_request_log
from simulator.scenarios import ScenarioSet, load_scenarios, parse_scenarios
from simulator.service import SimulatorConfig


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


@contextmanager
def running_simulator(
    scenarios: Path | dict[str, Any] | ScenarioSet | None = None,
    *,
    latency_ms: int = 0,
    request_log: Path | None = None,
    sock: socket.socket | None = None,
) -> Iterator[SimulatorHandle]:
    """Serve the simulator on `127.0.0.1:<free port>` (or on `sock`, a socket bound beforehand, so a client can be
    pointed at the address before anything answers there) for the duration of the `with` block."""
    config = SimulatorConfig(scenarios=as_scenario_set(scenarios), latency_ms=latency_ms, request_log=request_log)
    with serve_in_thread(create_app(config), name="simulator", lifespan="off", sock=sock) as base_url:
        yield SimulatorHandle(base_url=base_url, request_log=request_log)
