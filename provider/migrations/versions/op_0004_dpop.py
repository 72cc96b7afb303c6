"""DPoP (RFC 9449): clients get ``dpop_bound_access_tokens``, codes and grants ``dpop_jkt``, and
accepted proofs are remembered in ``op_dpop_proofs`` (``jti`` replay, §11.1).

Revision ID: op_0004
Revises: op_0003

Like ``op_0002``, each change is made only when missing: a database adopted without a version
table may already have what this build's models create.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "op_0004"
down_revision = "op_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())

    def missing(table: str, column: str) -> bool:
        return column not in {c["name"] for c in inspector.get_columns(table)}

    if missing("op_clients", "dpop_bound_access_tokens"):
        op.add_column(
            "op_clients",
            sa.Column(
                "dpop_bound_access_tokens", sa.Boolean(), nullable=False, server_default=sa.false()
            ),
        )
    for table in ("op_codes", "op_grants"):
        if missing(table, "dpop_jkt"):
            op.add_column(table, sa.Column("dpop_jkt", sa.String(64), nullable=True))
    if "op_dpop_proofs" not in inspector.get_table_names():
        op.create_table(
            "op_dpop_proofs",
            sa.Column("key", sa.String(64), nullable=False),
            sa.Column("expires_at", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("key", name="pk_op_dpop_proofs"),
        )
        op.create_index("ix_op_dpop_proofs_expires_at", "op_dpop_proofs", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_op_dpop_proofs_expires_at", table_name="op_dpop_proofs")
    op.drop_table("op_dpop_proofs")
    for table, column in (
        ("op_grants", "dpop_jkt"),
        ("op_codes", "dpop_jkt"),
        ("op_clients", "dpop_bound_access_tokens"),
    ):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
