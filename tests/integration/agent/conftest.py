from tests.unit.agent.fixtures import (
    agent_redis,
    agent_settings,
    agent_settings_factory,
    agent_tenant,
    execution_request,
    tool_context_factory,
)

__all__ = [
    "agent_redis",
    "agent_settings",
    "agent_settings_factory",
    "agent_tenant",
    "execution_request",
    "tool_context_factory",
]
