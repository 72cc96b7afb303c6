"""Seeding the config's users at start (``provider.store.start_seed`` / ``seed_users``): the
argon2 work runs on threads of its own while the app is built, and what it decides is what the
previous single-threaded seeding decided — a new user hashed, an unchanged password kept (not
re-hashed), a changed one replaced before the app serves anything. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from flask import Flask
from sqlalchemy import select

from provider import create_app, store
from provider.factors.password import verify_password
from provider.models import User
from provider.settings import UserConfig
from stepup.config import StepupConfig


def _hashes(app: Flask) -> dict[str, str]:
    """Each user's stored hash; the app's engine closed."""
    db = app.extensions["stepup_provider"].db
    try:
        with db.session() as s:
            rows = s.execute(select(User.username, User.password_hash))
            return {row.username: row.password_hash for row in rows}
    finally:
        db.dispose()


def test_an_unchanged_password_is_kept_a_changed_one_replaced(
    config: StepupConfig, database_url: str
) -> None:
    first = _hashes(create_app(config, database_url=database_url))
    assert set(first) == {u.username for u in config.users}
    for u in config.users:
        assert verify_password(first[u.username], u.password)

    again = _hashes(create_app(config, database_url=database_url))
    assert again == first  # not re-hashed: the same salt and hash

    alice, *others = config.users
    changed = replace(config, users=(replace(alice, password="a new passphrase 42"), *others))
    after = _hashes(create_app(changed, database_url=database_url))
    assert after[alice.username] != first[alice.username]
    assert verify_password(after[alice.username], "a new passphrase 42")
    assert not verify_password(after[alice.username], alice.password)
    assert {n: h for n, h in after.items() if n != alice.username} == {
        n: h for n, h in first.items() if n != alice.username
    }


def test_the_argon2_work_runs_off_the_calling_thread(
    monkeypatch: pytest.MonkeyPatch, config: StepupConfig, sqlite_url: str
) -> None:
    seen: list[str] = []
    real = store.hash_password

    def spy(password: str) -> str:
        seen.append(threading.current_thread().name)
        return real(password)

    monkeypatch.setattr(store, "hash_password", spy)
    users = (UserConfig("u1", "first passphrase"), UserConfig("u2", "second passphrase"))
    _hashes(create_app(replace(config, users=users), database_url=sqlite_url))
    assert len(seen) == 2
    assert all(name.startswith("argon2") for name in seen)
    # Ended when create_app returns: the server forks its workers next.
    assert [t.name for t in threading.enumerate() if t.name.startswith("argon2")] == []
