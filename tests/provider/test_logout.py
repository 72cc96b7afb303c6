"""OpenID Connect RP-Initiated Logout 1.0 at ``/logout``: a confirmation page, then the POST that
ends the session and (only to a registered URI) sends the browser back with ``state``."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.test import TestResponse

from provider import create_app
from stepup.config import StepupConfig

from .flow import WEB_REDIRECT, Browser, Client, parse_page, query_of

WEB_LOGOUT = "http://127.0.0.1:8000/"


@pytest.fixture
def sb(sqlite_app: Flask) -> Browser:
    return Browser(sqlite_app)


@pytest.fixture
def web(sb: Browser) -> Client:
    return Client(sb, "bank-web", WEB_REDIRECT, secret="bank-web-secret-for-the-local-sandbox")


@pytest.fixture
def scli_tokens(sb: Browser) -> Client:
    """bank-cli, signed in once."""
    client = Client(sb)
    client.tokens()
    return client


def confirm(browser: Browser, page: TestResponse, csrf: bool = True) -> TestResponse:
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    return browser.submit(page, {}, csrf=csrf)


def assert_error_page(response: TestResponse, detail: str) -> None:
    # A bad logout request is shown to the user, never redirected anywhere.
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "Location" not in response.headers
    assert parse_page(response.get_data(as_text=True)).alerts == [detail]


def test_logout_asks_for_confirmation_with_a_csrf_token(cli: Client, browser: Browser) -> None:
    cli.tokens()
    page = browser.get("/logout")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"
    form = parse_page(page.get_data(as_text=True)).forms[0]
    assert (form.action, form.method) == ("/logout/confirm", "post")
    assert form.hidden()["csrf_token"]
    # Showing the page ends nothing: prompt=none still finds the session.
    assert "code" in query_of(cli.authorize(prompt="none").location)


def test_confirming_ends_the_session(cli: Client, browser: Browser) -> None:
    cli.tokens()
    response = confirm(browser, browser.get("/logout"))
    assert response.status_code == 200
    assert "You are signed out" in response.get_data(as_text=True)
    after = cli.authorize(prompt="none")
    assert after.status_code == 302
    assert query_of(after.location)["error"] == "login_required"


def test_the_old_session_cookie_no_longer_works(cli: Client, browser: Browser) -> None:
    """The session is ended at the provider, not only its cookie deleted."""
    cli.tokens()
    cookie = browser.http.get_cookie("stepup_session")
    assert cookie is not None
    confirm(browser, browser.get("/logout"))
    browser.http.set_cookie("stepup_session", cookie.value)
    assert query_of(cli.authorize(prompt="none").location)["error"] == "login_required"


def test_confirm_without_csrf_token_is_refused(scli_tokens: Client, sb: Browser) -> None:
    response = confirm(sb, sb.get("/logout"), csrf=False)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "code" in query_of(scli_tokens.authorize(prompt="none").location)


def test_redirect_to_a_registered_uri_with_state(web: Client, sb: Browser) -> None:
    tokens = web.tokens()
    page = sb.get(
        "/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": WEB_LOGOUT,
            "state": "s t&ate",
        },
    )
    response = confirm(sb, page)
    assert response.status_code == 303
    assert response.location == "http://127.0.0.1:8000/?state=s+t%26ate"
    assert query_of(response.location) == {"state": "s t&ate"}


def test_redirect_with_client_id_and_without_state(web: Client, sb: Browser) -> None:
    web.tokens()
    page = sb.get(
        "/logout", query_string={"client_id": "bank-web", "post_logout_redirect_uri": WEB_LOGOUT}
    )
    response = confirm(sb, page)
    assert (response.status_code, response.location) == (303, WEB_LOGOUT)


def test_logout_request_by_post(web: Client, sb: Browser) -> None:
    tokens = web.tokens()
    page = sb.http.post(
        "/logout",
        data={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": WEB_LOGOUT,
            "state": "xyz",
        },
    )
    response = confirm(sb, page)
    assert (response.status_code, response.location) == (303, f"{WEB_LOGOUT}?state=xyz")


def test_expired_id_token_hint_is_accepted(
    web: Client, sb: Browser, frozen: FrozenDateTimeFactory
) -> None:
    tokens = web.tokens()
    frozen.tick(3600)
    # RP-Initiated Logout §2: the OP SHOULD accept ID tokens even when the exp time has passed.
    page = sb.get(
        "/logout",
        query_string={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": WEB_LOGOUT},
    )
    assert confirm(sb, page).location == WEB_LOGOUT


@pytest.mark.parametrize(
    "uri",
    [
        "http://evil.example/",
        "http://127.0.0.1:8000",  # not exactly the registered value
        "http://127.0.0.1:8000/?x=1",
        "http://127.0.0.1:8001/",
        WEB_REDIRECT,  # registered as a redirect_uri, not for logout
    ],
)
def test_unregistered_post_logout_redirect_uri_is_an_error_page(
    web: Client, sb: Browser, uri: str
) -> None:
    tokens = web.tokens()
    response = sb.get(
        "/logout",
        query_string={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": uri},
    )
    # RP-Initiated Logout §3: the OP MUST NOT redirect to an URI not registered for the client.
    assert_error_page(response, "The post_logout_redirect_uri is not registered for this client.")


def test_post_logout_redirect_uri_without_a_client_is_an_error_page(sb: Browser) -> None:
    response = sb.get("/logout", query_string={"post_logout_redirect_uri": WEB_LOGOUT})
    assert_error_page(response, "A post_logout_redirect_uri needs client_id or id_token_hint.")
    response = sb.get(
        "/logout", query_string={"client_id": "nobody", "post_logout_redirect_uri": WEB_LOGOUT}
    )
    # The sandbox serves any client_id (sandbox_loopback_clients), with no logout URIs at all.
    assert_error_page(response, "The post_logout_redirect_uri is not registered for this client.")


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", "x" * 5000, "eyJhbGciOiJub25lIn0.e30."])
def test_invalid_id_token_hint_is_400(sb: Browser, hint: str) -> None:
    response = sb.get("/logout", query_string={"id_token_hint": hint})
    assert_error_page(response, "The id_token_hint is not valid.")


def test_access_token_is_not_an_id_token_hint(scli_tokens: Client, sb: Browser) -> None:
    tokens = scli_tokens.exchange(scli_tokens.sign_in()["code"]).json
    assert tokens is not None
    response = sb.get("/logout", query_string={"id_token_hint": tokens["access_token"]})
    assert_error_page(response, "The id_token_hint is not valid.")


def test_id_token_hint_signed_by_another_key_is_400(web: Client, sb: Browser) -> None:
    tokens = web.tokens()
    claims = jwt.decode(tokens["id_token"], sb.op.keys.current).claims
    forged = jwt.encode(
        {"alg": "RS256", "kid": sb.op.keys.kid, "typ": "JWT"},
        claims,
        RSAKey.generate_key(2048, private=True),
    )
    response = sb.get("/logout", query_string={"id_token_hint": forged})
    assert_error_page(response, "The id_token_hint is not valid.")


def test_client_id_that_does_not_match_the_hint_is_400(web: Client, sb: Browser) -> None:
    tokens = web.tokens()
    response = sb.get(
        "/logout", query_string={"id_token_hint": tokens["id_token"], "client_id": "bank-cli"}
    )
    assert_error_page(response, "client_id does not match the id_token_hint.")


# --- Cancel, and the way back ----------------------------------------------------------------


def cancel(browser: Browser, page: TestResponse) -> TestResponse:
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    return browser.submit(page, {}, action="cancel")


def links_of(response: TestResponse) -> list[tuple[str, str]]:
    html = response.get_data(as_text=True)
    return re.findall(r'<li><a href="([^"]*)">([^<]*)</a></li>', html)


def test_the_logout_page_offers_cancel(scli_tokens: Client, sb: Browser) -> None:
    html = sb.get("/logout").get_data(as_text=True)
    assert (
        '<button type="submit" name="action" value="cancel" class="secondary">'
        "Cancel, stay signed in</button>"
    ) in html


def test_cancel_keeps_the_session(scli_tokens: Client, sb: Browser) -> None:
    response = cancel(sb, sb.get("/logout"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h1>You are still signed in</h1>" in html
    assert "stepup_session=" not in response.headers.get("Set-Cookie", "")
    assert "code" in query_of(scli_tokens.authorize(prompt="none").location)


def test_cancel_still_returns_to_the_registered_uri_without_ending_the_session(
    web: Client, sb: Browser
) -> None:
    tokens = web.tokens()
    page = sb.get(
        "/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": WEB_LOGOUT,
            "state": "xyz",
        },
    )
    response = cancel(sb, page)
    assert (response.status_code, response.location) == (303, f"{WEB_LOGOUT}?state=xyz")
    assert "code" in query_of(web.authorize(prompt="none").location)


def test_signed_out_page_leads_back_to_the_sandbox(scli_tokens: Client, sb: Browser) -> None:
    response = confirm(sb, sb.get("/logout"))
    assert links_of(response) == [
        ("/sandbox/try", "Sandbox playground: sign in again"),
        ("/sandbox", "Sandbox users and their codes"),
    ]


def test_signed_out_page_leads_back_to_the_named_client(web: Client, sb: Browser) -> None:
    web.tokens()
    page = sb.get("/logout", query_string={"client_id": "bank-web"})
    assert "as\n  <strong>Bank Web</strong> asked" in page.get_data(as_text=True)
    response = confirm(sb, page)
    assert response.status_code == 200
    assert links_of(response)[0] == (WEB_LOGOUT, "Back to Bank Web")


def test_outside_the_sandbox_the_page_says_the_window_can_be_closed(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory
) -> None:
    plain = replace(
        config, provider=replace(config.provider, sandbox=False, sandbox_loopback_clients=False)
    )
    browser = Browser(create_app(plain, database_url=sqlite_url))
    response = confirm(browser, browser.get("/logout"))
    assert links_of(response) == []
    assert "<p>You can close this window.</p>" in response.get_data(as_text=True)
