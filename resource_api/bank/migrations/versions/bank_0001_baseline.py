"""Baseline: the demo bank's tables as stepup 0.1.0 made them with ``create_all``.

Revision ID: bank_0001
Revises: (none)

Frozen here rather than taken from ``resource_api.bank.store``, so this revision keeps meaning
what 0.1.0 had; on a database that 0.1.0 created it only fills gaps.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column, Float, ForeignKey, Integer, MetaData, String, Table

from provider.schema import create_or_adopt

revision = "bank_0001"
down_revision = None
branch_labels = None
depends_on = None

metadata = MetaData()

Table(
    "bank_customers",
    metadata,
    Column("sub", String(255), primary_key=True),
    Column("email", String(254), nullable=True),
    Column("created_at", Float, nullable=False),
)
Table(
    "bank_accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("sub", String(255), ForeignKey("bank_customers.sub"), nullable=False, index=True),
    Column("name", String(60), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance_cents", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)
Table(
    "bank_transfers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("sub", String(255), nullable=False),
    Column("from_account", String(40), ForeignKey("bank_accounts.id"), nullable=False),
    Column("to_account", String(40), ForeignKey("bank_accounts.id"), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("description", String(140), nullable=False),
    Column("acr", String(255), nullable=True),
    Column("auth_time", Float, nullable=True),
    Column("created_at", Float, nullable=False),
)
Table(
    "bank_transactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(40), ForeignKey("bank_accounts.id"), nullable=False, index=True),
    Column("transfer_id", String(40), ForeignKey("bank_transfers.id"), nullable=True),
    Column("amount_cents", BigInteger, nullable=False),
    Column("description", String(140), nullable=False),
    Column("created_at", Float, nullable=False),
)


def upgrade() -> None:
    create_or_adopt(metadata)


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
