"""`python -m orchestrator api-keys create|list|revoke`: an operator's management of the API keys.

They work on the database of POSTGRES_URL (migrated first, so a key can be made before the orchestrator's first
start) and on any tenant's keys: whoever runs them holds the database's credentials already.
"""

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from shared.api_keys import KEY_NAME_MAX, ApiKey, ApiKeyScope
from shared.config import TENANT_PATTERN, Settings
from shared.database import apply_migrations, create_pool
from shared.database.api_key_repository import ApiKeyRepository
from shared.outages import POSTGRES_OUTAGES

Command = Callable[[ApiKeyRepository, argparse.Namespace], Coroutine[Any, Any, int]]


def tenant_id(value: str) -> str:
    if not TENANT_PATTERN.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a tenant id (lowercase letters, digits, _ and -)")
    return value


def key_name(value: str) -> str:
    if len(value) > KEY_NAME_MAX:
        raise argparse.ArgumentTypeError(f"a key's name has at most {KEY_NAME_MAX} characters")
    return value


def add_commands(subcommands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """The `api-keys` command and its own subcommands."""
    api_keys = subcommands.add_parser("api-keys", help="create, list and revoke API keys")
    actions = api_keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key; it is printed once, on the last line")
    create.add_argument("--tenant", required=True, type=tenant_id, help="the tenant the key belongs to")
    create.add_argument("--name", default="", type=key_name, help="what the key is for, e.g. dashboard")
    create.add_argument("--scope", choices=[scope.value for scope in ApiKeyScope], default=ApiKeyScope.CLIENT.value)
    create.set_defaults(command=create_key)
    listing = actions.add_parser("list", help="one key a line: id, tenant, name, scope, created, last used")
    listing.add_argument("--all", action="store_true", help="include revoked keys (marked revoked)")
    listing.set_defaults(command=list_keys)
    revoke = actions.add_parser("revoke", help="revoke a key from its next request on")
    revoke.add_argument("key_id", help="the key's id, as `api-keys list` shows it")
    revoke.set_defaults(command=revoke_key)


async def create_key(keys: ApiKeyRepository, args: argparse.Namespace) -> int:
    record, key = await keys.create(args.tenant, args.name, ApiKeyScope(args.scope))
    print(f"created {record.scope.value} key {record.id} for tenant {record.tenant_id}; it is shown only now:")
    print(key)
    return 0


def _moment(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "never"


def describe(key: ApiKey) -> str:
    fields = [key.id, key.tenant_id, key.name or "-", key.scope.value]
    fields += [_moment(key.created_at), _moment(key.last_used_at)]
    if key.revoked_at:
        fields.append(f"revoked {_moment(key.revoked_at)}")
    return "\t".join(fields)


async def list_keys(keys: ApiKeyRepository, args: argparse.Namespace) -> int:
    for key in await keys.list_keys(include_revoked=args.all):
        print(describe(key))
    return 0


async def revoke_key(keys: ApiKeyRepository, args: argparse.Namespace) -> int:
    revoked = await keys.revoke(args.key_id)
    if revoked is None:
        print(f"no API key with id {args.key_id!r}; `python -m orchestrator api-keys list` shows them", file=sys.stderr)
        return 1
    print(f"revoked key {revoked.id} of tenant {revoked.tenant_id}")
    return 0


async def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        await apply_migrations(settings.postgres_url)
        pool = await create_pool(settings.postgres_url, min_size=1, max_size=1)
    except (*POSTGRES_OUTAGES, OSError, asyncpg.InvalidAuthorizationSpecificationError) as error:
        # The outages the services wait out (a server still starting included), a name that does not resolve, a
        # refused or timed-out connection, a refused login: one line, not a traceback.
        address = urlsplit(settings.postgres_url)
        print(
            f"could not reach PostgreSQL at {address.hostname}:{address.port or 5432} ({error}): is it running, and "
            "is POSTGRES_URL right?",
            file=sys.stderr,
        )
        return 1
    try:
        command: Command = args.command
        return await command(ApiKeyRepository(pool), args)
    finally:
        await pool.close()


def main(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(run(settings, args))
