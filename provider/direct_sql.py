"""The token endpoint's statements on SQLite's own connection, without SQLAlchemy's execution.

Running a compiled Core statement through SQLAlchemy — an execution context, parameter and result
processing, a result object — costs about 90 µs on the benchmark machine; SQLite runs each of the
token endpoint's statements in about 25 µs. An exchange runs three (read the code or refresh
token, spend it, record the grant), so on SQLite they are run here instead
(docs/benchmarks.md, "The token endpoint against node-oidc-provider").

What stays SQLAlchemy's: the statements themselves (built once in :mod:`provider.store`) and their
SQL, compiled once per statement for SQLite's named parameters. What is done here instead of its
type processing: JSON columns and parameters (``json.dumps``/``json.loads``, ``None`` stored as
JSON ``null`` as SQLAlchemy's ``JSON`` does). Any other type with a processor is refused when the
statement is prepared, so a column added later cannot be read wrongly in silence. PostgreSQL
keeps SQLAlchemy's connection: :meth:`Direct.connect` hands it out there.

:class:`DirectConnection` offers the part of ``Connection`` the store's functions use —
``execute(statement, params)`` with ``rowcount`` and ``first()``, ``commit()``, ``rollback()`` —
so they run unchanged on either.
"""

from __future__ import annotations

import json
import sqlite3
from collections import namedtuple
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import JSON, Engine, Integer, String
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

__all__ = ["Direct", "DirectConnection"]

#: SQLite's dialect with ``:name`` parameters, which sqlite3 binds from a dict.
_NAMED = sqlite.dialect(paramstyle="named")


def _kind(type_: TypeEngine[Any], what: str) -> bool:
    """Whether values of ``type_`` are JSON (else they pass as they are); refuses the others."""
    if isinstance(type_, JSON):
        return True
    if isinstance(type_, Integer | String):
        return False
    raise TypeError(f"{what}: {type_!r} needs SQLAlchemy's type processing; not run directly")


class _Prepared:
    """One statement, for one set of parameter names: its SQL and how to convert values."""

    def __init__(self, statement: ClauseElement, names: tuple[str, ...]) -> None:
        compiled = statement.compile(dialect=_NAMED, column_keys=list(names))
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self.json_binds = tuple(
            (name, getattr(bind.type, "none_as_null", False))
            for name, bind in compiled.binds.items()
            if _kind(bind.type, f"parameter {name}")
        )
        columns = list(getattr(statement, "selected_columns", ()))
        self.row: Any = namedtuple("Row", [c.key for c in columns]) if columns else None
        self.json_columns = tuple(
            i for i, c in enumerate(columns) if _kind(c.type, f"column {c.key}")
        )

    def params(self, given: Mapping[str, Any]) -> Mapping[str, Any]:
        if not self.json_binds:
            return given
        converted = dict(given)
        for name, none_as_null in self.json_binds:
            value = converted.get(name)
            converted[name] = None if value is None and none_as_null else json.dumps(value)
        return converted

    def result(self, row: tuple[Any, ...]) -> Any:
        assert self.row is not None
        if self.json_columns:
            values = list(row)
            for i in self.json_columns:
                if values[i] is not None:
                    values[i] = json.loads(values[i])
            row = tuple(values)
        return self.row._make(row)


class DirectResult:
    def __init__(self, cursor: sqlite3.Cursor, prepared: _Prepared) -> None:
        self.cursor = cursor
        self.prepared = prepared

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount

    def first(self) -> Any:
        row = self.cursor.fetchone()
        return None if row is None else self.prepared.result(row)


class DirectConnection:
    """A pooled sqlite3 connection, speaking enough of SQLAlchemy's ``Connection``."""

    def __init__(self, connection: sqlite3.Connection, cache: dict[Any, _Prepared]) -> None:
        self.connection = connection
        self.cache = cache

    def execute(self, statement: ClauseElement, params: Mapping[str, Any]) -> DirectResult:
        key = (statement, tuple(params))
        prepared = self.cache.get(key)
        if prepared is None:
            prepared = self.cache[key] = _Prepared(statement, tuple(params))
        return DirectResult(
            self.connection.execute(prepared.sql, prepared.params(params)), prepared
        )

    def commit(self) -> None:
        self.connection.commit()

    def rollback(self) -> None:
        self.connection.rollback()


class Direct:
    """Connections for the token endpoint's statements: direct on SQLite, SQLAlchemy's elsewhere."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.cache: dict[Any, _Prepared] = {}  # bounded: the store's statements, by name sets

    @contextmanager
    def connect(self) -> Iterator[Any]:
        if not self.is_sqlite:
            with self.engine.connect() as conn:
                yield conn
            return
        pooled = self.engine.raw_connection()
        try:
            driver = pooled.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            yield DirectConnection(driver, self.cache)
        finally:
            pooled.close()  # back to the pool, which rolls back whatever was left open
