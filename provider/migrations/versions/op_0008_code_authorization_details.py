"""RFC 9396 at the authorization endpoint: codes keep the ``authorization_details`` the user
approved (``op_codes.authorization_details``), for the token the code is exchanged for.

Revision ID: op_0008
Revises: op_0007

Like ``op_0004``, the column is added only when missing: a database adopted without a version
table may already have what this build's models create.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "op_0008"
down_revision = "op_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("op_codes")}
    if "authorization_details" not in columns:
        op.add_column("op_codes", sa.Column("authorization_details", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("op_codes") as batch:
        batch.drop_column("authorization_details")
