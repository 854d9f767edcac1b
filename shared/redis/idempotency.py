"""Idempotency records: a client's key claimed once per tenant, with what the first request asked and answered.

A record is a hash under `RedisKeys.idempotency(digest of the client's key)`:
- `fingerprint`: a digest of the request's body, so the same key with another body is told apart;
- `owner`: who is working on it; only the owner may renew, complete or release the claim;
- `response`: the answer once the work is done (absent while it is being done).

A claim is made with an atomic check-and-set that also sets a lease: while the owner works it renews the lease, so a
claim whose owner died expires after at most one lease and the next request with the key takes it over. A completed
record lives for the idempotency TTL; a released one (the work failed) is deleted, so a retry can proceed.
Every change that names an owner is a script comparing it first: a late owner cannot overwrite a record taken over.
"""

import hashlib
from dataclasses import dataclass

from redis.asyncio import Redis

from shared.redis.client import as_text_mapping
from shared.redis.keys import RedisKeys

_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'owner', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
_RENEW = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'response') == 1 then
    return 0
end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
_COMPLETE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'response', ARGV[2])
return redis.call('EXPIRE', KEYS[1], ARGV[3])
"""
_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'response') == 1 then
    return 0
end
return redis.call('DEL', KEYS[1])
"""


@dataclass(frozen=True)
class IdempotencyRecord:
    fingerprint: str
    owner: str
    response: str | None  # None while the owner is still working


def key_digest(client_key: str) -> str:
    """The client's key as a key segment: any printable key fits, and the key itself is not kept in Redis."""
    return hashlib.sha256(client_key.encode()).hexdigest()


class IdempotencyRecords:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._claim = redis.register_script(_CLAIM)
        self._renew = redis.register_script(_RENEW)
        self._complete = redis.register_script(_COMPLETE)
        self._release = redis.register_script(_RELEASE)

    def redis_key(self, client_key: str) -> str:
        return self._keys.idempotency(key_digest(client_key))

    async def claim(self, client_key: str, fingerprint: str, owner: str, lease_seconds: float) -> bool:
        """True when `owner` now holds the key (nobody did), for `lease_seconds` unless renewed."""
        claimed = await self._claim([self.redis_key(client_key)], [fingerprint, owner, _milliseconds(lease_seconds)])
        return bool(claimed)

    async def read(self, client_key: str) -> IdempotencyRecord | None:
        fields = as_text_mapping(await self._redis.hgetall(self.redis_key(client_key)))
        if "fingerprint" not in fields:
            return None
        return IdempotencyRecord(fields["fingerprint"], fields.get("owner", ""), fields.get("response"))

    async def renew(self, client_key: str, owner: str, lease_seconds: float) -> bool:
        """Extend the lease of a claim `owner` still holds and has not completed; False when it lost it."""
        renewed = await self._renew([self.redis_key(client_key)], [owner, _milliseconds(lease_seconds)])
        return bool(renewed)

    async def complete(self, client_key: str, owner: str, response: str, ttl_seconds: int) -> bool:
        """Keep `response` for `ttl_seconds`; False when `owner` no longer holds the claim."""
        completed = await self._complete([self.redis_key(client_key)], [owner, response, ttl_seconds])
        return bool(completed)

    async def release(self, client_key: str, owner: str) -> bool:
        """Delete an uncompleted claim of `owner`'s, so the next request with the key does the work."""
        released = await self._release([self.redis_key(client_key)], [owner])
        return bool(released)


def _milliseconds(seconds: float) -> int:
    return max(int(seconds * 1000), 1)
