"""The seed's five agents (seed 003, research.md) and settings for the decomposition tests."""

import pytest

from shared.config import Settings, load_settings
from shared.models import AgentCapability, AgentStatus

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
