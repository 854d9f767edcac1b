"""PostgreSQL access: the pool, versioned migrations and one repository per table family."""

from shared.database.migrations import apply_migrations, ensure_database_exists
from shared.database.pool import DatabaseManager, create_pool
from shared.database.repositories import Repositories

__all__ = ["DatabaseManager", "Repositories", "apply_migrations", "create_pool", "ensure_database_exists"]
