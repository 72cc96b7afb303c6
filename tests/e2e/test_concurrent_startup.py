"""Several ``stepup provider`` and ``stepup api`` processes started at the same instant on one
database (issue 8, item 2): all of them come up, and the database holds one set of rows — one
version per component, one row per seeded user and client, one signing key, one cookie secret —
on a fresh database, on one they seeded before, and on one made by a build from before migrations
(``create_all``, no version table), which is adopted. On SQLite and PostgreSQL (a fresh schema)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from provider.db import display_url, normalise_url
from provider.migrations import PROVIDER
from provider.models import Client, Setting, SigningKey, User
from provider.schema import head_revision
from resource_api.bank.migrations import BANK
from stepup.cli import sandbox_config

pytestmark = pytest.mark.e2e

STEPUP = Path(sys.executable).parent / "stepup"
KINDS = ("provider", "provider", "api", "api")  # started together, in this order


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    kind: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    listening: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if " listening on http://" in line:
                self.listening.set()


@contextmanager
def started_together(url: str, kinds: tuple[str, ...] = KINDS) -> Iterator[list[Server]]:
    """Start one process per kind at once; yield them once each is listening (or has died)."""
    servers = []
    for kind in kinds:
        process = subprocess.Popen(
            [str(STEPUP), kind, "--database", url, "--port", str(free_port())],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ),
        )
        servers.append(Server(kind, process))
    readers = [threading.Thread(target=s.read, daemon=True) for s in servers]
    for t in readers:
        t.start()
    try:
        deadline = time.monotonic() + 120
        for s in servers:
            while not s.listening.wait(0.2) and s.process.poll() is None:
                assert time.monotonic() < deadline, f"{s.kind} did not start:\n{''.join(s.lines)}"
        yield servers
    finally:
        for s in servers:
            s.process.terminate()
        for s in servers:
            try:
                s.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                s.process.kill()
                s.process.wait()
        for t in readers:
            t.join(timeout=5)


def assert_all_up(servers: list[Server], url: str) -> None:
    for s in servers:
        assert s.listening.is_set(), f"{s.kind} died:\n{''.join(s.lines)}"
        assert s.process.poll() is None, f"{s.kind} exited:\n{''.join(s.lines)}"
        assert f"Database: {display_url(url)}\n" in s.lines  # every banner says where


def rows(url: str) -> dict[str, object]:
    """What the database holds that start-up writes."""
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:

            def count(table: object) -> int:
                return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]

            return {
                "provider version": conn.execute(
                    text("SELECT version_num FROM op_alembic_version")
                ).all(),
                "bank version": conn.execute(
                    text("SELECT version_num FROM bank_alembic_version")
                ).all(),
                "users": sorted(conn.execute(select(User.username, User.subject)).all()),
                "clients": count(Client),
                "signing keys": count(SigningKey),
                "settings": count(Setting),
            }
    finally:
        engine.dispose()


def expected_shape(found: dict[str, object]) -> None:
    config = sandbox_config()
    assert found["provider version"] == [(head_revision(PROVIDER),)]
    assert found["bank version"] == [(head_revision(BANK),)]
    users = found["users"]
    assert isinstance(users, list)
    assert [u for u, _ in users] == sorted(u.username for u in config.users)
    assert found["clients"] == len(config.clients) + 1  # and the sandbox playground's
    assert found["signing keys"] == 1
    assert found["settings"] == 1


def test_processes_started_together_on_a_fresh_then_a_seeded_database(database_url: str) -> None:
    with started_together(database_url) as servers:
        assert_all_up(servers, database_url)
    first = rows(database_url)
    expected_shape(first)
    # Again, on the database they just seeded: nobody dies, nothing is added or replaced
    # (the users keep their subjects).
    with started_together(database_url) as servers:
        assert_all_up(servers, database_url)
    assert rows(database_url) == first


def test_processes_started_together_adopt_a_database_made_before_migrations(
    database_url: str,
) -> None:
    """What a user upgrading from 0.1.0 meets: tables made by ``create_all``, a user enrolled
    in the flow, no version table. The database is adopted, its rows kept."""
    from provider.migrations.versions.op_0001_baseline import metadata as provider_0_1_0
    from resource_api.bank.migrations.versions.bank_0001_baseline import metadata as bank_0_1_0

    engine = create_engine(normalise_url(database_url))
    provider_0_1_0.create_all(engine)
    bank_0_1_0.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO op_users (subject, username, password_hash, totp_secret) "
                "VALUES ('kept-subject', 'bob', 'not-a-hash', 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ')"
            )
        )
    engine.dispose()
    with started_together(database_url) as servers:
        assert_all_up(servers, database_url)
    found = rows(database_url)
    expected_shape(found)
    users = found["users"]
    assert isinstance(users, list)
    assert ("bob", "kept-subject") in users
    out = "".join(line for s in servers for line in s.lines)
    assert out.count("provider tables: adopted (made before migrations existed), now at") == 1
    assert out.count("bank tables: adopted (made before migrations existed), now at") == 1
