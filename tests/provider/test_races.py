"""Single use under concurrency: two requests racing for one authorization code, one refresh
token or one login interaction, each on its own thread and database connection, on SQLite and
PostgreSQL. Exactly one wins (DESIGN.md "Persistence and scale": one atomic statement decides,
never read-then-write)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from provider.app import Provider
from provider.factors import password
from provider.issuance import Issuance
from provider.models import AuthorizationCode, Grant
from provider.store import digest

from .concurrency import at_once
from .flow import Browser, Client, query_of

WEB = ("bank-web", "bank-web-secret-for-the-local-sandbox")
ROUNDS = 3


def race(app: Flask, send: Callable[[FlaskClient], TestResponse], n: int = 2) -> list[TestResponse]:
    """``n`` requests sent at once, each with its own client (:func:`.concurrency.at_once`)."""
    clients = [app.test_client() for _ in range(n)]
    return at_once([functools.partial(send, http) for http in clients])


def split(responses: list[TestResponse]) -> tuple[list[TestResponse], list[TestResponse]]:
    won = [r for r in responses if r.status_code == 200]
    lost = [r for r in responses if r.status_code != 200]
    for r in lost:
        assert (r.status_code, r.json["error"]) == (400, "invalid_grant"), r.json  # type: ignore[index]
    return won, lost


def test_one_password_page_posted_twice_at_once_issues_one_code(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A double submit of the password page: both posts pass the page's checks and verify the
    password, held by a barrier in the verifier until both have; then each settles in one
    transaction (its session, the attempt record, the interaction's end). The interaction's
    ``DELETE`` decides: one post answers with the code, the other with "Already finished"."""
    browser = Browser(app)
    cli = Client(browser)
    page = browser.get(cli.authorize().location)
    both_verified = threading.Barrier(2, timeout=30)
    verify = password.verify_password

    def held(stored_hash: str, pw: str) -> bool:
        ok = verify(stored_hash, pw)
        both_verified.wait()
        return ok

    monkeypatch.setattr(password, "verify_password", held)

    def post() -> TestResponse:
        # One browser posting twice: the same cookies, sent before either answer sets any.
        return browser.submit(page, {"username": "alice", "current-password": "wonderland"})

    responses = at_once([post, post])
    codes = [r for r in responses if r.status_code == 303]
    finished = [r for r in responses if r.status_code == 400]
    assert (len(codes), len(finished)) == (1, 1), [r.status_code for r in responses]
    assert codes[0].location.startswith(f"{cli.redirect_uri}?")
    assert query_of(codes[0].location)["state"] == cli.state
    assert "code" in query_of(codes[0].location)
    assert "This sign-in was completed already." in finished[0].get_data(as_text=True)


def active(app: Flask, token: str) -> bool:
    response = app.test_client().post("/introspect", data={"token": token}, auth=WEB)
    return bool(response.json["active"])  # type: ignore[index]


def test_two_requests_racing_for_one_code(app: Flask) -> None:
    browser = Browser(app)
    for _ in range(ROUNDS):
        cli = Client(browser)
        code = cli.sign_in()["code"]
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": cli.redirect_uri,
            "code_verifier": cli.verifier,
            "client_id": cli.client_id,
        }
        won, lost = split(race(app, lambda http, d=data: http.post("/token", data=d)))  # type: ignore[misc]
        # Exactly one request consumed the code: one grant was recorded for it.
        assert grants_of_code_string(app, code) == 1
        # The other presented a used code — RFC 6749 §4.1.2: deny it, and revoke what the code
        # issued — so the winner either noticed and refused (invalid_grant) or holds tokens
        # that no longer work.
        assert len(won) <= 1
        assert len(lost) >= 1
        for response in won:
            body: dict[str, Any] = response.json  # type: ignore[assignment]
            assert not active(app, body["access_token"])


def test_two_requests_racing_for_one_refresh_token(app: Flask) -> None:
    browser = Browser(app)
    cli = Client(browser)
    tokens = cli.tokens()
    for _ in range(ROUNDS):
        data = {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": cli.client_id,
        }
        won, lost = split(race(app, lambda http, d=data: http.post("/token", data=d)))  # type: ignore[misc]
        # Exactly one request rotated the token: its family holds exactly one new grant.
        assert grants_in_family_of(app, tokens["access_token"]) == 2
        # The other presented a rotated token — RFC 9700 §4.14.2 reuse — so the family is
        # revoked, including what the rotation issued: the winner either noticed and refused
        # (invalid_grant) or holds tokens that no longer work.
        assert len(won) <= 1
        assert len(lost) >= 1
        for response in won:
            body: dict[str, Any] = response.json  # type: ignore[assignment]
            assert not active(app, body["refresh_token"])
            assert not active(app, body["access_token"])
        assert not active(app, tokens["access_token"])
        tokens = cli.tokens()  # a fresh family for the next round


def grants_in_family_of(app: Flask, access_token: str) -> int:
    op: Provider = app.extensions["stepup_provider"]
    claims = op.signer.verify(access_token, typ="at+jwt")
    assert claims is not None
    with op.db.session() as s:
        family = s.scalar(select(Grant.family).where(Grant.jti == claims["jti"]))
        return len(list(s.scalars(select(Grant.id).where(Grant.family == family))))


def grants_of_code_string(app: Flask, code: str) -> int:
    op: Provider = app.extensions["stepup_provider"]
    with op.db.session() as s:
        code_id = s.scalar(
            select(AuthorizationCode.id).where(AuthorizationCode.code_hash == digest(code))
        )
        return len(list(s.scalars(select(Grant.id).where(Grant.code_id == code_id))))


def test_reuse_while_the_rotation_is_being_issued_still_revokes_the_new_tokens(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The theft window: the legitimate request has checked the refresh token and is minting its
    new tokens when the attacker's copy arrives and completes. Whichever records its rotation
    second is refused, and the family — including what the first one got — is revoked."""
    cli = Client(Browser(app))
    tokens = cli.tokens()
    minting = threading.Event()
    reused = threading.Event()
    original = Issuance.issue

    def paused_issue(self: Issuance, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("rotated_from") is not None and not minting.is_set():
            minting.set()
            assert reused.wait(timeout=30)
        return original(self, **kwargs)

    monkeypatch.setattr(Issuance, "issue", paused_issue)
    data = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": cli.client_id,
    }
    result: list[TestResponse] = []
    legit = threading.Thread(
        target=lambda: result.append(app.test_client().post("/token", data=data))
    )
    legit.start()
    assert minting.wait(timeout=30)
    stolen = app.test_client().post("/token", data=data)
    reused.set()
    legit.join(timeout=60)

    (response,) = result
    # The stolen copy rotated first; the legitimate request's rotation comes second: refused.
    assert (response.status_code, response.json["error"]) == (400, "invalid_grant")  # type: ignore[index]
    assert stolen.status_code == 200
    body: dict[str, Any] = stolen.json  # type: ignore[assignment]
    assert not active(app, body["refresh_token"])
    assert not active(app, body["access_token"])
    assert not active(app, tokens["access_token"])
    assert grants_in_family_of(app, tokens["access_token"]) == 2
