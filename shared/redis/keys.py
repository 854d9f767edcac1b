"""Every Redis key and channel name of the system, built by one function so tenants never share a key.

A key is `mats:{tenant}:{part}:{part}...`. Parts may not contain `:` (an id could then reach into another key
family, e.g. a task id `x:y` reading task `x`'s state) nor glob characters (they would widen a SCAN pattern).
"""

import re

NAMESPACE = "mats"
TASK_QUEUE = "agent_tasks"
RESULT_QUEUE = "agent_results"
OFFER_QUEUE = "agent_offers"  # one per agent: `agent_offers:{agent_id}` (shared/redis/offers.py)
REFUSAL_QUEUE = "offer_refusals"

_SEGMENT = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def validate_segment(value: str, what: str = "key part") -> str:
    """Return `value` if it is safe as one part of a key, otherwise raise ValueError."""
    if not _SEGMENT.fullmatch(value):
        raise ValueError(f"invalid {what} {value!r}: use 1-128 letters, digits, '_', '.' or '-'")
    return value


def last_segment(key: str) -> str:
    return key.rsplit(":", 1)[-1]


class RedisKeys:
    """The key names of one tenant."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = validate_segment(tenant_id, "tenant id")

    def key(self, *parts: str) -> str:
        if not parts:
            raise ValueError("a key needs at least one part")
        return ":".join([NAMESPACE, self.tenant_id, *(validate_segment(part) for part in parts)])

    def pattern(self, *parts: str) -> str:
        """SCAN pattern matching every key below `parts`; without parts, every key of the tenant."""
        return ":".join([NAMESPACE, self.tenant_id, *(validate_segment(part) for part in parts), "*"])

    # Queues: `queue(name)`, each consumer's in-flight list, its liveness key, and the queue's dead letters.
    def queue(self, name: str) -> str:
        return self.key(name)

    def inflight(self, queue: str, consumer_id: str) -> str:
        return self.key(queue, "inflight", consumer_id)

    def consumer_alive(self, queue: str, consumer_id: str) -> str:
        return self.key(queue, "consumer", consumer_id)

    def dead_letter(self, queue: str) -> str:
        return self.key(queue, "dead_letter")

    # Agent registry.
    def active_agents(self) -> str:
        return self.key("active_agents")

    def agent(self, agent_id: str) -> str:
        return self.key("agent", agent_id)

    def failed_agents(self) -> str:
        """Hash: agent id -> the operator's declaration that it failed (shared/redis/failed_agents.py)."""
        return self.key("failed_agents")

    def registry_changed(self) -> str:
        """Pub/sub channel announcing that an agent registered, heartbeated with a new status or left."""
        return self.key("registry_changed")

    # Task-scoped shared state, idempotency claims and the lifecycle event stream.
    def state(self, task_id: str, key: str) -> str:
        return self.key("state", task_id, key)

    def idempotency(self, key: str) -> str:
        return self.key("idempotency", key)

    def events(self) -> str:
        """Stream: every lifecycle event of the tenant's tasks (shared/redis/events.py)."""
        return self.key("events")

    def task_events(self, task_id: str) -> str:
        """Stream: the lifecycle events of one task, expiring a while after it ends."""
        return self.key("task_events", task_id)
