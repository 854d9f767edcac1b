"""The seed's five agents (seed 003, research.md), settings for the decomposition tests, and the `anthropic` client
of the tests that talk to a module's `simulator` fixture."""

from collections.abc import AsyncIterator

import anthropic
import pytest

from shared.config import Settings, load_settings
from shared.models import AgentCapability, AgentStatus
from simulator.testing import SimulatorHandle

DATA = AgentCapability.DATA_ANALYSIS
WEB = AgentCapability.WEB_SCRAPING
CODE = AgentCapability.CODE_GENERATION
FILES = AgentCapability.FILE_PROCESSING
DB = AgentCapability.DATABASE_OPERATIONS
API = AgentCapability.API_INTEGRATION


def live_agent(agent_id: str, port: int, *capabilities: AgentCapability) -> AgentStatus:
    return AgentStatus(
        agent_id=agent_id,
        url=f"http://127.0.0.1:{port}",
        port=port,
        is_available=True,
        capabilities=list(capabilities),
    )


SEED_FLEET = [
    live_agent("agent1", 8001, DATA, CODE),
    live_agent("agent2", 8002, WEB, API),
    live_agent("agent3", 8003, FILES, DB),
    live_agent("agent4", 8004, CODE, API),
    live_agent("agent5", 8005, DATA, DB),
]


@pytest.fixture
def analyzer_settings() -> Settings:
    # A model other than the default, so a test can tell the setting is what reaches the API.
    return load_settings(_env_file=None, claude_model="claude-haiku-5-5", max_subtasks_per_task=5)


@pytest.fixture
async def client(simulator: SimulatorHandle) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The real client against the test module's `simulator`; no retries: an injected error is the first answer."""
    async with anthropic.AsyncAnthropic(base_url=simulator.base_url, api_key="sim", max_retries=0) as api:
        yield api
