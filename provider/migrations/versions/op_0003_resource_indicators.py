"""Codes and grants remember their RFC 8707 resources (``resources``, JSON, null for none).

Revision ID: op_0003
Revises: op_0002

A code carries the resources its authorization request named to the token endpoint; a grant
keeps them, so a refresh can narrow them for one access token but never widen them. Rows written
before this revision have none, which means the default audience, as before. Like op_0002, the
columns are added only where they are missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "op_0003"
down_revision = "op_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table in ("op_codes", "op_grants"):
        # Only when missing: a database adopted as op_0001 may have been made by a build that
        # already had the column (as op_0002 does for require_pkce).
        if "resources" not in {c["name"] for c in inspector.get_columns(table)}:
            op.add_column(table, sa.Column("resources", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("op_grants") as batch:
        batch.drop_column("resources")
    with op.batch_alter_table("op_codes") as batch:
        batch.drop_column("resources")
