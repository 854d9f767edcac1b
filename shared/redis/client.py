"""How every Redis client of the system is made, and the one conversion its replies need."""

from collections.abc import Mapping

from redis.asyncio import Redis

HEALTH_CHECK_INTERVAL_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 5.0


def create_client(redis_url: str, *, max_connections: int | None = None) -> Redis:
    """A pooled client answering `str`.

    redis-py 8 reads with a 5 s socket timeout by default, which would cut BLMOVE, XREADGROUP BLOCK and pub/sub waits
    longer than that; reads are unbounded instead, and TCP keepalive plus health checks notice a dead server. RESP2 is
    pinned because the stream replies are parsed in that shape. `max_connections` bounds the pool (redis-py's
    default: 100); past it a command fails at once rather than wait.
    """
    return Redis.from_url(
        redis_url,
        decode_responses=True,
        protocol=2,
        socket_timeout=None,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_INTERVAL_SECONDS,
        max_connections=max_connections,
    )


def as_text(value: bytes | str) -> str:
    """Narrow a reply to `str`; bytes mean the client was not made by `create_client`."""
    if isinstance(value, bytes):
        raise TypeError("Redis replied with bytes: create the client with decode_responses=True")
    return value


def as_text_mapping(mapping: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {as_text(name): as_text(value) for name, value in mapping.items()}
