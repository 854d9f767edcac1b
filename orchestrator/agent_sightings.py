"""The agents the registry shows, recorded in PostgreSQL (`agents_seen`) so an agent keeps a record after it is gone.

The directory reads the registry up to ten times a second; a sighting is written only for an agent not recorded yet,
one whose capabilities changed, or one last recorded SIGHTING_INTERVAL ago, never per subtask. One writer at a time,
in the background: a read of the registry never waits for PostgreSQL. A write PostgreSQL cannot take is tried again
with the next read's sightings.
"""

import asyncio
from collections.abc import Iterable
from datetime import timedelta

import structlog

from shared.database import DatabaseManager
from shared.database.agent_record_repository import AgentSighting
from shared.loop_service import OutageWatch
from shared.models import AgentStatus
from shared.outages import STORE_OUTAGES

log = structlog.get_logger(__name__)

# How stale an agent's last_seen may get while it stays in the registry unchanged.
SIGHTING_INTERVAL = timedelta(minutes=1)


class AgentSightings:
    def __init__(self, db: DatabaseManager, interval: timedelta = SIGHTING_INTERVAL) -> None:
        self._db = db
        self._interval = interval
        self._recorded: dict[str, AgentSighting] = {}  # as last written, by agent id
        self._unwritten: dict[str, AgentSighting] = {}
        self._writer: asyncio.Task[None] | None = None
        self._outages = OutageWatch("agent_sightings_deferred", "agent_sightings_written")

    def note(self, agents: Iterable[AgentStatus]) -> None:
        """Take note of a registry read; write the sightings that are due."""
        for agent in agents:
            sighting = AgentSighting(
                agent.agent_id, tuple(capability.value for capability in agent.capabilities), agent.last_heartbeat
            )
            if self._due(sighting):
                self._unwritten[agent.agent_id] = sighting
        if self._unwritten and (self._writer is None or self._writer.done()):
            sightings, self._unwritten = list(self._unwritten.values()), {}
            self._writer = asyncio.create_task(self._write(sightings), name=f"agent_sightings:{len(sightings)}")

    async def written(self) -> None:
        """Returns once the write under way, if any, has ended."""
        if self._writer is not None:
            await asyncio.wait([self._writer])

    def _due(self, sighting: AgentSighting) -> bool:
        recorded = self._recorded.get(sighting.agent_id)
        return (
            recorded is None
            or recorded.capabilities != sighting.capabilities
            or sighting.seen_at - recorded.seen_at >= self._interval
        )

    async def _write(self, sightings: list[AgentSighting]) -> None:
        try:
            await self._db.repositories().agent_records.record_sightings(sightings)
        except STORE_OUTAGES as error:
            self._outages.failed(error)
            for sighting in sightings:  # again with the next read; a newer sighting of the agent wins
                self._unwritten.setdefault(sighting.agent_id, sighting)
        except Exception:
            log.exception("agent_sightings_failed", count=len(sightings))
        else:
            self._outages.succeeded()
            self._recorded.update((sighting.agent_id, sighting) for sighting in sightings)
