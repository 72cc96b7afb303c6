"""RFC 7662 introspection, RFC 7009 revocation and the OIDC Core §5.3 userinfo endpoint (with the
RFC 6750 §3 Bearer errors). Revocation touches storage, so it runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from werkzeug.test import TestResponse

from .conftest import T0_EPOCH
from .flow import LOA1, LOA2, Browser, Client, claims

ISSUER = "http://127.0.0.1:9000"
API_AUDIENCE = "https://bank.example/api"
WEB = ("bank-web", "bank-web-secret-for-the-local-sandbox")

# RFC 6750 §3.1 and RFC 9449 §7.1: one challenge per scheme userinfo accepts, no error code.
USERINFO_CHALLENGE = (
    'Bearer realm="userinfo", '
    'DPoP algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 Ed25519 EdDSA"'
)


@pytest.fixture
def sb(sqlite_app: Flask) -> Browser:
    return Browser(sqlite_app)


@pytest.fixture
def scli(sb: Browser) -> Client:
    return Client(sb)


def introspect(browser: Browser, token: str, **extra: str) -> dict[str, Any]:
    response = browser.http.post("/introspect", data={"token": token, **extra}, auth=WEB)
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def revoke(browser: Browser, token: str, **extra: str) -> TestResponse:
    """Revoke as the public bank-cli (RFC 7009 §2.1: public clients send their client_id)."""
    return browser.http.post("/revoke", data={"token": token, "client_id": "bank-cli", **extra})


def userinfo(browser: Browser, token: str) -> TestResponse:
    return browser.http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})


def error_of(response: TestResponse) -> tuple[int, str]:
    body = response.json
    assert body is not None
    return response.status_code, body["error"]


def challenge(response: TestResponse) -> str:
    return response.headers["WWW-Authenticate"]


# --- RFC 7662 introspection ----------------------------------------------------------------------


def test_active_access_token_carries_the_authentication_context(
    scli: Client, sb: Browser, frozen: FrozenDateTimeFactory
) -> None:
    tokens = scli.tokens(acr_values=LOA2)
    subject = claims(sb.app, tokens["id_token"])["sub"]
    jti = claims(sb.app, tokens["access_token"])["jti"]
    assert introspect(sb, tokens["access_token"]) == {
        "active": True,
        "token_type": "Bearer",
        "client_id": "bank-cli",
        "username": "alice",
        "sub": subject,
        "scope": "openid profile offline_access",
        "aud": API_AUDIENCE,
        "iss": ISSUER,
        "iat": T0_EPOCH,
        "exp": T0_EPOCH + 600,
        "jti": jti,
        "acr": LOA2,
        "amr": ["pwd", "otp", "mfa"],
        "auth_time": T0_EPOCH,
    }


def test_active_refresh_token_carries_the_authentication_context(scli: Client, sb: Browser) -> None:
    tokens = scli.tokens()
    subject = claims(sb.app, tokens["id_token"])["sub"]
    assert introspect(sb, tokens["refresh_token"]) == {
        "active": True,
        "token_type": "refresh_token",
        "client_id": "bank-cli",
        "username": "alice",
        "sub": subject,
        "scope": "openid profile offline_access",
        "iss": ISSUER,
        "exp": T0_EPOCH + 30 * 24 * 3600,
        "acr": LOA1,
        "amr": ["pwd"],
        "auth_time": T0_EPOCH,
    }


def test_hint_is_only_a_hint(scli: Client, sb: Browser) -> None:
    tokens = scli.tokens()
    # RFC 7662 §2.1: if the server cannot locate the token using the given hint, it MUST
    # extend its search across all of its supported token types.
    wrong_way = {
        tokens["access_token"]: "refresh_token",
        tokens["refresh_token"]: "access_token",
    }
    for token, hint in wrong_way.items():
        assert introspect(sb, token, token_type_hint=hint)["active"] is True


def test_unknown_hint_is_unsupported_token_type(scli: Client, sb: Browser) -> None:
    response = sb.http.post(
        "/introspect", data={"token": "x", "token_type_hint": "id_token"}, auth=WEB
    )
    assert error_of(response) == (400, "unsupported_token_type")


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "x" * 4000],
)
def test_garbage_is_inactive(sb: Browser, token: str) -> None:
    assert introspect(sb, token) == {"active": False}


def test_id_token_is_not_an_active_access_token(scli: Client, sb: Browser) -> None:
    tokens = scli.tokens()
    assert introspect(sb, tokens["id_token"]) == {"active": False}


def test_access_token_is_inactive_from_its_exp(
    scli: Client, sb: Browser, frozen: FrozenDateTimeFactory
) -> None:
    tokens = scli.tokens()
    frozen.tick(599)
    assert introspect(sb, tokens["access_token"])["active"] is True
    frozen.tick(1)
    assert introspect(sb, tokens["access_token"]) == {"active": False}
    assert introspect(sb, tokens["refresh_token"])["active"] is True


def test_refresh_token_is_inactive_from_its_expiry(
    scli: Client, sb: Browser, frozen: FrozenDateTimeFactory
) -> None:
    tokens = scli.tokens()
    frozen.tick(30 * 24 * 3600 - 1)
    assert introspect(sb, tokens["refresh_token"])["active"] is True
    frozen.tick(1)
    assert introspect(sb, tokens["refresh_token"]) == {"active": False}


def test_rotated_refresh_token_is_inactive(scli: Client, sb: Browser) -> None:
    tokens = scli.tokens()
    response = scli.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert response.status_code == 200
    assert introspect(sb, tokens["refresh_token"]) == {"active": False}
    assert introspect(sb, response.json["refresh_token"])["active"] is True  # type: ignore[index]


def test_client_credentials_token_has_no_user_context(sb: Browser) -> None:
    response = sb.http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=("reports-job", "reports-job-secret-for-the-local-sandbox"),
    )
    body = introspect(sb, response.json["access_token"])  # type: ignore[index]
    assert (body["active"], body["sub"], body["client_id"], body["scope"]) == (
        True,
        "reports-job",
        "reports-job",
        "accounts:read",
    )
    assert not {"acr", "amr", "auth_time", "username"} & set(body)


@pytest.mark.parametrize(
    ("auth", "data"),
    [
        (None, {}),
        (None, {"client_id": "bank-cli"}),  # a public client cannot authenticate
        (("bank-web", "wrong"), {}),
        (None, {"client_id": "bank-web", "client_secret": "wrong"}),
        (("nobody", "x"), {}),
    ],
)
def test_only_authenticated_confidential_clients_may_introspect(
    sb: Browser, auth: tuple[str, str] | None, data: dict[str, str]
) -> None:
    response = sb.http.post("/introspect", data={"token": "x", **data}, auth=auth)
    assert error_of(response) == (401, "invalid_client")
    assert challenge(response).startswith('Basic error="invalid_client"')


def test_introspection_with_client_secret_post(sb: Browser) -> None:
    response = sb.http.post(
        "/introspect",
        data={
            "token": "x",
            "client_id": "reports-job",
            "client_secret": "reports-job-secret-for-the-local-sandbox",
        },
    )
    assert (response.status_code, response.json) == (200, {"active": False})


def test_introspection_without_token_is_invalid_request(sb: Browser) -> None:
    # RFC 6749 §3.2: "Parameters sent without a value MUST be treated as if they were omitted".
    for data in ({}, {"token": ""}):
        response = sb.http.post("/introspect", data=data, auth=WEB)
        assert error_of(response) == (400, "invalid_request")


# --- RFC 7009 revocation -------------------------------------------------------------------------


def test_revoking_a_refresh_token_revokes_its_family_and_access_tokens(
    cli: Client, browser: Browser
) -> None:
    tokens = cli.tokens()
    rotated = cli.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    ).json
    assert rotated is not None
    response = revoke(browser, rotated["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200
    for token in (tokens["access_token"], rotated["access_token"], rotated["refresh_token"]):
        assert introspect(browser, token) == {"active": False}
    refreshed = cli.token_request(
        {"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]}
    )
    assert error_of(refreshed) == (400, "invalid_grant")
    assert error_of(userinfo(browser, rotated["access_token"])) == (401, "invalid_token")


def test_revoking_an_access_token(cli: Client, browser: Browser) -> None:
    tokens = cli.tokens()
    assert revoke(browser, tokens["access_token"]).status_code == 200
    assert introspect(browser, tokens["access_token"]) == {"active": False}
    assert error_of(userinfo(browser, tokens["access_token"])) == (401, "invalid_token")


def test_revocation_ignores_a_wrong_hint(scli: Client, sb: Browser) -> None:
    tokens = scli.tokens()
    # RFC 7009 §2.1: "If the server is unable to locate the token using the given hint, it MUST
    # extend its search across all of its supported token types."
    assert revoke(sb, tokens["access_token"], token_type_hint="refresh_token").status_code == 200
    assert introspect(sb, tokens["access_token"]) == {"active": False}


def test_revoking_an_unknown_token_is_200(sb: Browser) -> None:
    # RFC 7009 §2.2: "invalid tokens do not cause an error response".
    for token in ("garbage", "a.b.c", "x" * 4000):
        response = revoke(sb, token)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"


def test_revoking_twice_is_200(scli: Client, sb: Browser) -> None:
    tokens = scli.tokens()
    assert revoke(sb, tokens["refresh_token"]).status_code == 200
    assert revoke(sb, tokens["refresh_token"]).status_code == 200


def test_another_clients_token_cannot_be_revoked(scli: Client, sb: Browser) -> None:
    tokens = scli.tokens()
    response = sb.http.post("/revoke", data={"token": tokens["refresh_token"]}, auth=WEB)
    # RFC 7009 §2.1: the server verifies the token was issued to the requesting client; if not,
    # the request is refused.
    assert error_of(response) == (400, "invalid_grant")
    assert introspect(sb, tokens["refresh_token"])["active"] is True


def test_revocation_errors(sb: Browser) -> None:
    assert error_of(sb.http.post("/revoke", data={"client_id": "bank-cli"})) == (
        400,
        "invalid_request",
    )
    assert error_of(revoke(sb, "x", token_type_hint="id_token")) == (
        400,
        "unsupported_token_type",
    )
    response = sb.http.post("/revoke", data={"token": "x"}, auth=("bank-web", "wrong"))
    assert error_of(response) == (401, "invalid_client")
    assert challenge(response).startswith('Basic error="invalid_client"')
    assert error_of(sb.http.post("/revoke", data={"token": "x"})) == (401, "invalid_client")


# --- userinfo (OIDC Core §5.3, RFC 6750) ---------------------------------------------------------


def test_userinfo_by_header_get_and_post(scli: Client, sb: Browser) -> None:
    tokens = scli.tokens()
    subject = claims(sb.app, tokens["id_token"])["sub"]
    expected = {"sub": subject, "preferred_username": "alice", "name": "Alice Liddell"}
    header = {"Authorization": f"Bearer {tokens['access_token']}"}
    for response in (
        sb.http.get("/userinfo", headers=header),
        sb.http.post("/userinfo", headers=header),
    ):
        assert (response.status_code, response.json) == (200, expected)
        assert response.headers["Cache-Control"] == "no-store"


def test_userinfo_by_form_body(scli: Client, sb: Browser) -> None:
    tokens = scli.tokens()
    # RFC 6750 §2.2: the form-encoded body parameter.
    response = sb.http.post("/userinfo", data={"access_token": tokens["access_token"]})
    assert response.status_code == 200
    assert response.json["preferred_username"] == "alice"  # type: ignore[index]


def test_userinfo_scheme_is_case_insensitive(scli: Client, sb: Browser) -> None:
    tokens = scli.tokens()
    response = sb.http.get(
        "/userinfo", headers={"Authorization": f"bEaReR {tokens['access_token']}"}
    )
    assert response.status_code == 200


def test_token_in_header_and_body_is_invalid_request(scli: Client, sb: Browser) -> None:
    tokens = scli.tokens()
    response = sb.http.post(
        "/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        data={"access_token": tokens["access_token"]},
    )
    # RFC 6750 §3.1 invalid_request: "uses more than one method for including an access token".
    assert error_of(response) == (400, "invalid_request")
    assert challenge(response).startswith('Bearer error="invalid_request"')


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Basic YmFuay13ZWI6YmFuay13ZWItc2VjcmV0"}]
)
def test_no_bearer_token_is_401_challenge_without_error(
    sb: Browser, headers: dict[str, str]
) -> None:
    response = sb.http.get("/userinfo", headers=headers)
    # RFC 6750 §3.1: "If the request lacks any authentication information (e.g., the client was
    # unaware that authentication is necessary or attempted using an unsupported authentication
    # method), the resource server SHOULD NOT include an error code".
    assert response.status_code == 401
    assert challenge(response) == USERINFO_CHALLENGE


def test_empty_bearer_is_invalid_request(sb: Browser) -> None:
    response = sb.http.get("/userinfo", headers={"Authorization": "Bearer "})
    assert error_of(response) == (400, "invalid_request")


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 3000])
def test_invalid_token_is_401_invalid_token(sb: Browser, token: str) -> None:
    response = userinfo(sb, token)
    assert error_of(response) == (401, "invalid_token")
    assert challenge(response).startswith('Bearer error="invalid_token"')


def test_id_token_is_not_accepted_at_userinfo(scli: Client, sb: Browser) -> None:
    tokens = scli.tokens()
    assert error_of(userinfo(sb, tokens["id_token"])) == (401, "invalid_token")


def test_expired_token_is_401_invalid_token(
    scli: Client, sb: Browser, frozen: FrozenDateTimeFactory
) -> None:
    tokens = scli.tokens()
    frozen.tick(599)
    assert userinfo(sb, tokens["access_token"]).status_code == 200
    frozen.tick(1)
    assert error_of(userinfo(sb, tokens["access_token"])) == (401, "invalid_token")


def test_token_without_openid_is_403_insufficient_scope(scli: Client, sb: Browser) -> None:
    tokens = scli.tokens()
    narrowed = scli.token_request(
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": "profile",
        }
    )
    assert narrowed.status_code == 200
    response = userinfo(sb, narrowed.json["access_token"])  # type: ignore[index]
    assert error_of(response) == (403, "insufficient_scope")
    assert challenge(response) == (
        'Bearer error="insufficient_scope", error_description="userinfo needs the openid scope", '
        'scope="openid"'
    )


def test_client_credentials_token_is_refused_at_userinfo(sb: Browser) -> None:
    token = sb.http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=("reports-job", "reports-job-secret-for-the-local-sandbox"),
    ).json["access_token"]  # type: ignore[index]
    assert error_of(userinfo(sb, token)) == (403, "insufficient_scope")


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("openid", set()),
        ("openid profile", {"preferred_username", "name"}),
        ("openid email", {"email", "email_verified"}),
        (
            "openid profile email",
            {"preferred_username", "name", "email", "email_verified"},
        ),
    ],
)
def test_claims_follow_the_scope(scli: Client, sb: Browser, scope: str, expected: set[str]) -> None:
    tokens = scli.tokens(scope=scope)
    body = userinfo(sb, tokens["access_token"]).json
    assert body is not None
    assert set(body) == {"sub", *expected}
    if "email" in expected:
        assert (body["email"], body["email_verified"]) == ("alice@bank.example", False)
