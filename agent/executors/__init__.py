"""Executors turn a subtask attempt into an outcome: the Claude Agent SDK, or the stub (no LLM)."""

from agent.executors.base import ExecutionOutcome, SubtaskExecutor
from agent.executors.sdk import SdkExecutor
from agent.executors.stub import StubExecutor
from agent.tools.data_source import DataSourcePool
from shared.config import Settings
from shared.database import DatabaseManager
from shared.redis_manager import RedisManager


def build_executor(
    settings: Settings, db: DatabaseManager, redis: RedisManager, data_source: DataSourcePool
) -> SubtaskExecutor:
    if settings.agent_executor == "stub":
        return StubExecutor.from_settings(settings)
    return SdkExecutor(settings, db, redis, data_source)


__all__ = ["ExecutionOutcome", "SdkExecutor", "StubExecutor", "SubtaskExecutor", "build_executor"]
