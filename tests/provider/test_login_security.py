"""The login pages' security defaults: CSRF, session renewal, throttling, framing, caching."""

from __future__ import annotations

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory

from .flow import LOA2, Browser, Client, parse_page

SESSION_COOKIE = "stepup_session"


@pytest.fixture
def cli(sqlite_app: Flask) -> Client:
    return Client(Browser(sqlite_app))


def _cookie(browser: Browser) -> str | None:
    cookie = browser.http.get_cookie(SESSION_COOKIE)
    return cookie.value if cookie else None


def test_form_without_csrf_token_is_refused(cli: Client) -> None:
    page = cli.browser.get(cli.authorize().location)
    response = cli.browser.submit(
        page, {"username": "alice", "current-password": "wonderland"}, csrf=False
    )
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    assert _cookie(cli.browser) is None


def test_every_form_has_a_csrf_token(cli: Client) -> None:
    page = cli.browser.get(cli.authorize().location)
    forms = parse_page(page.get_data(as_text=True)).forms
    assert forms
    assert all(f.hidden().get("csrf_token") for f in forms)


def test_login_form_uses_the_standard_autocomplete_tokens(cli: Client) -> None:
    page = cli.browser.get(cli.authorize().location)
    form = parse_page(page.get_data(as_text=True)).forms[0]
    assert form.by_autocomplete("username") is not None
    assert form.by_autocomplete("current-password") is not None


def test_session_id_is_renewed_after_each_authentication_step(cli: Client) -> None:
    cli.tokens()
    after_password = _cookie(cli.browser)
    assert after_password
    cli.tokens(acr_values=LOA2)
    after_otp = _cookie(cli.browser)
    assert after_otp
    assert after_otp != after_password
    # The old identifier no longer names a session: presenting it is like having none.
    stranger = Client(Browser(cli.browser.app))
    stranger.browser.http.set_cookie(SESSION_COOKIE, after_password)
    response = stranger.authorize(prompt="none")
    assert "error=login_required" in response.location


def test_session_cookie_is_httponly_and_samesite_lax(cli: Client) -> None:
    page = cli.browser.get(cli.authorize().location)
    response = cli.browser.submit(page, {"username": "alice", "current-password": "wonderland"})
    header = next(
        v for k, v in response.headers.items() if k == "Set-Cookie" and SESSION_COOKIE in v
    )
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header


def test_wrong_password_says_so_without_saying_which_part(cli: Client) -> None:
    page = cli.browser.get(cli.authorize().location)
    response = cli.browser.submit(page, {"username": "alice", "current-password": "nope"})
    assert response.status_code == 401
    assert parse_page(response.get_data(as_text=True)).alerts == [
        "The username or password is incorrect."
    ]
    unknown = cli.browser.submit(page, {"username": "nobody", "current-password": "nope"})
    assert parse_page(unknown.get_data(as_text=True)).alerts == [
        "The username or password is incorrect."
    ]


def test_failed_logins_are_throttled_per_account_across_sessions(
    sqlite_app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    statuses = []
    for _ in range(5):
        browser = Browser(sqlite_app)  # a new browser session each time
        page = browser.get(Client(browser).authorize().location)
        response = browser.submit(page, {"username": "alice", "current-password": "wrong"})
        statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 401, 401]
    # The fifth failure locked the account for 30 s: even the right password waits.
    browser = Browser(sqlite_app)
    page = browser.get(Client(browser).authorize().location)
    locked = browser.submit(page, {"username": "alice", "current-password": "wonderland"})
    assert locked.status_code == 429
    assert parse_page(locked.get_data(as_text=True)).alerts == [
        "Too many failed attempts. Try again in 30 seconds."
    ]
    # Another account is not affected.
    other = browser.submit(locked, {"username": "bob", "current-password": "builder"})
    assert other.status_code == 303
    frozen.tick(31)
    browser = Browser(sqlite_app)
    page = browser.get(Client(browser).authorize().location)
    ok = browser.submit(page, {"username": "alice", "current-password": "wonderland"})
    assert ok.status_code == 303


def test_failed_otp_is_throttled(cli: Client) -> None:
    cli.tokens()
    page = cli.browser.get(cli.authorize(acr_values=LOA2).location)
    codes = []
    for _ in range(6):
        page = cli.browser.submit(page, {"one-time-code": "000000"})
        codes.append(page.status_code)
    assert codes == [401, 401, 401, 401, 401, 429]


def test_pages_cannot_be_framed_or_cached(cli: Client) -> None:
    page = cli.browser.get(cli.authorize().location)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
