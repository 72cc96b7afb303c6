"""The demo bank's schema migrations (Alembic revision scripts in ``versions/``).

Its tables are ``bank_*``, beside the provider's in the same database; how far they got is
recorded in ``bank_alembic_version``. The first revision, ``bank_0001``, is the schema of stepup
0.1.0, which made the tables with ``create_all``: such a database is adopted by it.
"""

from __future__ import annotations

from pathlib import Path

from provider.schema import Migrations

__all__ = ["BANK"]

BANK = Migrations(
    name="bank",
    directory=Path(__file__).resolve().parent,
    version_table="bank_alembic_version",
    legacy_tables=("bank_customers", "bank_accounts", "bank_transfers", "bank_transactions"),
)
