"""What a repository runs its SQL on."""

from typing import TypeAlias

import asyncpg

# A pool (each statement on its own) or one connection (typically inside a caller's transaction).
Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection
