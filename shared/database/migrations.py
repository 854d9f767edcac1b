"""Schema migrations (Alembic, plain SQL) and creation of the database itself when it is missing."""

import asyncio
import re
import threading
from pathlib import Path

import asyncpg
import structlog
from alembic import command
from alembic.config import Config

log = structlog.get_logger(__name__)

SCRIPT_LOCATION = Path(__file__).with_name("alembic")

# Alembic keeps the running migration's `context` and `op` in module globals, so two upgrades in one
# process must not overlap (the advisory lock in env.py only serialises separate connections' work).
_UPGRADE_LOCK = threading.Lock()


def alembic_config(postgres_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # SQLAlchemy needs the driver in the scheme; configparser needs '%' doubled.
    sqlalchemy_url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", postgres_url)
    config.set_main_option("sqlalchemy.url", sqlalchemy_url.replace("%", "%%"))
    return config


async def ensure_database_exists(postgres_url: str) -> None:
    """Create the configured database if the server answers but the database is not there yet."""
    try:
        connection = await asyncpg.connect(postgres_url)
    except asyncpg.InvalidCatalogNameError:
        database = postgres_url.rsplit("/", 1)[1].split("?", 1)[0]
        admin = await asyncpg.connect(postgres_url.rsplit("/", 1)[0] + "/postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{database}"')
            log.info("database_created", database=database)
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            pass  # another process created it first (while it was still creating it, the catalog's index says so)
        finally:
            await admin.close()
    else:
        await connection.close()


async def apply_migrations(postgres_url: str) -> None:
    """Bring the schema to the newest revision; safe to run from several processes at once."""
    await ensure_database_exists(postgres_url)
    # Alembic is synchronous; a thread keeps the caller's event loop free while it runs.
    await asyncio.to_thread(_upgrade_to_head, alembic_config(postgres_url))
    log.info("migrations_applied", revision="head")


def _upgrade_to_head(config: Config) -> None:
    with _UPGRADE_LOCK:
        command.upgrade(config, "head")


def main() -> None:
    """`python -m shared.database.migrations`: the pre-start step of scripts and containers."""
    from shared.config import load_settings
    from shared.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(apply_migrations(settings.postgres_url))


if __name__ == "__main__":
    main()
