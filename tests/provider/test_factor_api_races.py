"""One valid code sent several times at the same moment: to the factor API, and to the API and the
login page together. Each request runs on its own thread and database connection, lined up at a
barrier, on SQLite and PostgreSQL; the TOTP step is spent by one atomic statement, so exactly one
request succeeds, and every one of them leaves its audit row."""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from werkzeug.test import TestResponse

from provider.factor_api import Reason

from .factor_api_support import FactorApi, audit, code_now
from .flow import LOA2, Browser, Client

ROUNDS = 3
N = 4  # below the five free failures: every request is verified, none is throttled


def at_once(sends: list[Callable[[], TestResponse]]) -> list[TestResponse]:
    barrier = threading.Barrier(len(sends), timeout=60)
    results: list[TestResponse | BaseException | None] = [None] * len(sends)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = sends[i]()
        except BaseException as exc:  # re-raised in the test's thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(sends))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    responses = []
    for r in results:
        if isinstance(r, BaseException):
            raise r
        assert r is not None
        responses.append(r)
    return responses


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
        rows = audit(app)[round_ * (N + 1) :][:N]
        assert sorted(r.reason.value for r in rows) == sorted(
            [Reason.VERIFIED.value] + [Reason.REPLAYED.value] * (N - 1)
        )
        assert {r.transaction_id for r in rows} == {t.split(".")[0] for t in transactions}
        settle(app, frozen)


def test_the_api_and_the_login_page_racing_for_one_code(
    app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    for _ in range(ROUNDS):
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
        settle(app, frozen)
