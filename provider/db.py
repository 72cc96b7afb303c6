"""Engine and sessions: an SQLite file by default (WAL), PostgreSQL by URL.

SQLite is put in WAL mode with a busy timeout so the provider and the demo API, in one process or
several, can read while one writes; ``synchronous=NORMAL`` (see :func:`_sqlite_pragmas`) keeps
fsync out of each commit. For PostgreSQL pass e.g.
``postgresql+psycopg://user@127.0.0.1:5432/stepup``; a bare ``postgresql://`` URL is taken to mean
the psycopg 3 driver that ``pip install 'stepup-stack[postgres]'`` installs.

The default database does not depend on the directory a command is started in: it is
``stepup.db`` in the per-user data directory of the XDG Base Directory specification,
``$XDG_DATA_HOME/stepup/`` or, when that is unset, ``~/.local/share/stepup/``
(:func:`default_database_url`; docs/configuration.md says why).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from .direct_sql import Direct

__all__ = [
    "Database",
    "DatabaseUnavailable",
    "data_directory",
    "default_database_url",
    "display_url",
    "normalise_url",
    "sqlite_path",
]


class DatabaseUnavailable(RuntimeError):
    """The database cannot be opened; the message says which and why, in one line."""


def data_directory() -> Path:
    """``$XDG_DATA_HOME/stepup``, else ``~/.local/share/stepup`` (XDG Base Directory spec:
    a relative ``XDG_DATA_HOME`` is invalid and ignored)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "stepup"


def default_database_url() -> str:
    return f"sqlite:///{data_directory() / 'stepup.db'}"


def normalise_url(url: str) -> str:
    """Map ``postgresql://`` and ``postgres://`` onto the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_path(url: str | URL) -> Path | None:
    """The file of an SQLite URL, made absolute; ``None`` for another database or ``:memory:``."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().absolute()


def display_url(url: str | URL | Engine) -> str:
    """Where a database is, for messages: SQLite files by absolute path, never a password."""
    parsed = url.url if isinstance(url, Engine) else make_url(url) if isinstance(url, str) else url
    path = sqlite_path(parsed)
    if path is not None:
        return f"sqlite:///{path}"
    return parsed.render_as_string(hide_password=True)


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(f"{url!r} is not a database URL ({exc})") from exc


class Database:
    """One engine and its session factory; shared by the provider and the demo API."""

    def __init__(self, url: str | None = None) -> None:
        self.url = normalise_url(url or default_database_url())
        parsed = _parse(self.url)
        kwargs: dict[str, Any] = {}
        path = sqlite_path(parsed)
        self._write_lock_path: Path | None = None
        self._thread_lock = threading.Lock()
        self._lock_fd: tuple[int, int] | None = None  # (pid, fd): a descriptor per process
        if parsed.get_backend_name() == "sqlite":
            if path is not None:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise DatabaseUnavailable(
                        f"cannot create the folder of {display_url(parsed)}: {exc.strerror}"
                    ) from exc
                self._write_lock_path = Path(f"{path}.write-lock")
            else:
                # An in-memory database lives in one connection; share it across threads.
                from sqlalchemy.pool import StaticPool

                kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            kwargs.update(pool_pre_ping=True)
        self.engine: Engine = create_engine_or_explain(parsed, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        #: Connections for the token endpoint's statements (provider/direct_sql.py).
        self.direct = Direct(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def location(self) -> str:
        """Where this database is, for messages (see :func:`display_url`)."""
        return display_url(self.engine)

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


def create_engine_or_explain(url: URL, **kwargs: Any) -> Engine:
    """``create_engine``, with a missing driver or dialect said in one line."""
    try:
        return create_engine(url, **kwargs)
    except ImportError as exc:  # the dialect is known, its driver is not installed
        if url.get_backend_name() == "postgresql":
            raise DatabaseUnavailable(
                "PostgreSQL needs its driver: pip install 'stepup-stack[postgres]'"
            ) from exc
        raise DatabaseUnavailable(f"{display_url(url)} needs a driver: {exc}") from exc
    except NoSuchModuleError as exc:
        raise DatabaseUnavailable(f"unknown kind of database in {display_url(url)}") from exc


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The timeout first: switching a new file to WAL needs the lock another process may hold.
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode, NORMAL syncs at checkpoints instead of at every commit: a commit costs no
    # fsync, and the database cannot be corrupted. An application crash loses nothing; a power
    # loss or OS crash may roll back the last commits. (SQLite, "Write-Ahead Logging".)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
