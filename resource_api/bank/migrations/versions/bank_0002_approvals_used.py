"""The approvals the bank has spent: one RFC 9396 approval pays one transfer.

Revision ID: bank_0002
Revises: bank_0001

A token approved for a transfer (``authorization_details``, docs/transactional.md) is recorded
here, by its issuer and ``jti``, in the transaction that makes the transfer; the primary key
refuses a second use atomically, in one process or many.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "bank_0002"
down_revision = "bank_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bank_approvals_used",
        sa.Column("approval", sa.String(64), primary_key=True),
        sa.Column("sub", sa.String(255), nullable=False),
        sa.Column("transfer_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bank_approvals_used")
