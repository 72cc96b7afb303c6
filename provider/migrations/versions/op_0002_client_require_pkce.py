"""Clients get ``require_pkce`` (true unless a confidential client is registered without PKCE).

Revision ID: op_0002
Revises: op_0001

A build between 0.1.0 and migrations added this column at start with its own ``ALTER TABLE``; a
database it touched has the column and no version table, is adopted as ``op_0001``, and arrives
here with the column already there, so it is added only when missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "op_0002"
down_revision = "op_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("op_clients")}
    if "require_pkce" not in columns:
        op.add_column(
            "op_clients",
            sa.Column("require_pkce", sa.Boolean(), nullable=False, server_default=sa.true()),
        )


def downgrade() -> None:
    with op.batch_alter_table("op_clients") as batch:
        batch.drop_column("require_pkce")
