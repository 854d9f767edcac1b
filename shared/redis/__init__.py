"""Redis transport: tenant-prefixed keys, reliable queues, the agent registry, shared state and lifecycle events.

`shared.redis_manager.RedisManager` wires them to one client; the pieces are usable on their own with any client
made by `create_client`.
"""

from shared.redis.client import create_client
from shared.redis.events import EventStream, EventType, StreamedEvent, TaskEvent
from shared.redis.keys import RESULT_QUEUE, TASK_QUEUE, RedisKeys
from shared.redis.queues import ReliableQueue
from shared.redis.registry import AgentRegistry, RegistryWatcher
from shared.redis.state import SharedState

__all__ = [
    "RESULT_QUEUE",
    "TASK_QUEUE",
    "AgentRegistry",
    "EventStream",
    "EventType",
    "RedisKeys",
    "RegistryWatcher",
    "ReliableQueue",
    "SharedState",
    "StreamedEvent",
    "TaskEvent",
    "create_client",
]
