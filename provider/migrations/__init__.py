"""The provider's schema migrations (Alembic revision scripts in ``versions/``).

Its tables are ``op_*``; how far they got is recorded in ``op_alembic_version``. The first
revision, ``op_0001``, is the schema of stepup 0.1.0, which made its tables with ``create_all``:
a database from that build is adopted by it (see :func:`provider.schema.create_or_adopt`). A new
database is created from :mod:`provider.models` at the newest revision instead of replaying them.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

from ..schema import Migrations

__all__ = ["PROVIDER"]


def _models() -> MetaData:
    from ..models import Base

    return Base.metadata


PROVIDER = Migrations(
    name="provider",
    directory=Path(__file__).resolve().parent,
    version_table="op_alembic_version",
    legacy_tables=("op_users", "op_clients", "op_signing_keys", "op_settings"),
    models=_models,
)
