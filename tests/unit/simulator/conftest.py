"""A running simulator with a small test script, and `anthropic` clients pointed at it."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anthropic
import pytest

from simulator.testing import SimulatorHandle, running_simulator
from tests.unit.simulator.helpers import SCENARIOS


@pytest.fixture
def request_log(tmp_path: Path) -> Path:
    return tmp_path / "requests.jsonl"


@pytest.fixture
def simulator(request_log: Path) -> Iterator[SimulatorHandle]:
    with running_simulator(SCENARIOS, request_log=request_log) as handle:
        yield handle


@pytest.fixture
async def client(simulator: SimulatorHandle) -> AsyncIterator[anthropic.AsyncAnthropic]:
    # No retries: an injected error must surface at once, as the first response the client saw.
    async with anthropic.AsyncAnthropic(base_url=simulator.base_url, api_key="sim-key", max_retries=0) as api:
        yield api
