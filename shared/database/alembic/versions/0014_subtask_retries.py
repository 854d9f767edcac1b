"""What an operator's retry needs, and why a subtask is where it is.

`attempt_base` is the number of attempts a subtask had when an operator last retried it (0 before that): attempt
numbers keep growing, so every attempt's results stay apart, and MAX_RETRIES counts the attempts after the base.
`last_error` is the error of the subtask's latest failed attempt: the reason a queued attempt 2 runs, or why a
failed subtask failed, kept beside the subtask so the task detail shows it without reading every result.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE subtasks
            ADD COLUMN attempt_base INTEGER NOT NULL DEFAULT 0 CHECK (attempt_base >= 0),
            ADD COLUMN last_error TEXT;
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE subtasks DROP COLUMN last_error, DROP COLUMN attempt_base;")
