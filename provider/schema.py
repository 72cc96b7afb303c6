"""Schema migrations with Alembic, safe when several processes start at once on one database.

Each component that owns tables (the provider: ``op_*``; the demo bank: ``bank_*``) ships its
migration scripts inside its package and records how far its schema got in a version table of its
own (``op_alembic_version``, ``bank_alembic_version``). :func:`upgrade` brings one component to its
newest revision:

1. **Cheap check first.** One small query reads the version table; at the newest revision (every
   start but the first after an upgrade) nothing else happens: no lock, no migration machinery.
2. **Otherwise, one process at a time.** :func:`database_lock` serialises the work: on PostgreSQL a
   transaction-scoped advisory lock (``pg_advisory_xact_lock``, keyed by the schema, so databases
   and schemas do not wait for each other); on SQLite a ``BEGIN IMMEDIATE`` transaction, which
   holds the database's write lock. The version is read again under the lock — a process that
   waited finds the work done — and the migrations run in that same transaction, so on both
   databases the DDL, the new version and the lock's release commit together: a process that dies
   half-way leaves the schema as it was.
3. **Adoption.** A database made by a build from before migrations (``create_all``, no version
   table) is adopted rather than broken: its first revision, the *baseline*, creates only the
   tables that are missing and adds the nullable columns an older table lacks
   (:func:`create_or_adopt`), then the version table records it like any other.
4. **A new database is made at the newest revision.** When the component has none of its tables
   yet and says where its models are (:attr:`Migrations.models`), its tables are created from
   them (``create_all``) and the version table is written at the newest revision, in the same
   locked transaction — Alembic's own recipe for a fresh database ("create_all, then stamp"),
   without importing Alembic or replaying every revision (~0.1 s of a first start;
   docs/benchmarks.md). ``tests/provider/test_migrations.py`` proves that both ways give the same
   schema: replaying the revisions builds exactly the models' schema, and a database made at the
   newest revision reflects identically to one made by replaying them.

Alembic keeps its running context in module globals, so one process runs one migration at a time
(a thread lock) whatever its threads do. It is imported only on the careful path: the cheap check
finds this build's newest revision by reading the scripts' ``revision`` and ``down_revision``
lines (:func:`head_revision`), so a start at the newest revision imports no Alembic (nor Mako
and the dialects it brings, ~0.1 s of CPU; docs/benchmarks.md).

How to add a migration: ``docs/provider.md`` ("Database and migrations").
"""

from __future__ import annotations

import ast
import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy import column as column_named
from sqlalchemy import table as table_named
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.expression import ColumnClause

from .db import display_url

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

__all__ = [
    "Migrations",
    "SchemaError",
    "Upgrade",
    "check",
    "create_or_adopt",
    "current_revision",
    "database_lock",
    "head_revision",
    "upgrade",
]

# Alembic's context lives in module globals: one migration at a time in a process.
_PROCESS_LOCK = threading.RLock()
_SCRIPTS: dict[Path, ScriptDirectory] = {}
_HEADS: dict[Path, str] = {}
# How long a process waits for another's migration on SQLite (PostgreSQL waits as long as needed).
SQLITE_LOCK_TIMEOUT = 120.0


class SchemaError(RuntimeError):
    """The database's schema is not one this build can use; the message says what to do."""


@dataclass(frozen=True)
class Migrations:
    """One component's migration scripts and the version table that records how far it got."""

    name: str
    #: The folder holding ``versions/``, the revision scripts.
    directory: Path
    version_table: str
    #: Tables a build from before migrations created; finding one means "adopt, do not create".
    legacy_tables: tuple[str, ...]
    #: The component's tables as this build's models declare them (imported on first use), from
    #: which a new database is created at the newest revision; ``None``: replay every revision.
    models: Callable[[], MetaData] | None = None


@dataclass(frozen=True)
class Upgrade:
    """What :func:`upgrade` did: from which revision to which, on which database."""

    component: str
    database: str
    before: str | None
    after: str
    adopted: bool = False

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe(self) -> str:
        if not self.changed:
            return f"{self.component} tables: already at {self.after}"
        if self.adopted:
            return (
                f"{self.component} tables: adopted (made before migrations existed), "
                f"now at {self.after}"
            )
        if self.before is None:
            return f"{self.component} tables: created, at {self.after}"
        return f"{self.component} tables: upgraded from {self.before} to {self.after}"


