"""Initial schema: tasks, subtasks, subtask_results, agent_logs, tool_calls.

The CHECK constraints repeat the pydantic models' limits so that nothing invalid can be stored even
by a caller that bypasses the models.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE tasks (
            id                      TEXT PRIMARY KEY,
            user_id                 TEXT,
            description             TEXT NOT NULL CHECK (char_length(description) BETWEEN 10 AND 5000),
            status                  TEXT NOT NULL DEFAULT 'pending'
                                    CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled')),
            result                  JSONB,
            error                   TEXT,
            decomposition_fallback  BOOLEAN NOT NULL DEFAULT false,
            decomposition           JSONB,
            created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
            CHECK (created_at <= updated_at)
        );
        CREATE INDEX tasks_created_at_idx ON tasks (created_at DESC);
        CREATE INDEX tasks_status_created_at_idx ON tasks (status, created_at DESC);
        CREATE INDEX tasks_user_id_created_at_idx ON tasks (user_id, created_at DESC);

        CREATE TABLE subtasks (
            id                      TEXT PRIMARY KEY,
            task_id                 TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            position                INTEGER NOT NULL,
            description             TEXT NOT NULL CHECK (char_length(description) BETWEEN 1 AND 5000),
            required_capabilities   TEXT[] NOT NULL CHECK (cardinality(required_capabilities) > 0),
            dependencies            TEXT[] NOT NULL DEFAULT '{}',
            priority                SMALLINT NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 10),
            estimated_duration      INTEGER CHECK (estimated_duration >= 0),
            task_type               TEXT NOT NULL DEFAULT 'general',
            status                  TEXT NOT NULL DEFAULT 'pending'
                                    CHECK (status IN ('pending', 'queued', 'running', 'completed', 'failed',
                                                      'blocked', 'cancelled')),
            attempt_count           INTEGER NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
            failed_agent_ids        TEXT[] NOT NULL DEFAULT '{}',
            assigned_agent          TEXT,
            assigned_at             TIMESTAMPTZ,
            assignment_latency_ms   DOUBLE PRECISION CHECK (assignment_latency_ms >= 0),
            queued_at               TIMESTAMPTZ,
            created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
            CHECK (NOT (id = ANY (dependencies))),
            CHECK (created_at <= updated_at),
            UNIQUE (task_id, position)
        );
        CREATE INDEX subtasks_task_id_idx ON subtasks (task_id);
        -- The scheduler looks only at live subtasks; a partial index keeps that cheap as history grows.
        CREATE INDEX subtasks_live_status_idx ON subtasks (status) WHERE status IN ('queued', 'running');
        CREATE INDEX subtasks_assigned_agent_idx ON subtasks (assigned_agent) WHERE status = 'running';

        CREATE TABLE subtask_results (
            result_id               TEXT PRIMARY KEY,
            subtask_id              TEXT NOT NULL REFERENCES subtasks (id) ON DELETE CASCADE,
            task_id                 TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            agent_id                TEXT NOT NULL,
            attempt                 INTEGER NOT NULL CHECK (attempt >= 1),
            status                  TEXT NOT NULL CHECK (status IN ('completed', 'failed')),
            output                  TEXT,
            error                   TEXT,
            retryable               BOOLEAN NOT NULL DEFAULT false,
            execution_time          DOUBLE PRECISION NOT NULL CHECK (execution_time > 0),
            input_tokens            INTEGER NOT NULL DEFAULT 0,
            output_tokens           INTEGER NOT NULL DEFAULT 0,
            cache_read_input_tokens INTEGER NOT NULL DEFAULT 0,
            cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd                DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
            num_turns               INTEGER NOT NULL DEFAULT 0,
            role_config_hash        TEXT,
            simulated               BOOLEAN NOT NULL DEFAULT false,
            -- false when the result arrived late or twice and changed nothing
            applied                 BOOLEAN NOT NULL DEFAULT false,
            created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
            CHECK (status <> 'completed' OR (output IS NOT NULL AND output <> '')),
            CHECK (status <> 'failed' OR (error IS NOT NULL AND error <> ''))
        );
        CREATE INDEX subtask_results_task_id_idx ON subtask_results (task_id, created_at);
        CREATE INDEX subtask_results_subtask_id_idx ON subtask_results (subtask_id);
        CREATE INDEX subtask_results_agent_id_idx ON subtask_results (agent_id, created_at DESC);

        -- Audit tables accept rows for any task id: an audit record must never be lost to a constraint.
        CREATE TABLE agent_logs (
            id                      BIGSERIAL PRIMARY KEY,
            agent_id                TEXT NOT NULL,
            task_id                 TEXT,
            subtask_id              TEXT,
            level                   TEXT NOT NULL CHECK (level IN ('DEBUG', 'INFO', 'WARNING', 'ERROR')),
            message                 TEXT NOT NULL,
            metadata                JSONB NOT NULL DEFAULT '{}',
            created_at              TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX agent_logs_created_at_idx ON agent_logs (created_at DESC);
        CREATE INDEX agent_logs_agent_id_created_at_idx ON agent_logs (agent_id, created_at DESC);
        CREATE INDEX agent_logs_task_id_idx ON agent_logs (task_id);

        CREATE TABLE tool_calls (
            id                      BIGSERIAL PRIMARY KEY,
            agent_id                TEXT NOT NULL,
            task_id                 TEXT NOT NULL,
            subtask_id              TEXT,
            attempt                 INTEGER,
            tool_name               TEXT NOT NULL,
            arguments               JSONB NOT NULL DEFAULT '{}',
            is_error                BOOLEAN NOT NULL DEFAULT false,
            outcome                 TEXT NOT NULL DEFAULT '',
            duration_ms             DOUBLE PRECISION NOT NULL DEFAULT 0,
            created_at              TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX tool_calls_task_id_idx ON tool_calls (task_id, created_at);
        CREATE INDEX tool_calls_agent_id_idx ON tool_calls (agent_id, created_at DESC);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE tool_calls, agent_logs, subtask_results, subtasks, tasks")
