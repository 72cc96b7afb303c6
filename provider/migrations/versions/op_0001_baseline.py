"""Baseline: the provider's tables as stepup 0.1.0 made them with ``create_all``.

Revision ID: op_0001
Revises: (none)

The tables are written out here, frozen, rather than taken from ``provider.models``: later
revisions change the models, and this revision must keep meaning what 0.1.0 had. On a database
that 0.1.0 created it only fills gaps (:func:`provider.schema.create_or_adopt`).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, MetaData, String, Table, Text

from provider.schema import create_or_adopt

revision = "op_0001"
down_revision = None
branch_labels = None
depends_on = None

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _int(name: str, nullable: bool = False) -> Column[int]:
    return Column(name, Integer, nullable=nullable)


Table(
    "op_users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subject", String(64), nullable=False, unique=True),
    Column("username", String(255), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("totp_secret", String(128)),
    _int("totp_last_step", nullable=True),
    Column("name", String(255)),
    Column("email", String(255)),
)
Table(
    "op_clients",
    metadata,
    Column("client_id", String(255), primary_key=True),
    Column("secret_hash", String(64)),
    Column("name", String(255)),
    Column("redirect_uris", JSON, nullable=False),
    Column("post_logout_redirect_uris", JSON, nullable=False),
    Column("grant_types", JSON, nullable=False),
    Column("scope", Text, nullable=False),
)
Table(
    "op_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sid_hash", String(64), nullable=False, unique=True),
    Column("user_id", ForeignKey("op_users.id", ondelete="CASCADE"), nullable=False),
    Column("factors", JSON, nullable=False),
    _int("created_at"),
    _int("expires_at"),
)
Table(
    "op_interactions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("browser_id", String(64), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("params", JSON, nullable=False),
    _int("started_at"),
    _int("expires_at"),
    Column("pending_totp_secret", String(128)),
)
Table(
    "op_codes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("client_id", String(255), nullable=False),
    Column("user_id", ForeignKey("op_users.id", ondelete="CASCADE"), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("nonce", Text),
    Column("code_challenge", String(128), nullable=False),
    Column("code_challenge_method", String(16), nullable=False),
    Column("acr", Text, nullable=False),
    Column("amr", JSON, nullable=False),
    _int("auth_time"),
    _int("session_id", nullable=True),
    _int("expires_at"),
    _int("consumed_at", nullable=True),
    # Added during 0.1.0's development: a database from before it gets the column on adoption.
    _int("reused_at", nullable=True),
)
Table(
    "op_grants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("family", String(64), nullable=False),
    _int("code_id", nullable=True),
    Column("client_id", String(255), nullable=False),
    _int("user_id", nullable=True),
    Column("scope", Text, nullable=False),
    Column("jti", String(64), nullable=False, unique=True),
    _int("access_expires_at"),
    Column("refresh_hash", String(64), unique=True),
    _int("refresh_expires_at", nullable=True),
    Column("acr", Text),
    Column("amr", JSON),
    _int("auth_time", nullable=True),
    _int("issued_at"),
    _int("rotated_at", nullable=True),
    _int("revoked_at", nullable=True),
    Index("ix_op_grants_family", "family"),
    Index("ix_op_grants_code", "code_id"),
)
Table(
    "op_signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("private_jwk", JSON, nullable=False),
    _int("created_at"),
    _int("retired_at", nullable=True),
)
Table(
    "op_throttle",
    metadata,
    Column("key", String(320), primary_key=True),
    _int("failures"),
    _int("locked_until"),
)
Table(
    "op_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


def upgrade() -> None:
    create_or_adopt(metadata)


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
