"""Offers of an attempt are fenced: each carries a delivery token, an agent accepts it, results must carry it.

A delivery the dispatcher gave up on (a timeout) used to go back to the queue under the same identity, so a stalled
agent that woke up later could still run the attempt, and its report completed the subtask another agent was
running. Now every claim draws a fresh `delivery_token`; the agent marks the offer `accepted_at` before it runs it,
and only an offer nobody accepted can be taken back. A result applies only when it carries the token of the current
offer, which `subtask_results` records.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE subtasks ADD COLUMN delivery_token TEXT, ADD COLUMN accepted_at TIMESTAMPTZ;
        ALTER TABLE subtask_results ADD COLUMN delivery_token TEXT;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE subtasks DROP COLUMN delivery_token, DROP COLUMN accepted_at;
        ALTER TABLE subtask_results DROP COLUMN delivery_token;
        """
    )
