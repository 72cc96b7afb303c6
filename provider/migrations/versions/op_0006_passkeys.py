"""Passkeys: the users' WebAuthn credentials, and the challenge an interaction's page was given.

Revision ID: op_0006
Revises: op_0005

Like op_0002, it makes only what is missing: a database without a version table that already
has these tables (made by ``create_all`` from the models) is adopted as ``op_0001`` and arrives
here with them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "op_0006"
down_revision = "op_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "op_passkeys" not in inspector.get_table_names():
        _create_passkeys()
    columns = {c["name"] for c in inspector.get_columns("op_interactions")}
    if "passkey_challenge" not in columns:
        op.add_column("op_interactions", sa.Column("passkey_challenge", sa.String(80)))


def _create_passkeys() -> None:
    op.create_table(
        "op_passkeys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey(
                "op_users.id", ondelete="CASCADE", name="fk_op_passkeys_user_id_op_users"
            ),
            nullable=False,
        ),
        sa.Column("credential_id", sa.String(1400), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("aaguid", sa.String(36), nullable=False),
        sa.Column("attestation_format", sa.String(32), nullable=False),
        sa.Column("hardware", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("backup_eligible", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("transports", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("last_used_at", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_op_passkeys"),
        sa.UniqueConstraint("credential_id", name="uq_op_passkeys_credential_id"),
    )
    op.create_index("ix_op_passkeys_user_id", "op_passkeys", ["user_id"])


def downgrade() -> None:
    with op.batch_alter_table("op_interactions") as batch:
        batch.drop_column("passkey_challenge")
    op.drop_index("ix_op_passkeys_user_id", table_name="op_passkeys")
    op.drop_table("op_passkeys")
