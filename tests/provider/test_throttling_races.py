"""Guesses sent at the same moment (issue 8): the throttle admits, counts and locks in one atomic
statement before a guess is verified, so no more than the documented number of guesses is ever
*verified* per window — five before the first lock, one per lock after it — however many arrive
together. Twenty browsers post through the real login forms on their own threads and database
connections, lined up at a barrier, on SQLite and PostgreSQL; the verifier counts its calls."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from werkzeug.test import TestResponse

from provider.factors import password, totp
from provider.store import Throttling

from .concurrency import at_once
from .flow import ALICE_SECRET, LOA2, Browser, Client, parse_page

GUESSES = 20
FREE = Throttling().free_failures


class Counted:
    """Wraps a verifier and counts its calls, from any thread."""

    def __init__(self, verify: Callable[..., Any]) -> None:
        self.verify = verify
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        with self._lock:
            self.calls += 1
        return self.verify(*args)


def statuses_at_once(sends: list[Callable[[], TestResponse]]) -> list[int]:
    """The status codes of ``sends`` run at once (:func:`.concurrency.at_once`), sorted."""
    return sorted(r.status_code for r in at_once(sends, timeout=60))


def login_pages(app: Flask, n: int) -> list[tuple[Browser, TestResponse]]:
    """``n`` browsers, each on its own login page."""
    pages = []
    for _ in range(n):
        browser = Browser(app)
        pages.append((browser, browser.get(Client(browser).authorize().location)))
    return pages


def password_guesses(app: Flask, pw: str) -> list[Callable[[], TestResponse]]:
    return [
        lambda b=b, p=p: b.submit(p, {"username": "alice", "current-password": pw})  # type: ignore[misc]
        for b, p in login_pages(app, GUESSES)
    ]


@pytest.fixture
def verify_password(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counted]:
    """Counts every password verification, real or dummy (unknown user)."""
    counted = Counted(password.verify_password)
    dummy = Counted(password.verify_dummy)
    monkeypatch.setattr(password, "verify_password", counted)
    monkeypatch.setattr(password, "verify_dummy", dummy)
    yield counted
    assert dummy.calls == 0  # alice exists: every verification was a real one


def test_twenty_simultaneous_wrong_passwords_verify_exactly_five(
    app: Flask, frozen: FrozenDateTimeFactory, verify_password: Counted
) -> None:
    sends = password_guesses(app, "wrong")
    statuses = statuses_at_once(sends)
    assert verify_password.calls == FREE
    assert statuses == [401] * FREE + [429] * (GUESSES - FREE)

    # Locked: even the right password is not verified until the lock ends.
    browser, page = login_pages(app, 1)[0]
    locked = browser.submit(page, {"username": "alice", "current-password": "wonderland"})
    assert locked.status_code == 429
    assert parse_page(locked.get_data(as_text=True)).alerts == [
        "Too many failed attempts. Try again in 30 seconds."
    ]
    assert verify_password.calls == FREE

    # After the 30-second lock, twenty more at once: exactly one is verified, and it earns 60 s.
    frozen.tick(30)
    sends = password_guesses(app, "wrong")
    assert statuses_at_once(sends) == [401] + [429] * (GUESSES - 1)
    assert verify_password.calls == FREE + 1
    frozen.tick(59)
    browser, page = login_pages(app, 1)[0]
    still = browser.submit(page, {"username": "alice", "current-password": "wonderland"})
    assert still.status_code == 429
    frozen.tick(1)
    ok = browser.submit(still, {"username": "alice", "current-password": "wonderland"})
    assert ok.status_code == 303
    assert verify_password.calls == FREE + 2


def wrong_code(now: int) -> str:
    """Six digits that no step near ``now`` produces (not even as an "expired" code)."""
    step = totp.step_at(now)
    near = {totp.hotp(ALICE_SECRET, s) for s in range(step - 12, step + 3)}
    return next(c for c in (f"{i:06d}" for i in range(1_000_000)) if c not in near)


def test_twenty_simultaneous_wrong_codes_verify_exactly_five(
    app: Flask, frozen: FrozenDateTimeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = []
    for _ in range(GUESSES):
        cli = Client(Browser(app))
        cli.tokens()  # password only: the session holds pwd
        page = cli.browser.get(cli.authorize(acr_values=LOA2).location)
        assert cli.browser.page_kind(page.get_data(as_text=True)) == "otp"
        pages.append((cli.browser, page))
    verify = Counted(totp.verify)
    monkeypatch.setattr(totp, "verify", verify)
    code = wrong_code(app.extensions["stepup_provider"].clock.now())

    sends = [
        lambda b=b, p=p: b.submit(p, {"one-time-code": code})  # type: ignore[misc]
        for b, p in pages
    ]
    statuses = statuses_at_once(sends)
    assert verify.calls == FREE
    assert statuses == [401] * FREE + [429] * (GUESSES - FREE)


def test_a_correct_guess_clears_the_count(app: Flask, frozen: FrozenDateTimeFactory) -> None:
    for b, p in login_pages(app, FREE - 1):
        assert b.submit(p, {"username": "alice", "current-password": "x"}).status_code == 401
    browser, page = login_pages(app, 1)[0]
    ok = browser.submit(page, {"username": "alice", "current-password": "wonderland"})
    assert ok.status_code == 303
    # The count starts again from zero: five more failures before a lock.
    statuses = [
        b.submit(p, {"username": "alice", "current-password": "x"}).status_code
        for b, p in login_pages(app, FREE + 1)
    ]
    assert statuses == [401] * FREE + [429]


def test_lock_ladder_doubles_up_to_the_cap() -> None:
    t = Throttling()
    assert [t.lock_after(n) for n in range(1, 12)] == [0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900]
    assert t.lock_after(10_000) == 900
