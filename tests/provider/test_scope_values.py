"""Scope values this provider does not understand are ignored, and every token response says what
was granted: OIDC Core §3.1.2.1 ("Scope values used that are not understood by an implementation
SHOULD be ignored"), RFC 6749 §3.3 (the server "MAY fully or partially ignore the scope requested
by the client"; the response's ``scope`` tells the client), at /authorize and at /token
(``client_credentials`` and ``refresh_token``). A scope value this provider knows but the client
may not have stays a refusal where it always was (client_credentials, widening a refresh).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from .flow import Browser, Client, claims, query_of

JOB = ("reports-job", "reports-job-secret-for-the-local-sandbox")


@pytest.fixture
def cli(sqlite_app: Flask) -> Client:
    return Client(Browser(sqlite_app))


def ok(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def error(response: TestResponse) -> str:
    assert response.status_code == 400, response.json
    return str(response.json["error"])  # type: ignore[index]


def refresh(client: Client, token: str, scope: str) -> TestResponse:
    return client.token_request(
        {"grant_type": "refresh_token", "refresh_token": token, "scope": scope}
    )


def test_unknown_scope_values_at_authorize_are_ignored(cli: Client, sqlite_app: Flask) -> None:
    response = cli.authorize(scope="openid https://graph.example/.default profile phone")
    assert response.status_code == 303, query_of(response.location)
    tokens = cli.tokens(scope="openid https://graph.example/.default profile phone")
    assert tokens["scope"] == "openid profile"
    assert claims(sqlite_app, tokens["access_token"])["scope"] == "openid profile"
    assert "id_token" in tokens


def test_client_credentials_ignores_unknown_values_and_says_what_it_granted(
    sqlite_app: Flask,
) -> None:
    http = sqlite_app.test_client()
    body = ok(
        http.post(
            "/token",
            data={"grant_type": "client_credentials", "scope": "urn:other:read accounts:read"},
            auth=JOB,
        )
    )
    assert body["scope"] == "accounts:read"
    assert claims(sqlite_app, body["access_token"])["scope"] == "accounts:read"


def test_client_credentials_with_only_unknown_values_gets_the_registered_scope(
    sqlite_app: Flask,
) -> None:
    http = sqlite_app.test_client()
    body = ok(
        http.post(
            "/token", data={"grant_type": "client_credentials", "scope": "urn:other"}, auth=JOB
        )
    )
    assert body["scope"] == "accounts:read"


def test_client_credentials_still_refuses_a_known_scope_not_registered(sqlite_app: Flask) -> None:
    http = sqlite_app.test_client()
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "accounts:read urn:other openid"},
        auth=JOB,
    )
    assert error(response) == "invalid_scope"


def test_refresh_ignores_unknown_values_a_client_sends_again(cli: Client) -> None:
    """An RP that asked for ``openid custom offline_access`` got ``openid offline_access``; when
    it sends its original scope string with the refresh, it is not refused for ``custom``."""
    tokens = cli.tokens(scope="openid custom offline_access")
    assert tokens["scope"] == "openid offline_access"
    body = ok(refresh(cli, tokens["refresh_token"], "openid custom offline_access"))
    assert body["scope"] == "openid offline_access"
    narrowed = ok(refresh(cli, body["refresh_token"], "custom openid"))
    assert narrowed["scope"] == "openid"


def test_refresh_with_only_unknown_values_keeps_the_granted_scope(cli: Client) -> None:
    tokens = cli.tokens(scope="openid profile offline_access")
    body = ok(refresh(cli, tokens["refresh_token"], "custom"))
    assert body["scope"] == "openid profile offline_access"


def test_refresh_still_refuses_to_widen_with_a_known_value(cli: Client) -> None:
    tokens = cli.tokens(scope="openid offline_access")
    assert error(refresh(cli, tokens["refresh_token"], "openid email custom")) == "invalid_scope"
    # The refused request did not consume the refresh token.
    assert ok(refresh(cli, tokens["refresh_token"], "openid"))["scope"] == "openid"
