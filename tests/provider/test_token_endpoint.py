"""The token endpoint: RFC 6749 §3.2, §4.1.3, §4.4, §5, §6; RFC 7636 §4.5-4.6; RFC 9700 §4.14.

Exact status codes, error codes and headers. Tests whose subject is storage (single use, rotation,
family revocation) run on SQLite and PostgreSQL; the rest on SQLite only.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from werkzeug.test import TestResponse

from .conftest import T0_EPOCH
from .flow import CLI_REDIRECT, LOA1, WEB_REDIRECT, Browser, Client, claims

API_AUDIENCE = "https://bank.example/api"
WEB_SECRET = "bank-web-secret-for-the-local-sandbox"
JOB_SECRET = "reports-job-secret-for-the-local-sandbox"


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def sb(sqlite_app: Flask) -> Browser:
    """A browser at the SQLite-only provider."""
    return Browser(sqlite_app)


@pytest.fixture
def scli(sb: Browser) -> Client:
    return Client(sb)


@pytest.fixture
def web(sb: Browser) -> Client:
    """The confidential ``bank-web`` client (client_secret_basic)."""
    return Client(sb, "bank-web", WEB_REDIRECT, secret=WEB_SECRET)


def introspect(browser: Browser, token: str, **extra: str) -> dict[str, Any]:
    response = browser.http.post(
        "/introspect", data={"token": token, **extra}, auth=("bank-web", WEB_SECRET)
    )
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def refresh(client: Client, refresh_token: str, **extra: str) -> TestResponse:
    return client.token_request(
        {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    )


def assert_error(response: TestResponse, status: int, error: str) -> None:
    body = response.json
    assert body is not None
    assert (response.status_code, body["error"]) == (status, error), body
    # RFC 6749 §5.2: error, and optionally error_description and error_uri; nothing else.
    assert set(body) <= {"error", "error_description", "error_uri"}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert response.mimetype == "application/json"


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


# --- the authorization code --------------------------------------------------------------------


def test_code_exchange_answers_no_store_bearer_tokens(scli: Client, sb: Browser) -> None:
    callback = scli.sign_in()
    response = scli.exchange(callback["code"])
    assert response.status_code == 200
    # RFC 6749 §5.1: "Cache-Control" no-store and "Pragma" no-cache on a token response.
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert response.mimetype == "application/json"
    body = response.json
    assert body is not None
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "refresh_token",
        "id_token",
    }
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 600)
    assert body["scope"] == "openid profile offline_access"
    at = claims(sb.app, body["access_token"])
    assert (at["sub"], at["acr"], at["auth_time"]) == (
        claims(sb.app, body["id_token"])["sub"],
        LOA1,
        T0_EPOCH,
    )


def test_code_is_single_use_and_reuse_revokes_what_it_issued(cli: Client, browser: Browser) -> None:
    code = cli.sign_in()["code"]
    first = cli.exchange(code)
    assert first.status_code == 200
    tokens: dict[str, Any] = first.json  # type: ignore[assignment]
    assert introspect(browser, tokens["access_token"])["active"] is True

    second = cli.exchange(code)
    # RFC 6749 §4.1.2: the server MUST deny the request and SHOULD revoke the tokens.
    assert_error(second, 400, "invalid_grant")
    assert introspect(browser, tokens["access_token"]) == {"active": False}
    assert introspect(browser, tokens["refresh_token"]) == {"active": False}
    assert_error(refresh(cli, tokens["refresh_token"]), 400, "invalid_grant")


def test_code_expires_after_60_seconds(
    cli: Client, browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    code = cli.sign_in()["code"]
    frozen.tick(60)
    assert_error(cli.exchange(code), 400, "invalid_grant")


def test_code_is_still_good_at_59_seconds(scli: Client, frozen: FrozenDateTimeFactory) -> None:
    code = scli.sign_in()["code"]
    frozen.tick(59)
    assert scli.exchange(code).status_code == 200


def test_wrong_code_verifier_is_invalid_grant(scli: Client) -> None:
    code = scli.sign_in()["code"]
    other = Client(scli.browser)  # a different, well-formed verifier
    # RFC 7636 §4.6: if the values are not equal, "invalid_grant" MUST be returned.
    assert_error(scli.exchange(code, code_verifier=other.verifier), 400, "invalid_grant")


def test_missing_code_verifier_is_invalid_request(scli: Client) -> None:
    code = scli.sign_in()["code"]
    response = scli.token_request(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": CLI_REDIRECT}
    )
    # RFC 6749 §5.2 invalid_request: "The request is missing a required parameter".
    assert_error(response, 400, "invalid_request")


def test_malformed_code_verifier_is_invalid_request(scli: Client) -> None:
    code = scli.sign_in()["code"]
    # RFC 7636 §4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
    assert_error(scli.exchange(code, code_verifier="short"), 400, "invalid_request")


def test_redirect_uri_mismatch_is_invalid_grant(scli: Client) -> None:
    code = scli.sign_in()["code"]
    # A loopback port change is allowed at /authorize, but the token request's redirect_uri
    # MUST be identical to the one the code was issued for (RFC 6749 §4.1.3).
    response = scli.exchange(code, redirect_uri="http://127.0.0.1:9999/callback")
    assert_error(response, 400, "invalid_grant")


def test_missing_redirect_uri_is_refused(scli: Client) -> None:
    code = scli.sign_in()["code"]
    response = scli.token_request(
        {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": scli.verifier,
        }
    )
    assert_error(response, 400, "invalid_grant")


def test_code_of_another_client_is_invalid_grant(scli: Client, sb: Browser) -> None:
    code = scli.sign_in()["code"]
    web = Client(sb, "bank-web", CLI_REDIRECT, secret=WEB_SECRET)
    web.verifier = scli.verifier
    assert_error(web.exchange(code), 400, "invalid_grant")


def test_unknown_code_is_invalid_grant(scli: Client) -> None:
    assert_error(scli.exchange("not-a-code"), 400, "invalid_grant")


def test_missing_code_is_invalid_request(scli: Client) -> None:
    response = scli.token_request(
        {
            "grant_type": "authorization_code",
            "redirect_uri": CLI_REDIRECT,
            "code_verifier": scli.verifier,
        }
    )
    assert_error(response, 400, "invalid_request")


# --- client authentication ----------------------------------------------------------------------


def test_confidential_client_with_client_secret_basic(web: Client, sb: Browser) -> None:
    code = web.sign_in()["code"]
    response = web.exchange(code)
    assert response.status_code == 200
    assert claims(sb.app, response.json["access_token"])["client_id"] == "bank-web"  # type: ignore[index]


def test_confidential_client_with_client_secret_post(web: Client, sb: Browser) -> None:
    code = web.sign_in()["code"]
    response = sb.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": WEB_REDIRECT,
            "code_verifier": web.verifier,
            "client_id": "bank-web",
            "client_secret": WEB_SECRET,
        },
    )
    assert response.status_code == 200
    assert claims(sb.app, response.json["id_token"])["aud"] == "bank-web"  # type: ignore[index]


def test_wrong_secret_by_basic_is_401_invalid_client_with_basic_challenge(
    web: Client, sb: Browser
) -> None:
    code = web.sign_in()["code"]
    response = sb.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": WEB_REDIRECT,
            "code_verifier": web.verifier,
        },
        headers={"Authorization": basic("bank-web", "wrong")},
    )
    # RFC 6749 §5.2: via the Authorization header, the server MUST answer 401 with a
    # WWW-Authenticate matching the scheme used.
    assert_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith('Basic error="invalid_client"')
    # A failed client authentication does not burn the code.
    assert web.exchange(code).status_code == 200


def test_wrong_secret_by_post_is_401_invalid_client(sb: Browser) -> None:
    response = sb.http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "reports-job",
            "client_secret": "wrong",
        },
    )
    assert_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith('Basic error="invalid_client"')


def test_confidential_client_without_secret_is_invalid_client(web: Client, sb: Browser) -> None:
    code = web.sign_in()["code"]
    response = sb.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": WEB_REDIRECT,
            "code_verifier": web.verifier,
            "client_id": "bank-web",
        },
    )
    # RFC 6749 §3.2.1: confidential clients MUST authenticate.
    assert_error(response, 401, "invalid_client")


def test_unknown_client_is_401_invalid_client(sb: Browser) -> None:
    # The same answer whether the client id exists or not: no client enumeration.
    for headers, data in (
        ({"Authorization": basic("nobody", "x")}, {}),
        ({}, {"client_id": "nobody", "client_secret": "x"}),
        ({}, {"client_id": "nobody"}),
        ({"Authorization": basic("bank-web", "x")}, {}),
    ):
        response = sb.http.post(
            "/token", data={"grant_type": "client_credentials", **data}, headers=headers
        )
        assert_error(response, 401, "invalid_client")
        assert response.json["error_description"] == "Client authentication failed."  # type: ignore[index]
        assert response.headers["WWW-Authenticate"].startswith('Basic error="invalid_client"')


def test_public_client_sending_a_secret_is_invalid_client(scli: Client, sb: Browser) -> None:
    code = scli.sign_in()["code"]
    response = sb.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CLI_REDIRECT,
            "code_verifier": scli.verifier,
            "client_id": "bank-cli",
            "client_secret": "made-up",
        },
    )
    assert_error(response, 401, "invalid_client")
    assert scli.exchange(code).status_code == 200


def test_no_client_at_all_is_invalid_client(sb: Browser) -> None:
    response = sb.http.post("/token", data={"grant_type": "authorization_code", "code": "x"})
    assert_error(response, 401, "invalid_client")


def test_unsupported_grant_type(sb: Browser) -> None:
    for grant_type in ("password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"):
        response = sb.http.post(
            "/token",
            data={"grant_type": grant_type, "username": "alice", "password": "wonderland"},
            auth=("bank-web", WEB_SECRET),
        )
        assert_error(response, 400, "unsupported_grant_type")


def test_missing_grant_type_is_invalid_request(sb: Browser) -> None:
    response = sb.http.post("/token", data={}, auth=("bank-web", WEB_SECRET))
    assert_error(response, 400, "invalid_request")


def test_client_not_registered_for_the_grant_is_unauthorized_client(sb: Browser) -> None:
    response = sb.http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=("bank-web", WEB_SECRET)
    )
    assert_error(response, 400, "unauthorized_client")


# --- refresh tokens ------------------------------------------------------------------------------


def test_refresh_rotates_and_keeps_the_authentication_context(
    cli: Client, browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    tokens = cli.tokens()
    frozen.tick(120)
    response = refresh(cli, tokens["refresh_token"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    new: dict[str, Any] = response.json  # type: ignore[assignment]
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["scope"] == "openid profile offline_access"
    at = claims(browser.app, new["access_token"])
    # DESIGN.md: refresh never upgrades and never refreshes auth_time.
    assert (at["acr"], at["amr"], at["auth_time"], at["iat"]) == (
        LOA1,
        ["pwd"],
        T0_EPOCH,
        T0_EPOCH + 120,
    )
    newer = refresh(cli, new["refresh_token"])
    assert newer.status_code == 200
    assert newer.json["refresh_token"] not in (tokens["refresh_token"], new["refresh_token"])  # type: ignore[index]


def test_reused_refresh_token_revokes_the_whole_family(cli: Client, browser: Browser) -> None:
    tokens = cli.tokens()
    second: dict[str, Any] = refresh(cli, tokens["refresh_token"]).json  # type: ignore[assignment]
    third: dict[str, Any] = refresh(cli, second["refresh_token"]).json  # type: ignore[assignment]

    # RFC 9700 §4.14.2: the rotated token presented again means theft.
    assert_error(refresh(cli, tokens["refresh_token"]), 400, "invalid_grant")

    for token in (
        tokens["access_token"],
        second["access_token"],
        third["access_token"],
        third["refresh_token"],
    ):
        assert introspect(browser, token) == {"active": False}
    assert_error(refresh(cli, third["refresh_token"]), 400, "invalid_grant")


def test_refresh_by_another_client_fails_and_leaves_the_token_usable(
    scli: Client, sb: Browser
) -> None:
    tokens = scli.tokens()
    web = Client(sb, "bank-web", WEB_REDIRECT, secret=WEB_SECRET)
    assert_error(refresh(web, tokens["refresh_token"]), 400, "invalid_grant")
    assert refresh(scli, tokens["refresh_token"]).status_code == 200


def test_refresh_can_narrow_the_scope_and_the_refresh_token_keeps_the_original(
    scli: Client, sb: Browser
) -> None:
    tokens = scli.tokens(scope="openid profile email offline_access")
    narrowed = refresh(scli, tokens["refresh_token"], scope="openid")
    assert narrowed.status_code == 200
    body: dict[str, Any] = narrowed.json  # type: ignore[assignment]
    assert body["scope"] == "openid"
    assert claims(sb.app, body["access_token"])["scope"] == "openid"
    # RFC 6749 §6: "If a new refresh token is issued, the refresh token scope MUST be identical
    # to that of the refresh token included by the client in the request."
    assert introspect(sb, body["refresh_token"])["scope"] == "openid profile email offline_access"
    assert introspect(sb, body["access_token"])["scope"] == "openid"
    wide = refresh(scli, body["refresh_token"], scope="openid email")
    assert wide.status_code == 200
    assert wide.json["scope"] == "openid email"  # type: ignore[index]


def test_refresh_cannot_widen_the_scope(scli: Client) -> None:
    tokens = scli.tokens()
    response = refresh(scli, tokens["refresh_token"], scope="openid profile email")
    assert_error(response, 400, "invalid_scope")
    # The refused request did not consume the refresh token.
    assert refresh(scli, tokens["refresh_token"]).status_code == 200


def test_no_refresh_token_without_offline_access(scli: Client) -> None:
    tokens = scli.tokens(scope="openid profile")
    assert "refresh_token" not in tokens
    assert tokens["scope"] == "openid profile"


def test_expired_refresh_token_is_invalid_grant(
    scli: Client, frozen: FrozenDateTimeFactory
) -> None:
    tokens = scli.tokens()
    frozen.tick(30 * 24 * 3600)
    assert_error(refresh(scli, tokens["refresh_token"]), 400, "invalid_grant")


def test_unknown_and_missing_refresh_token(scli: Client) -> None:
    assert_error(refresh(scli, "garbage"), 400, "invalid_grant")
    assert_error(scli.token_request({"grant_type": "refresh_token"}), 400, "invalid_request")


# --- client credentials --------------------------------------------------------------------------


def test_client_credentials_token_is_the_clients_own(sb: Browser) -> None:
    response = sb.http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "accounts:read"},
        auth=("reports-job", JOB_SECRET),
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    at = claims(sb.app, body["access_token"])
    assert (at["sub"], at["client_id"], at["aud"], at["scope"]) == (
        "reports-job",
        "reports-job",
        API_AUDIENCE,
        "accounts:read",
    )
    # No user authenticated: no acr, amr or auth_time to claim.
    assert not {"acr", "amr", "auth_time"} & set(at)


def test_client_credentials_without_scope_gets_the_registered_scope(sb: Browser) -> None:
    response = sb.http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "reports-job",
            "client_secret": JOB_SECRET,
        },
    )
    assert response.status_code == 200
    # RFC 6749 §3.3: without scope the server MUST use a pre-defined default or fail.
    assert response.json["scope"] == "accounts:read"  # type: ignore[index]


def test_client_credentials_with_an_unregistered_scope_is_invalid_scope(sb: Browser) -> None:
    response = sb.http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "openid"},
        auth=("reports-job", JOB_SECRET),
    )
    assert_error(response, 400, "invalid_scope")


def test_public_client_cannot_use_client_credentials(sb: Browser) -> None:
    response = sb.http.post(
        "/token", data={"grant_type": "client_credentials", "client_id": "bank-cli"}
    )
    # RFC 6749 §4.4: "The client credentials grant type MUST only be used by confidential
    # clients"; a public client cannot authenticate.
    assert_error(response, 401, "invalid_client")
