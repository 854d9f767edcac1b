"""Each result records what isolated its attempt: the Claude session it ran in, the CLI config folder, the tools.

GET /isolation-report shows, per agent, that no attempt's conversation carried another's: every attempt runs one
fresh `query()`, so two attempts reporting the same Claude session id is evidence of a shared conversation. It also
shows each agent's private CLI config folder (two agents sharing one would share transcripts) and checks each tool
call against the allowlist its attempt ran under. Results from before this revision have none of these: the report
says so rather than guessing.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE subtask_results ADD COLUMN claude_session_id TEXT, ADD COLUMN claude_config_dir TEXT,
            ADD COLUMN allowed_tools TEXT[];
        CREATE INDEX subtask_results_claude_session_id_idx ON subtask_results (claude_session_id)
            WHERE claude_session_id IS NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX subtask_results_claude_session_id_idx;
        ALTER TABLE subtask_results DROP COLUMN claude_session_id, DROP COLUMN claude_config_dir,
            DROP COLUMN allowed_tools;
        """
    )
