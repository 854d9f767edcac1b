"""API keys: what one is, how a new one is made, and the only form in which it is ever stored.

A key is `mats_` followed by 256 random bits (`secrets.token_urlsafe(32)`); the prefix lets a person, a log scrubber
or a secret scanner recognise one. It is shown once, when made, and stored only as its SHA-256.

Why SHA-256 and not bcrypt/argon2: those are slow on purpose so that guessing a *low-entropy* password from its hash
is expensive. A key of 256 random bits cannot be guessed whatever the hash costs, so a slow hash would buy nothing
and would cost tens of milliseconds of CPU on every request. A fast hash also allows an exact, indexed lookup.
"""

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

KEY_PREFIX = "mats_"
KEY_RANDOM_BYTES = 32
KEY_NAME_MAX = 200


class ApiKeyScope(StrEnum):
    """client: submit, read and cancel the tenant's tasks; operator: that, and manage the fleet."""

    CLIENT = "client"
    OPERATOR = "operator"


class ApiKey(BaseModel):
    """A key's record: everything but the key itself."""

    id: str
    tenant_id: str
    name: str = Field(max_length=KEY_NAME_MAX)
    scope: ApiKeyScope
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


def new_key_id() -> str:
    return f"key_{secrets.token_hex(8)}"


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()