def _script(migrations: Migrations) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    with _PROCESS_LOCK:
        script = _SCRIPTS.get(migrations.directory)
        if script is None:
            script = _SCRIPTS[migrations.directory] = ScriptDirectory(str(migrations.directory))
        return script


def head_revision(migrations: Migrations) -> str:
    """The newest revision this build ships (read from the scripts once per process).

    Read from the scripts' text when they say it plainly (:func:`_scanned_head`), else — or for
    anything unusual — by Alembic, which imports every script.
    """
    head = _HEADS.get(migrations.directory)
    if head is None:
        head = _scanned_head(migrations.directory) or _alembic_head(migrations)
        _HEADS[migrations.directory] = head
    return head


def _alembic_head(migrations: Migrations) -> str:
    with _PROCESS_LOCK:
        head = _script(migrations).get_current_head()
    assert head is not None, f"{migrations.directory} has no revisions"
    return head


# `revision = "op_0007"` and `down_revision = "op_0006"` (or None) at the start of a line, with or
# without a type annotation, as Alembic's templates write them.
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\b[^=\n]*=\s*(.+?)\s*$", re.M)


def _scanned_head(directory: Path) -> str | None:
    """The one revision no other script revises, read from each script's own lines without
    importing any; ``None`` when a script does not say both plainly (a merge revision's tuple, a
    computed value, two assignments) or the scripts do not make one chain ending in one head —
    then Alembic decides. The migrations under the lock always use Alembic's own reading."""
    revises: dict[str, str | None] = {}
    for path in sorted((directory / "versions").glob("*.py")):
        if path.name == "__init__.py":
            continue
        found: dict[str, list[object]] = {}
        for name, value in _ASSIGNMENT.findall(path.read_text(encoding="utf-8")):
            try:
                found.setdefault(name, []).append(ast.literal_eval(value))
            except (ValueError, SyntaxError):
                return None
        revision, down = found.get("revision", []), found.get("down_revision", [])
        if len(revision) != 1 or len(down) != 1 or not isinstance(revision[0], str):
            return None
        if down[0] is not None and not isinstance(down[0], str):
            return None
        if revision[0] in revises:
            return None
        revises[revision[0]] = down[0]
    bases = [r for r, down in revises.items() if down is None]
    heads = set(revises) - set(revises.values())
    if len(bases) != 1 or len(heads) != 1 or not set(revises.values()) <= {*revises, None}:
        return None
    return heads.pop()


def _quick_version(engine: Engine, migrations: Migrations) -> str | None:
    """The recorded revision in one plain query; ``None`` when there is no version table yet
    (or anything unusual, which the careful path under the lock then looks at)."""
    with engine.connect() as conn:
        try:
            version: ColumnClause[str] = column_named("version_num")
            query = select(version).select_from(table_named(migrations.version_table))
            versions = conn.execute(query).scalars().all()
        except DBAPIError:  # no such table: a new database, or one from before migrations
            return None
    return versions[0] if len(versions) == 1 else None


def current_revision(connection: Connection, migrations: Migrations) -> str | None:
    """The revision the database records; ``None`` when it has no version table yet."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(
        connection, opts={"version_table": migrations.version_table}
    )
    return context.get_current_revision()


def _legacy(connection: Connection, migrations: Migrations) -> bool:
    names = set(inspect(connection).get_table_names())
    return any(t in names for t in migrations.legacy_tables)


def check(engine: Engine, migrations: Migrations) -> str:
    """The database's revision, which must be this build's newest (for servers told not to
    migrate); otherwise :class:`SchemaError` saying what to run."""
    head = head_revision(migrations)
    if _quick_version(engine, migrations) == head:
        return head
    with engine.connect() as conn:
        current = current_revision(conn, migrations)
    if current != head:
        where = display_url(engine)
        found = current or "no version"
        raise SchemaError(
            f"the {migrations.name} tables in {where} are at {found}, this build needs {head}: "
            "run `stepup db upgrade` first"
        )
    return head


def upgrade(engine: Engine, migrations: Migrations) -> Upgrade:
    """Bring one component's tables to the newest revision (see the module docstring)."""
    where = display_url(engine)
    head = head_revision(migrations)
    if _quick_version(engine, migrations) == head:
        return Upgrade(migrations.name, where, head, head)
    with _PROCESS_LOCK, database_lock(engine) as conn:
        if migrations.models is not None and _is_new(conn, migrations):
            _create_at_head(conn, migrations, head)
            return Upgrade(migrations.name, where, None, head)
        head = _alembic_head(migrations)  # the careful path reads the scripts as Alembic does
        before = current_revision(conn, migrations)  # another process may have done it meanwhile
        adopted = before is None and _legacy(conn, migrations)
        if before != head:
            _run_to_head(conn, migrations, before)
    return Upgrade(migrations.name, where, before, head, adopted)


