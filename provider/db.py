"""Engine and sessions: an SQLite file by default (WAL), PostgreSQL by URL.

SQLite is put in WAL mode with a busy timeout so the provider and the demo API, in one process or
several, can read while one writes; ``synchronous=NORMAL`` (see :func:`_sqlite_pragmas`) keeps
fsync out of each commit. For PostgreSQL pass e.g.
``postgresql+psycopg://user@127.0.0.1:5432/stepup``; a bare ``postgresql://`` URL is taken to mean
the psycopg 3 driver that ``pip install 'stepup-stack[postgres]'`` installs.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.schema import CreateColumn

__all__ = ["DEFAULT_DATABASE_URL", "Database", "create_schema", "normalise_url"]

DEFAULT_DATABASE_URL = "sqlite:///.stepup/stepup.db"


def normalise_url(url: str) -> str:
    """Map ``postgresql://`` and ``postgres://`` onto the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    """One engine and its session factory; shared by the provider and the demo API."""

    def __init__(self, url: str = DEFAULT_DATABASE_URL) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        kwargs: dict[str, Any] = {"future": True}
        self._write_lock_path: Path | None = None
        self._thread_lock = threading.Lock()
        self._lock_fd: tuple[int, int] | None = None  # (pid, fd): a descriptor per process
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
                self._write_lock_path = Path(f"{database}.write-lock")
            else:
                # An in-memory database lives in one connection; share it across threads.
                from sqlalchemy.pool import StaticPool

                kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            kwargs.update(pool_pre_ping=True)
        self.engine: Engine = create_engine(self.url, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def session(self) -> Session:
        return self.sessions()

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around a short write transaction on the hot path (the token endpoint).

        SQLite lets one writer at a time in, and a writer that finds the lock taken sleeps in
        its busy handler — a millisecond at first, then longer — even when the lock frees
        microseconds later. Under load that sleep, not the work, set the pace and the p99. So
        writers queue here instead: a thread lock within the process, then an ``flock`` on a
        file beside the database across processes; the kernel wakes the next one at once.
        PostgreSQL takes row locks: nothing to do.
        """
        if self._write_lock_path is None:
            yield
            return
        import fcntl

        with self._thread_lock:
            fd = self._lock_descriptor()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _lock_descriptor(self) -> int:
        # Opened in this process, never inherited: an flock belongs to the open file, so a
        # descriptor shared across fork() would let parent and children hold it together.
        pid = os.getpid()
        if self._lock_fd is None or self._lock_fd[0] != pid:
            assert self._write_lock_path is not None
            fd = os.open(self._write_lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._lock_fd = (pid, fd)
        return self._lock_fd[1]


def create_schema(engine: Engine, metadata: MetaData) -> None:
    """Create missing tables, and add the columns a newer version added to existing ones.

    ``create_all`` leaves an existing table as it is, so a database written by an earlier
    version would lack a new column and every query on its table would fail. Only additions are
    made: each new column is nullable or has a server default, so existing rows stay valid.
    Anything else (a changed type, a dropped column) is not done here.
    """
    metadata.create_all(engine)
    existing = inspect(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            have = {c["name"] for c in existing.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                if not column.nullable and column.server_default is None:
                    raise RuntimeError(
                        f"{table.name}.{column.name}: a new column needs a server default"
                    )
                ddl = CreateColumn(column).compile(dialect=engine.dialect)
                conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode, NORMAL syncs at checkpoints instead of at every commit: a commit costs no
    # fsync, and the database cannot be corrupted. An application crash loses nothing; a power
    # loss or OS crash may roll back the last commits. (SQLite, "Write-Ahead Logging".)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
