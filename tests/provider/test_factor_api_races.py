"""One valid code sent several times at the same moment: to the factor API, and to the API and the
login page together. Each request runs on its own thread and database connection, lined up at a
barrier, on SQLite and PostgreSQL; the TOTP step is spent by one atomic statement, so exactly one
request succeeds, and every one of them leaves exactly one audit row: the winner's written in the
transaction that spends the step."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from werkzeug.test import TestResponse

from provider.factor_api import Reason

from .concurrency import at_once
from .factor_api_support import FactorApi, audit, code_now
from .flow import LOA2, Browser, Client

ROUNDS = 3
N = 4  # below the five free failures: every request is verified, none is throttled


def settle(app: Flask, frozen: FrozenDateTimeFactory) -> None:
    """Between rounds: the next step's code, verified alone, clears the attempt counter. (A
    replay counts as a failed guess, here as on the login page; a loser whose attempt was counted
    after the winner cleared the counter leaves it behind.)"""
    frozen.tick(30)
    assert FactorApi(app).verify("alice", code_now(app)).status_code == 200
    frozen.tick(30)


def test_parallel_verifications_of_one_code_succeed_exactly_once(
    app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    for round_ in range(ROUNDS):
        apis = [FactorApi(app) for _ in range(N)]  # each its own client (connection, thread)
        transactions = [api.transaction("alice") for api in apis]
        code = code_now(app)
        sends = [
            lambda api=api, tid=tid, code=code: api.verify("alice", code, tid)  # type: ignore[misc]
            for api, tid in zip(apis, transactions, strict=True)
        ]
        responses = at_once(sends)
        outcomes = sorted(
            (r.status_code, r.json.get("error", r.json.get("status")))  # type: ignore[union-attr]
            for r in responses
        )
        assert outcomes == [(200, "verified")] + [(422, "replayed_passcode")] * (N - 1)
        # Exactly one row per verification: the winner's written with its spend, each loser's
        # by the statement that found the step spent.
        rows = audit(app)[round_ * (N + 1) :]
        assert sorted(r.reason.value for r in rows) == sorted(
            [Reason.VERIFIED.value] + [Reason.REPLAYED.value] * (N - 1)
        )
        assert sorted(r.transaction_id or "" for r in rows) == sorted(
            t.split(".")[0] for t in transactions
        )
        settle(app, frozen)
        assert len(audit(app)) == (round_ + 1) * (N + 1)  # and one for settle's verification


def test_the_api_and_the_login_page_racing_for_one_code(
    app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    for round_ in range(ROUNDS):
        pages = []
        for _ in range(2):  # two browsers, each signed in with the password, on the OTP page
            cli = Client(Browser(app))
            cli.tokens()
            pages.append((cli.browser, cli.browser.get(cli.authorize(acr_values=LOA2).location)))
        apis = [FactorApi(app) for _ in range(2)]
        transactions = [api.transaction("alice") for api in apis]
        code = code_now(app)
        sends: list[Callable[[], TestResponse]] = [
            lambda b=b, p=p, code=code: b.submit(p, {"one-time-code": code})  # type: ignore[misc]
            for b, p in pages
        ]
        sends += [
            lambda api=api, tid=tid, code=code: api.verify("alice", code, tid)  # type: ignore[misc]
            for api, tid in zip(apis, transactions, strict=True)
        ]
        page_a, page_b, api_a, api_b = at_once(sends)
        won = [r for r in (page_a, page_b) if r.status_code == 303]
        won += [r for r in (api_a, api_b) if r.status_code == 200]
        assert len(won) == 1
        for r in (page_a, page_b):
            if r not in won:
                assert r.status_code == 401
                assert "That code was already used" in r.get_data(as_text=True)
        for r in (api_a, api_b):
            if r not in won:
                assert (r.status_code, r.json["error"]) == (422, "replayed_passcode")  # type: ignore[index]
        # One row per API verification (the login pages keep no such audit), a success only for
        # the API's winner, if it won.
        rows = audit(app)[round_ * 3 :]
        expected = [Reason.VERIFIED if r in won else Reason.REPLAYED for r in (api_a, api_b)]
        assert sorted(r.reason.value for r in rows) == sorted(r.value for r in expected)
        assert sorted(r.transaction_id or "" for r in rows) == sorted(
            t.split(".")[0] for t in transactions
        )
        settle(app, frozen)
        assert len(audit(app)) == (round_ + 1) * 3