def _is_new(conn: Connection, migrations: Migrations) -> bool:
    """No version table, none of the component's tables, none from before migrations: read
    under the lock, so a process that waited for another's creation finds it done."""
    assert migrations.models is not None
    names = set(inspect(conn).get_table_names())
    ours = {migrations.version_table, *migrations.legacy_tables, *migrations.models().tables}
    return not names & ours


def _create_at_head(conn: Connection, migrations: Migrations, head: str) -> None:
    """The models' tables, and the version table written at ``head``, as Alembic would make it
    (``alembic.ddl.impl.DefaultImpl.version_table_impl``: ``version_num VARCHAR(32)``, primary
    key ``<table>_pkc``), so that the next migration finds its starting point."""
    assert migrations.models is not None
    migrations.models().create_all(conn)
    version = Table(
        migrations.version_table,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{migrations.version_table}_pkc"),
    )
    version.create(conn)
    conn.execute(version.insert().values(version_num=head))


def _run_to_head(conn: Connection, migrations: Migrations, before: str | None) -> None:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.util import CommandError

    script = _script(migrations)
    try:
        if before is not None:
            script.get_revision(before)
    except CommandError as exc:
        raise SchemaError(
            f"the {migrations.name} tables in {display_url(conn.engine)} are at {before}, a "
            f"revision this build does not know (a newer build migrated them); its newest is "
            f"{script.get_current_head()}"
        ) from exc

    def steps(heads: Any, _context: MigrationContext) -> Any:
        # What `alembic upgrade head` does, on the connection and transaction we hold.
        return script._upgrade_revs("head", heads)

    with EnvironmentContext(Config(), script, fn=steps, destination_rev="head") as env:
        env.configure(connection=conn, version_table=migrations.version_table)
        with env.begin_transaction():  # a no-op: the caller's transaction is the one
            env.run_migrations()


@contextmanager
def database_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that no other process holds at the same time, per database
    (PostgreSQL: per schema). Released when the transaction ends."""
    backend = engine.dialect.name
    if backend == "postgresql":
        with engine.connect() as conn, conn.begin():
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(schema)})
            yield conn
    elif backend == "sqlite" and make_url(engine.url).database not in (None, "", ":memory:"):
        locking = _sqlite_immediate_engine(engine)
        try:
            with locking.begin() as conn:
                yield conn
        finally:
            locking.dispose()
    else:  # an in-memory SQLite database lives in this process alone
        with engine.begin() as conn:
            yield conn


def _lock_key(schema: str) -> int:
    """A signed 64-bit advisory-lock key for stepup's schema work in ``schema``."""
    digest = hashlib.sha256(f"stepup-schema:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _sqlite_immediate_engine(engine: Engine) -> Engine:
    """An engine whose transactions start with ``BEGIN IMMEDIATE`` (the write lock at once).

    The sqlite3 module would start transactions itself, late and deferred, and not before DDL;
    the SQLAlchemy pysqlite recipe turns that off and emits the BEGIN we want instead.
    """
    locking = create_engine(
        engine.url, poolclass=NullPool, connect_args={"timeout": SQLITE_LOCK_TIMEOUT}
    )

    @event.listens_for(locking, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(locking, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return locking


def create_or_adopt(metadata: MetaData) -> None:
    """A baseline revision's body: create the tables of ``metadata`` that are missing, and add to
    the ones that exist (made by ``create_all`` before migrations) the nullable columns they lack.

    A missing column that cannot be null has no value to give the rows already there: that
    database is refused with a message rather than guessed at.
    """
    from alembic import op

    conn = op.get_bind()
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in existing:
            table.create(conn)
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.nullable:
                raise SchemaError(
                    f"table {table.name} lacks the column {column.name}, which cannot be null: "
                    "this database was made by a build too old to adopt"
                )
            op.add_column(table.name, Column(column.name, column.type, nullable=True))
