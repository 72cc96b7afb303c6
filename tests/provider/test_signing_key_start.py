"""The first signing key generated on a thread while the start goes on
(:func:`provider.keys.start_signing_key`): one key stored, however it is called, and a failure
on the thread raised to the caller."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from provider import keys
from provider.db import Database
from provider.migrations import PROVIDER
from provider.models import SigningKey
from provider.schema import upgrade


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'op.db'}")
    upgrade(database.engine, PROVIDER)
    return database


def _stored(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(SigningKey)) or 0)


def test_a_new_database_gets_one_key_and_a_second_start_none(db: Database) -> None:
    finish = keys.start_signing_key(db, 1_700_000_000)
    first = finish()
    assert len(first) == 1
    assert _stored(db) == 1
    assert keys.start_signing_key(db, 1_700_000_000)() == {}
    assert keys.ensure_signing_key(db, 1_700_000_000) == {}
    assert _stored(db) == 1


def test_a_key_another_process_stored_meanwhile_wins(db: Database) -> None:
    finish = keys.start_signing_key(db, 1_700_000_000)
    theirs = keys.ensure_signing_key(db, 1_700_000_000)  # the other process, first
    assert finish() == {}
    with db.session() as s:
        assert list(s.scalars(select(SigningKey.kid))) == list(theirs)


def test_a_failure_on_the_thread_is_raised_by_finish(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_now: int) -> object:
        raise RuntimeError("no entropy")

    monkeypatch.setattr(keys, "_new_key", broken)
    finish = keys.start_signing_key(db, 1_700_000_000)
    with pytest.raises(RuntimeError, match="no entropy"):
        finish()
    assert _stored(db) == 0
