"""The factor API's audit trail (``op_factor_audit``): one row per verification.

Revision ID: op_0007
Revises: op_0006

A new table only; see :class:`provider.models.FactorAudit` and :mod:`provider.views.factors`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "op_0007"
down_revision = "op_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database whose version table was lost is adopted as op_0001 and replays every revision
    # (provider.schema): the table may be there already.
    if sa.inspect(op.get_bind()).has_table("op_factor_audit"):
        return
    op.create_table(
        "op_factor_audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("user_ref", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(64)),
        sa.Column("factor", sa.String(32), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("transaction_id", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_op_factor_audit"),
    )
    op.create_index("ix_op_factor_audit_subject_at", "op_factor_audit", ["subject", "at"])


def downgrade() -> None:
    op.drop_index("ix_op_factor_audit_subject_at", "op_factor_audit")
    op.drop_table("op_factor_audit")
