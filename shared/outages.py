"""What PostgreSQL or Redis being unreachable looks like to this code (a restart, a network cut), and which one it is.

Such failures are expected now and then and pass by themselves: the API answers them with a 503 to retry and the
loops log them as one line each, instead of treating them as bugs.
"""

import traceback

import asyncpg
import redis.exceptions

POSTGRES_OUTAGES = (asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError, asyncpg.TooManyConnectionsError)
REDIS_OUTAGES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
NETWORK_OUTAGES = (ConnectionError, TimeoutError)  # a refused connect or a timed-out command, from either client
STORE_OUTAGES = (*POSTGRES_OUTAGES, *REDIS_OUTAGES, *NETWORK_OUTAGES)
# What a Redis call is retried on: the client's own connection errors, and socket errors it lets through.
REDIS_UNREACHABLE = (*REDIS_OUTAGES, OSError)
# The client libraries, by the root of their module names.
CLIENT_STORES = {"asyncpg": "PostgreSQL", "redis": "Redis"}


def unreachable_store(error: Exception) -> str | None:
    """Which store a connection error is about: by its type, or else by the client library it was raised in."""
    if isinstance(error, REDIS_OUTAGES):
        return "Redis"
    if isinstance(error, POSTGRES_OUTAGES):
        return "PostgreSQL"
    for frame, _ in reversed(list(traceback.walk_tb(error.__traceback__))):  # innermost first
        store = CLIENT_STORES.get(frame.f_globals.get("__name__", "").partition(".")[0])
        if store:
            return store
    return None
