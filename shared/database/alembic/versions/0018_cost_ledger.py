"""The cost ledger: one row per model call, priced by a versioned price table.

`model_prices` keeps every price MODEL_PRICES has named for a model, one version per change, so a ledger row keeps
the price it was recorded with however the setting changes later. `model_calls` holds one row per call to Claude:
each decomposition and repair call, each turn of an agent's attempt (and a dry run's planning call, without a task);
spend per subtask, task, tenant and day is SQL over it. It is an account, not an audit of a task: removing a task
(retention, DELETE) leaves its rows, so what a tenant spent on a day stays what it was.

What was spent before this revision is carried over: one row per result that reported usage or cost (its model was
not recorded then: `unknown`), and one per task's decomposition, at the cost recorded then and without a price row.

Revision ID: 0018_cost_ledger
Revises: 0017
Create Date: 2026-12-01
"""

from alembic import op

revision = "0018_cost_ledger"
down_revision = "0017"
branch_labels = None
depends_on = None

TOKENS = "input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE model_prices (
            id                      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            model                   TEXT NOT NULL CHECK (length(model) BETWEEN 1 AND 128),
            version                 INTEGER NOT NULL CHECK (version >= 1),
            input_per_million       NUMERIC NOT NULL CHECK (input_per_million >= 0),
            output_per_million      NUMERIC NOT NULL CHECK (output_per_million >= 0),
            cache_read_per_million  NUMERIC NOT NULL CHECK (cache_read_per_million >= 0),
            cache_write_per_million NUMERIC NOT NULL CHECK (cache_write_per_million >= 0),
            effective_from          TIMESTAMPTZ NOT NULL DEFAULT now(),
            UNIQUE (model, version)
        );

        CREATE TABLE model_calls (
            id                          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id                   TEXT NOT NULL CHECK (tenant_id ~ '^[a-z0-9][a-z0-9_-]{{0,31}}$'),
            task_id                     TEXT,
            subtask_id                  TEXT,
            attempt                     INTEGER CHECK (attempt >= 1),
            agent_id                    TEXT,
            purpose                     TEXT NOT NULL
                                        CHECK (purpose IN ('decomposition', 'repair', 'attempt', 'estimate')),
            model                       TEXT NOT NULL CHECK (length(model) BETWEEN 1 AND 128),
            input_tokens                BIGINT NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
            output_tokens               BIGINT NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
            cache_read_input_tokens     BIGINT NOT NULL DEFAULT 0 CHECK (cache_read_input_tokens >= 0),
            cache_creation_input_tokens BIGINT NOT NULL DEFAULT 0 CHECK (cache_creation_input_tokens >= 0),
            cost_usd                    NUMERIC(20, 10) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
            price_id                    BIGINT REFERENCES model_prices (id),
            created_at                  TIMESTAMPTZ NOT NULL DEFAULT now(),
            CHECK (subtask_id IS NULL OR (task_id IS NOT NULL AND attempt IS NOT NULL))
        );
        -- A tenant's spend per day (and today's, which budgets read before each attempt), without the heap.
        CREATE INDEX model_calls_tenant_created_at_idx ON model_calls (tenant_id, created_at)
            INCLUDE (model, cost_usd, {TOKENS});
        -- Every tenant's spend over a window (the operator's spend per tenant).
        CREATE INDEX model_calls_created_at_idx ON model_calls (created_at);
        CREATE INDEX model_calls_task_id_idx ON model_calls (task_id) WHERE task_id IS NOT NULL;
        CREATE INDEX model_calls_subtask_id_idx ON model_calls (subtask_id) WHERE subtask_id IS NOT NULL;

        INSERT INTO model_calls (tenant_id, task_id, subtask_id, attempt, agent_id, purpose, model, {TOKENS},
                                 cost_usd, created_at)
        SELECT tenant_id, task_id, subtask_id, attempt, agent_id, 'attempt', 'unknown', {TOKENS}, cost_usd,
               created_at
        FROM subtask_results
        WHERE input_tokens + output_tokens + cache_read_input_tokens + cache_creation_input_tokens > 0
           OR cost_usd > 0;

        INSERT INTO model_calls (tenant_id, task_id, purpose, model, {TOKENS}, cost_usd, created_at)
        SELECT tenant_id, id, 'decomposition', model, {TOKENS}, cost_usd, created_at
        FROM (
            SELECT tenant_id, id, created_at,
                   coalesce(decomposition ->> 'model', 'unknown') AS model,
                   coalesce((decomposition -> 'token_usage' ->> 'input_tokens')::bigint, 0) AS input_tokens,
                   coalesce((decomposition -> 'token_usage' ->> 'output_tokens')::bigint, 0) AS output_tokens,
                   coalesce((decomposition -> 'token_usage' ->> 'cache_read_input_tokens')::bigint, 0)
                       AS cache_read_input_tokens,
                   coalesce((decomposition -> 'token_usage' ->> 'cache_creation_input_tokens')::bigint, 0)
                       AS cache_creation_input_tokens,
                   coalesce((decomposition ->> 'cost_usd')::numeric, 0) AS cost_usd
            FROM tasks WHERE decomposition IS NOT NULL
        ) planned
        WHERE input_tokens + output_tokens + cache_read_input_tokens + cache_creation_input_tokens > 0
           OR cost_usd > 0;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE model_calls; DROP TABLE model_prices;")
