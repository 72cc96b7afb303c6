"""``id_token_hint`` and ``login_hint`` at /authorize: OIDC Core §3.1.2.1 and §3.1.2.2.

- ``id_token_hint`` naming another user than the session's: ``login_required`` with
  ``prompt=none``; without it, a new login for that user, and never a code for anyone else.
- It must be an ID token this provider signed; an expired one is fine as a hint; anything else is
  ``invalid_request``.
- ``login_hint`` with ``prompt=none`` answers an unknown username exactly as another user's, so
  it cannot be used to tell which usernames exist.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.test import TestResponse

from provider.app import Provider

from .flow import CLI_REDIRECT, Browser, Client, claims, parse_page, query_of, redirect_status

ISSUER = "http://127.0.0.1:9000"


@pytest.fixture
def alice(sqlite_app: Flask) -> Client:
    """bank-cli in a browser where alice is signed in."""
    client = Client(Browser(sqlite_app))
    client.sign_in()
    return client


@pytest.fixture
def bob_id_token(sqlite_app: Flask) -> str:
    """An ID token for bob, from a browser of his own."""
    tokens = Client(Browser(sqlite_app)).tokens(username="bob", password="builder", secret=None)
    token: str = tokens["id_token"]
    return token


def error_of(response: TestResponse) -> dict[str, str]:
    assert response.status_code == redirect_status(response), response.get_data(as_text=True)[:300]
    assert response.location.startswith(CLI_REDIRECT + "?")
    return query_of(response.location)


def login_page_username(browser: Browser, response: TestResponse) -> str:
    """Follow /authorize to its login page and read the username it is for."""
    assert response.status_code == 303, response.location
    page = browser.get(response.location)
    assert page.status_code == 200
    form = parse_page(page.get_data(as_text=True)).forms[0]
    field = form.by_autocomplete("username")
    assert field is not None, "not the password page"
    return field.get("value", "")


def op_of(app: Flask) -> Provider:
    provider: Provider = app.extensions["stepup_provider"]
    return provider


# --- id_token_hint naming another user ---------------------------------------------------------


def test_prompt_none_with_another_users_id_token_hint_is_login_required(
    alice: Client, bob_id_token: str
) -> None:
    q = error_of(alice.authorize(prompt="none", id_token_hint=bob_id_token))
    assert q == {
        "error": "login_required",
        "error_description": "prompt=none, but the id_token_hint names another user than the "
        "one signed in",
        "state": alice.state,
        "iss": ISSUER,
    }


def test_another_users_id_token_hint_asks_that_user_to_sign_in(
    alice: Client, bob_id_token: str, sqlite_app: Flask
) -> None:
    response = alice.authorize(id_token_hint=bob_id_token)
    assert login_page_username(alice.browser, response) == "bob"
    # Signing in as bob finishes the request with a code for bob.
    callback = alice.sign_in(id_token_hint=bob_id_token, username="bob", password="builder")
    tokens = alice.exchange(callback["code"]).json
    assert tokens is not None
    assert claims(sqlite_app, tokens["id_token"])["sub"] == claims(sqlite_app, bob_id_token)["sub"]


def test_signing_in_as_someone_else_than_the_hinted_user_is_login_required(
    alice: Client, bob_id_token: str
) -> None:
    start = alice.authorize(id_token_hint=bob_id_token)
    # alice types her own credentials on the page meant for bob.
    response = alice.browser.login_through(start)
    assert error_of(response) == {
        "error": "login_required",
        "error_description": "the user who signed in is not the one id_token_hint names",
        "state": alice.state,
        "iss": ISSUER,
    }


def test_own_id_token_hint_with_prompt_none_issues_a_code(alice: Client) -> None:
    own = alice.exchange(alice.sign_in()["code"]).json
    assert own is not None
    callback = query_of(alice.authorize(prompt="none", id_token_hint=own["id_token"]).location)
    assert set(callback) == {"code", "state", "iss"}


def test_an_expired_id_token_is_still_a_hint(
    alice: Client, bob_id_token: str, frozen: FrozenDateTimeFactory
) -> None:
    own = alice.exchange(alice.sign_in()["code"]).json
    assert own is not None
    frozen.tick(3600)  # both ID tokens expired 600 s after issue; the session lasts 12 h
    callback = query_of(alice.authorize(prompt="none", id_token_hint=own["id_token"]).location)
    assert set(callback) == {"code", "state", "iss"}
    q = error_of(alice.authorize(prompt="none", id_token_hint=bob_id_token))
    assert q["error"] == "login_required"


def test_id_token_hint_without_a_session_prefills_the_hinted_user(
    sqlite_app: Flask, bob_id_token: str
) -> None:
    client = Client(Browser(sqlite_app))
    assert login_page_username(client.browser, client.authorize(id_token_hint=bob_id_token)) == (
        "bob"
    )
    q = error_of(client.authorize(prompt="none", id_token_hint=bob_id_token))
    assert (q["error"], q["error_description"]) == (
        "login_required",
        "prompt=none, but no user is signed in",
    )


# --- id_token_hint that this provider did not issue -----------------------------------------------


def _segment(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _bad_hints(app: Flask, good: str, access_token: str) -> dict[str, str]:
    op = op_of(app)
    good_claims = claims(app, good)
    stranger = RSAKey.generate_key(2048)
    header = {"alg": "RS256", "kid": op.keys.kid, "typ": "JWT"}
    return {
        "garbage": "not-a-jwt",
        "access token": access_token,  # typ at+jwt: not an ID token
        "foreign key": jwt.encode(header, good_claims, stranger),
        "foreign issuer": jwt.encode(
            header, {**good_claims, "iss": "https://other.example"}, op.keys.current
        ),
        "no sub": jwt.encode(
            header, {k: v for k, v in good_claims.items() if k != "sub"}, op.keys.current
        ),
        "alg none": _segment({"alg": "none", "typ": "JWT"}) + "." + _segment(good_claims) + ".",
        "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
    }


def test_an_id_token_hint_this_provider_did_not_sign_is_invalid_request(
    sqlite_app: Flask, alice: Client
) -> None:
    own = alice.exchange(alice.sign_in()["code"]).json
    assert own is not None
    for name, hint in _bad_hints(sqlite_app, own["id_token"], own["access_token"]).items():
        for prompt in (None, "none"):
            response = alice.authorize(id_token_hint=hint, prompt=prompt)  # type: ignore[arg-type]
            assert error_of(response) == {
                "error": "invalid_request",
                "error_description": "id_token_hint is not an ID token this provider issued",
                "state": alice.state,
                "iss": ISSUER,
            }, name


# --- login_hint and prompt=none: no username enumeration ---------------------------------------


@pytest.mark.parametrize("signed_in", [True, False], ids=["alice signed in", "no session"])
def test_login_hint_with_prompt_none_does_not_tell_users_apart(
    sqlite_app: Flask, signed_in: bool
) -> None:
    client = Client(Browser(sqlite_app))
    if signed_in:
        client.sign_in()
    existing = error_of(client.authorize(prompt="none", login_hint="bob"))
    unknown = error_of(client.authorize(prompt="none", login_hint="nobody-by-that-name"))
    assert existing == unknown
    assert existing["error"] == "login_required"


def test_login_hint_for_an_unknown_user_shows_the_same_page_as_for_another_user(
    alice: Client,
) -> None:
    existing = login_page_username(alice.browser, alice.authorize(login_hint="bob"))
    unknown = login_page_username(alice.browser, alice.authorize(login_hint="nobody"))
    assert (existing, unknown) == ("bob", "nobody")


def test_login_hint_for_the_signed_in_user_with_prompt_none_issues_a_code(alice: Client) -> None:
    callback = query_of(alice.authorize(prompt="none", login_hint="ALICE").location)
    assert set(callback) == {"code", "state", "iss"}
