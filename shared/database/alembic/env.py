"""Alembic environment: plain-SQL migrations applied by one migrator at a time.

Migrations go through psycopg rather than asyncpg because psycopg runs a multi-statement SQL
script as one simple query, which is what plain-SQL migration files are.
"""

from alembic import context
from sqlalchemy import create_engine, pool, text

# Any constant works; it only has to be the same for every process that migrates this database.
MIGRATION_LOCK_ID = 7_316_001

engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
with engine.connect() as connection:
    # Several services may start at once; the advisory lock makes the others wait, then find nothing to do.
    connection.execute(text("SELECT pg_advisory_lock(:lock_id)"), {"lock_id": MIGRATION_LOCK_ID})
    connection.commit()
    try:
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:lock_id)"), {"lock_id": MIGRATION_LOCK_ID})
        connection.commit()
engine.dispose()
