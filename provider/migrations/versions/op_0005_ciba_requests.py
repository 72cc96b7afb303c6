"""CIBA authentication requests (``op_ciba_requests``): OpenID Connect CIBA Core 1.0, poll mode.

Revision ID: op_0005
Revises: op_0004

A new table only; see :class:`provider.models.CibaRequest` and :mod:`provider.ciba_states`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "op_0005"
down_revision = "op_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database whose version table was lost is adopted as op_0001 and replays every revision
    # (provider.schema): the table may be there already.
    if sa.inspect(op.get_bind()).has_table("op_ciba_requests"):
        return
    op.create_table(
        "op_ciba_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("auth_req_hash", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey(
                "op_users.id",
                ondelete="CASCADE",
                name="fk_op_ciba_requests_user_id_op_users",
            ),
            nullable=False,
        ),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("acr", sa.Text(), nullable=False),
        sa.Column("binding_message", sa.Text()),
        sa.Column("authorization_details", sa.JSON()),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("last_poll_at", sa.Integer()),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.Column("amr", sa.JSON()),
        sa.Column("auth_time", sa.Integer()),
        sa.Column("decided_at", sa.Integer()),
        sa.PrimaryKeyConstraint("id", name="pk_op_ciba_requests"),
        sa.UniqueConstraint("auth_req_hash", name="uq_op_ciba_requests_auth_req_hash"),
    )
    op.create_index("ix_op_ciba_requests_user_state", "op_ciba_requests", ["user_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_op_ciba_requests_user_state", "op_ciba_requests")
    op.drop_table("op_ciba_requests")
