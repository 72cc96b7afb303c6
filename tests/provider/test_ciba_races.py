"""CIBA state transitions under concurrency: parallel requests, each on its own thread and
database connection, on SQLite and PostgreSQL (provider.ciba_states: one conditional UPDATE per
transition decides; the loser reads again)."""

from __future__ import annotations

from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import func, select

from provider.app import Provider
from provider.models import Grant

from .ciba_support import error_of, poll, start
from .test_races import race

ROUNDS = 3


def grants_of(app: Flask, client_id: str) -> int:
    op: Provider = app.extensions["stepup_provider"]
    with op.db.session() as s:
        return int(s.scalar(select(func.count()).where(Grant.client_id == client_id)) or 0)


def test_two_polls_after_approval_yield_exactly_one_token_set(
    app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    http = app.test_client()
    for n in range(1, ROUNDS + 1):
        auth_req_id = start(http)
        assert http.post("/sandbox/device/alice/approve", json={}).status_code == 200
        responses = race(app, lambda h, a=auth_req_id: poll(h, a))  # type: ignore[misc]
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 400], [r.json for r in responses]
        lost = next(r for r in responses if r.status_code == 400)
        assert error_of(lost) == (400, "invalid_grant")
        assert grants_of(app, "bank-payments") == n  # one grant recorded per approval


def test_approve_and_deny_at_once_decide_once(app: Flask, frozen: FrozenDateTimeFactory) -> None:
    http = app.test_client()
    for _ in range(ROUNDS):
        auth_req_id = start(http)
        actions = iter(["approve", "deny"])  # next() is atomic under the GIL: one each
        responses = race(
            app,
            lambda h, a=actions: h.post(f"/sandbox/device/alice/{next(a)}", json={}),  # type: ignore[misc]
        )
        won = [r for r in responses if r.status_code == 200]
        lost = [r for r in responses if r.status_code != 200]
        assert (len(won), len(lost)) == (1, 1), [r.json for r in responses]
        assert lost[0].status_code == 409
        assert lost[0].json["error"] in ("already_decided", "no_pending_request")  # type: ignore[index]
        outcome = won[0].json["outcome"]  # type: ignore[index]
        answer = poll(http, auth_req_id)
        if outcome == "approved":
            assert answer.status_code == 200
        else:
            assert error_of(answer) == (400, "access_denied")
        frozen.tick(5)


def test_two_polls_while_pending_are_one_pending_and_one_slow_down(
    app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    http = app.test_client()
    for _ in range(ROUNDS):
        auth_req_id = start(http)
        responses = race(app, lambda h, a=auth_req_id: poll(h, a))  # type: ignore[misc]
        assert sorted(error_of(r)[1] for r in responses) == ["authorization_pending", "slow_down"]
