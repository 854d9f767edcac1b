"""The API keys this orchestrator looked up lately, kept until PostgreSQL announces that a key changed.

Looking a key up is a PostgreSQL round trip, on every request. Migration 0006 announces every change of a key
(revoked, deleted, another tenant or scope) on the channel `api_keys_changed`, delivered when the change commits;
this orchestrator listens on a connection of its own and forgets every key it kept when one arrives. So a revocation
still takes effect on the next request, and a request whose key was looked up lately costs no round trip.

The cache is on only while the listening connection is: when it is lost, every key is forgotten and each request
looks its key up again until it listens anew, so no revocation can be missed. A kept key is looked up again after
LAST_USED_RESOLUTION, which also records its last use as often as before. Unknown keys are never kept.
"""

import time
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from shared.api_keys import ApiKey, hash_key
from shared.config import Settings
from shared.database.api_key_repository import LAST_USED_RESOLUTION
from shared.loop_service import LoopService

log = structlog.get_logger(__name__)

CHANNEL = "api_keys_changed"
# Keys kept at most; past it the cache starts over (a fleet has a handful of keys, not thousands).
MAX_KEPT_KEYS = 10_000
# How often the listening connection is checked; a check that takes longer than this finds it lost.
LISTEN_CHECK_SECONDS = 5.0


class ApiKeyCache:
    def __init__(self, lookup: Callable[[str], Awaitable[ApiKey | None]]) -> None:
        self._lookup = lookup
        self._kept: dict[bytes, tuple[ApiKey, float]] = {}  # key hash -> (key, monotonic time it was looked up)
        self._generation = 0  # bumped by every forget, so a lookup that straddles one is not kept
        self._listening = False

    async def authenticate(self, key: str) -> ApiKey | None:
        """The live key whose text is `key`, or None: from the cache when it was looked up lately."""
        digest = hash_key(key)
        kept = self._kept.get(digest)
        now = time.monotonic()
        if kept is not None and now - kept[1] < LAST_USED_RESOLUTION.total_seconds():
            return kept[0]
        generation = self._generation
        found = await self._lookup(key)
        # A change announced while the lookup ran may concern this key: the answer is used once, not kept.
        if found is not None and self._listening and generation == self._generation:
            if len(self._kept) >= MAX_KEPT_KEYS:
                self._kept.clear()
            self._kept[digest] = (found, now)
        return found

    @property
    def is_listening(self) -> bool:
        return self._listening

    def listening(self, on: bool) -> None:
        """Whether key changes reach this cache; either way, what was kept is forgotten."""
        self._listening = on
        self.forget_all()

    def forget_all(self) -> None:
        self._kept.clear()
        self._generation += 1


class ApiKeyChanges(LoopService):
    """Keeps a connection of its own listening to `api_keys_changed`, and the cache on only while it does."""

    def __init__(self, settings: Settings, cache: ApiKeyCache) -> None:
        super().__init__("api_key_changes", LISTEN_CHECK_SECONDS)
        self._postgres_url = settings.postgres_url
        self._cache = cache
        self._connection: asyncpg.Connection | None = None

    async def run_once(self) -> None:
        if self._connection is not None and not self._connection.is_closed():
            try:
                await self._connection.execute("SELECT 1", timeout=LISTEN_CHECK_SECONDS)
                return
            except (OSError, asyncpg.PostgresError, TimeoutError):
                await self._drop()
                raise
        connection = await asyncpg.connect(self._postgres_url, timeout=LISTEN_CHECK_SECONDS)
        await connection.add_listener(CHANNEL, self._changed)
        connection.add_termination_listener(self._lost)
        self._connection = connection
        self._cache.listening(True)  # from now on every change reaches the cache

    async def close(self) -> None:
        await self._drop()

    async def _drop(self) -> None:
        self._cache.listening(False)
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()

    def _changed(self, *_: object) -> None:
        self._cache.forget_all()

    def _lost(self, *_: object) -> None:
        self._cache.listening(False)
        self._connection = None
