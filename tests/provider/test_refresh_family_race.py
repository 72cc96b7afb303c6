"""Refresh-token reuse while the family is being rotated (issue 16), forced step by step.

``test_races.py``'s refresh race was flaky on PostgreSQL: the rotation committed the rotated mark,
then recorded the new grant, then checked the family; a reuse whose revoking ``UPDATE`` started
between the two commits could not see the new grant (READ COMMITTED: a statement sees what was
committed before it started), and the check ran before that ``UPDATE`` committed, so the winner kept
working tokens. Measured: about 1 round in 80 failed, always with the winner's tokens still active.
Rotating and recording in one transaction (the token endpoint does that now) closes that window.

The same shape remains one rotation further on: the thief presents the first refresh token P while
the client rotates its successor G2. The revoking ``UPDATE`` waits for G2's row, revokes it, and
cannot see G3, the grant that rotation commits. Here that interleaving is forced, not left to luck:
the rotation pauses after recording G3, until the revoking statement is seen waiting for G2's lock
in ``pg_stat_activity``. PostgreSQL only: SQLite admits one writer at a time, so there the window
does not exist.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, text
from werkzeug.test import TestResponse

from provider import create_app
from stepup.config import StepupConfig

from .flow import Browser, Client
from .test_races import active


@pytest.fixture
def pg_app(config: StepupConfig, postgres_url: str) -> Flask:
    return create_app(config, database_url=postgres_url)


def post(app: Flask, data: dict[str, str], into: list[TestResponse]) -> threading.Thread:
    thread = threading.Thread(
        target=lambda: into.append(app.test_client().post("/token", data=data))
    )
    thread.start()
    return thread


def test_reuse_while_a_successor_is_being_rotated_revokes_the_newest_grant_too(
    pg_app: Flask,
) -> None:
    app = pg_app
    cli = Client(Browser(app))
    first = cli.tokens()  # P
    refresh = {"grant_type": "refresh_token", "client_id": cli.client_id}
    second = cli.token_request({**refresh, "refresh_token": first["refresh_token"]}).json  # G2
    assert second is not None

    recorded = threading.Event()  # the rotation of G2 inserted G3, not committed yet
    release = threading.Event()
    sweeper: dict[str, int] = {}
    rotation: list[threading.Thread] = []

    def pause_after_recording(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if rotation and threading.current_thread() is rotation[0]:
            if statement.startswith("INSERT INTO op_grants"):
                recorded.set()
                assert release.wait(timeout=30)
        elif statement.startswith("UPDATE op_grants SET revoked_at"):
            sweeper.setdefault("pid", conn.connection.dbapi_connection.info.backend_pid)

    engine = app.extensions["stepup_provider"].db.engine
    event.listen(engine, "before_cursor_execute", pause_after_recording)
    legit: list[TestResponse] = []
    stolen: list[TestResponse] = []
    try:
        rotation.append(post(app, {**refresh, "refresh_token": second["refresh_token"]}, legit))
        assert recorded.wait(timeout=30)
        thief = post(app, {**refresh, "refresh_token": first["refresh_token"]}, stolen)
        waiting_for_g2(engine, sweeper)
        release.set()
        rotation[0].join(timeout=60)
        thief.join(timeout=60)
    finally:
        release.set()
        event.remove(engine, "before_cursor_execute", pause_after_recording)

    (theft,) = stolen
    assert (theft.status_code, theft.json["error"]) == (400, "invalid_grant")  # type: ignore[index]
    (rotated,) = legit
    assert rotated.status_code == 200  # it won G2's rotation before the theft was noticed
    third: dict[str, Any] = rotated.json  # type: ignore[assignment]
    # RFC 9700 §4.14.2: the whole family is revoked, G3 — committed after the revoking
    # statement began — included.
    assert not active(app, third["refresh_token"])
    assert not active(app, third["access_token"])
    assert not active(app, second["refresh_token"])


def waiting_for_g2(engine: Any, sweeper: dict[str, int]) -> None:
    """Until the revoking statement has started and waits for the lock on G2's row."""
    deadline = time.monotonic() + 30
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            pid = sweeper.get("pid")
            if pid is not None:
                waiting = conn.execute(
                    text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid},
                ).scalar()
                conn.commit()
                if waiting == "Lock":
                    return
            time.sleep(0.01)  # polling a condition on another connection; no timing asserted
    raise AssertionError("the revoking statement never waited for G2's row")
