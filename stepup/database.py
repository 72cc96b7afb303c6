"""Where the ``stepup`` command keeps its state, and the commands about it.

The database is ``--database URL``, else ``$STEPUP_DATABASE_URL``, else ``stepup.db`` in the
per-user data directory (``$XDG_DATA_HOME/stepup`` or ``~/.local/share/stepup``; see
:func:`provider.db.default_database_url`) — never a path relative to where a command is started.
Every server says where its database is in its banner, and every other command in its output.

Servers create their database and migrate it on start. Commands that read or change an existing
one (``totp``, ``rotate-keys``) never create one: finding none, they say where they looked.
``stepup db upgrade`` migrates without starting a server; ``stepup sandbox --reset`` starts over.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from provider.db import (
    Database,
    DatabaseUnavailable,
    data_directory,
    default_database_url,
    sqlite_path,
)
from provider.schema import Upgrade

__all__ = [
    "checked_location",
    "cmd_db_upgrade",
    "cmd_rotate_keys",
    "cmd_totp",
    "database_url",
    "existing_database",
    "print_database",
    "reachable_database",
    "reset_database",
]


LEGACY_DEFAULT = Path(".stepup") / "stepup.db"  # 0.1.0's default, under the working directory


def database_url(args: argparse.Namespace) -> str:
    """``--database``, else ``$STEPUP_DATABASE_URL``, else the per-user default.

    Someone upgrading from 0.1.0 may have state in ``./.stepup/stepup.db``: when the default is
    taken and that file is here, a note on stderr says how to keep using it.
    """
    chosen = getattr(args, "database", None) or os.environ.get("STEPUP_DATABASE_URL")
    if chosen:
        return str(chosen)
    if LEGACY_DEFAULT.is_file():
        sys.stderr.write(
            f"stepup: note: {LEGACY_DEFAULT.absolute()} is a database of stepup 0.1.0, which kept "
            f"it under the current folder; this build uses {data_directory() / 'stepup.db'}. "
            f"To keep using the old one: --database sqlite:///{LEGACY_DEFAULT}\n"
        )
    return default_database_url()


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]


def reachable_database(url: str) -> Database:
    """The database a server will use, opened once to check it can be (created and) reached."""
    db = Database(url)
    try:
        with db.engine.connect():
            pass
    except DBAPIError as exc:
        db.dispose()
        raise DatabaseUnavailable(
            f"cannot open the database {db.location}: {_first_line(exc)}"
        ) from exc
    return db


def checked_location(url: str) -> str:
    """Where the database at ``url`` is, once it has been checked that it can be opened."""
    db = reachable_database(url)
    db.dispose()
    return db.location


def existing_database(url: str) -> Database:
    """The database at ``url`` if it exists and holds the provider's tables; never creates one."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise DatabaseUnavailable(
            f"no database at {path}: start `stepup sandbox` (or `stepup provider`) first, "
            "or pass the server's --database"
        )
    db = reachable_database(url)
    with db.engine.connect() as conn:
        has_users = inspect(conn).has_table("op_users")
    if not has_users:
        db.dispose()
        raise DatabaseUnavailable(f"{db.location} holds no stepup provider tables")
    return db


def print_database(out: TextIO, location: str, upgrades: Iterable[Upgrade | None]) -> None:
    """The banner's database line, and what start-up did to the schema when it did anything."""
    out.write(f"Database: {location}\n")
    for u in upgrades:
        if u is not None and u.changed:
            out.write(f"  {u.describe()}\n")


# --- stepup db upgrade ---------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace, out: TextIO) -> int:
    """Migrate the provider's and the demo bank's tables to this build's newest revisions."""
    from provider.migrations import PROVIDER
    from provider.schema import upgrade
    from resource_api.bank.migrations import BANK

    db = reachable_database(database_url(args))
    try:
        out.write(f"Database: {db.location}\n")
        for migrations in (PROVIDER, BANK):
            out.write(f"  {upgrade(db.engine, migrations).describe()}\n")
    finally:
        db.dispose()
    return 0


# --- stepup totp ---------------------------------------------------------------------------------


def cmd_totp(args: argparse.Namespace, out: TextIO) -> int:
    """The user's current code, from the database the provider uses (where enrolments are)."""
    from provider.clock import Clock
    from provider.factors import totp
    from provider.models import User

    try:
        db = existing_database(database_url(args))
    except DatabaseUnavailable as exc:
        sys.stderr.write(f"stepup totp: {exc}\n")
        return 1
    try:
        with db.session() as s:
            row = s.execute(
                select(User.username, User.totp_secret).where(User.username == args.user)
            ).first()
    finally:
        db.dispose()
    if row is None:
        sys.stderr.write(f"stepup totp: no user {args.user!r} in {db.location}\n")
        return 1
    if row.totp_secret is None:
        sys.stderr.write(
            f"stepup totp: {args.user!r} has no TOTP factor yet in {db.location}; "
            "it is set up at the user's first step-up\n"
        )
        return 1
    out.write(f"{totp.code_at(row.totp_secret, Clock().now())}\n")
    sys.stderr.write(f"stepup totp: {args.user}'s code from {db.location}\n")
    return 0


# --- stepup rotate-keys --------------------------------------------------------------------------


def cmd_rotate_keys(args: argparse.Namespace, out: TextIO) -> int:
    from provider.clock import Clock
    from provider.keys import rotate
    from provider.migrations import PROVIDER
    from provider.schema import check

    db = existing_database(database_url(args))
    try:
        check(db.engine, PROVIDER)
        with db.session() as s:
            kid = rotate(s, Clock().now())
    finally:
        db.dispose()
    out.write(
        f"New signing key {kid} in {db.location}. Running provider processes sign with it\n"
        "within a minute; the old key stays published until the tokens it signed have expired.\n"
    )
    return 0


# --- stepup sandbox --reset ----------------------------------------------------------------------


def reset_database(url: str, out: TextIO) -> None:
    """Remove the sandbox's state so the server starts over from the seeded users, and say what
    was removed: an SQLite file is deleted; on another database stepup's tables are dropped."""
    from provider.models import Base
    from provider.schema import database_lock
    from resource_api.bank.store import metadata as bank_metadata

    path = sqlite_path(url)
    if path is not None and not path.exists():
        out.write(f"Reset: nothing to remove, no database at {path}\n")
        return
    db = reachable_database(url)
    # In the order the models declare them (users first), for the message; dropped dependents first.
    tables = [*Base.metadata.tables.values(), *bank_metadata.tables.values()]
    drop_order = [*Base.metadata.sorted_tables, *bank_metadata.sorted_tables][::-1]
    version_tables = ["op_alembic_version", "bank_alembic_version"]
    try:
        with db.engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            counts = {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in tables
                if t.name in present
            }
        if path is None:
            with database_lock(db.engine) as conn:
                for t in drop_order:
                    if t.name in present:
                        t.drop(conn)
                for name in version_tables:
                    if name in present:
                        conn.execute(text(f'DROP TABLE "{name}"'))
    finally:
        db.dispose()
    if path is not None:
        for suffix in ("", "-wal", "-shm", ".write-lock"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    rows = ", ".join(f"{n} {name}" for name, n in counts.items() if n) or "no rows"
    what = f"the file {path}" if path is not None else f"stepup's tables in {db.location}"
    out.write(f"Reset: removed {what} ({rows})\n")
