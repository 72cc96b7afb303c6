"""CORS (WHATWG Fetch): who may call the provider from a browser page of another origin.

Discovery and JWKS answer every origin. /token, /userinfo and /revoke answer — preflight and
request — only the origins of registered redirect URIs, with ``Vary: Origin`` and
``WWW-Authenticate`` exposed. Nothing else answers CORS, and nothing allows credentials.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun.api import FrozenDateTimeFactory
from werkzeug.test import TestResponse

from provider import create_app
from provider.cors import origin_of
from stepup.config import ClientConfig, StepupConfig

from .flow import Browser, Client

SPA = "https://spa.example:8443"
DEV = "http://localhost:5173"
CLI = "http://127.0.0.1:8765"  # bank-cli's registered loopback redirect URI
SPA_CLIENT = ClientConfig(
    client_id="spa",
    redirect_uris=(f"{SPA}/callback", f"{DEV}/cb"),
    grant_types=("authorization_code", "refresh_token"),
)
METHODS = {"/token": "POST", "/userinfo": "GET, POST", "/revoke": "POST"}
CORS_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Expose-Headers",
    "Access-Control-Max-Age",
    "Access-Control-Allow-Credentials",
)


@pytest.fixture
def app(config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory) -> Flask:
    # Registered clients only: the sandbox's any-loopback-client switch (which opens CORS to
    # every loopback origin) is tested in test_sandbox_loopback_clients.py.
    strict = replace(config.provider, sandbox_loopback_clients=False)
    return create_app(
        replace(config, clients=(*config.clients, SPA_CLIENT), provider=strict),
        database_url=sqlite_url,
    )


@pytest.fixture
def http(app: Flask) -> FlaskClient:
    return app.test_client()


def preflight(http: FlaskClient, path: str, origin: str, method: str = "POST") -> TestResponse:
    return http.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def cors_headers(response: TestResponse) -> dict[str, str]:
    return {k: response.headers[k] for k in CORS_HEADERS if k in response.headers}


def vary(response: TestResponse) -> set[str]:
    return {v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()}


# --- the endpoints browser clients call ---------------------------------------------------------


@pytest.mark.parametrize("path", sorted(METHODS))
@pytest.mark.parametrize("origin", [SPA, DEV, CLI])
def test_preflight_from_a_registered_origin(http: FlaskClient, path: str, origin: str) -> None:
    response = preflight(http, path, origin)
    assert response.status_code == 204
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": METHODS[path],
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Max-Age": "600",
    }
    assert "Origin" in vary(response)


def test_token_error_from_a_registered_origin_is_readable_with_its_challenge(
    http: FlaskClient,
) -> None:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Origin": SPA, "Authorization": "Basic eDp5"},
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Basic error="invalid_client"')
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": SPA,
        "Access-Control-Expose-Headers": "WWW-Authenticate",
    }
    assert "Origin" in vary(response)


def test_userinfo_challenge_from_a_registered_origin_is_readable(http: FlaskClient) -> None:
    response = http.get("/userinfo", headers={"Origin": DEV, "Authorization": "Bearer bad"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": DEV,
        "Access-Control-Expose-Headers": "WWW-Authenticate",
    }


def test_a_spa_redeems_refreshes_reads_userinfo_and_revokes_across_origins(app: Flask) -> None:
    spa = Client(Browser(app), "spa", f"{SPA}/callback")
    code = spa.sign_in()["code"]
    http = app.test_client()  # the SPA's fetches: no cookies of the provider needed
    origin = {"Origin": SPA}
    token = http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": f"{SPA}/callback",
            "code_verifier": spa.verifier,
            "client_id": "spa",
        },
        headers=origin,
    )
    assert (token.status_code, token.headers["Access-Control-Allow-Origin"]) == (200, SPA)
    tokens = token.json
    assert tokens is not None
    userinfo = http.get(
        "/userinfo", headers={**origin, "Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert (userinfo.status_code, userinfo.headers["Access-Control-Allow-Origin"]) == (200, SPA)
    refreshed = http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "spa",
        },
        headers=origin,
    )
    assert (refreshed.status_code, refreshed.headers["Access-Control-Allow-Origin"]) == (200, SPA)
    revoked = http.post(
        "/revoke",
        data={"token": refreshed.json["refresh_token"], "client_id": "spa"},  # type: ignore[index]
        headers=origin,
    )
    assert (revoked.status_code, revoked.headers["Access-Control-Allow-Origin"]) == (200, SPA)


@pytest.mark.parametrize("path", sorted(METHODS))
@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "https://spa.example",  # the registered origin has port 8443
        "http://spa.example:8443",  # and scheme https
        "http://127.0.0.1:9999",  # a loopback redirect URI's other ports are for native apps
        "null",
        f"{SPA}.evil.example",
    ],
)
def test_no_cors_for_other_origins(http: FlaskClient, path: str, origin: str) -> None:
    response = preflight(http, path, origin)
    assert cors_headers(response) == {}
    method = "get" if path == "/userinfo" else "post"
    actual = getattr(http, method)(path, data={"token": "x"}, headers={"Origin": origin})
    assert actual.status_code in (200, 400, 401)
    assert cors_headers(actual) == {}
    # The answer depends on Origin, so shared caches must not reuse it for another origin.
    assert "Origin" in vary(actual)


# --- public documents -----------------------------------------------------------------------------


PUBLIC = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks"]


@pytest.mark.parametrize("path", PUBLIC)
@pytest.mark.parametrize("origin", [None, "https://anyone.example", "null"])
def test_discovery_and_jwks_answer_every_origin(
    http: FlaskClient, path: str, origin: str | None
) -> None:
    response = http.get(path, headers={"Origin": origin} if origin else {})
    assert response.status_code == 200
    assert cors_headers(response) == {"Access-Control-Allow-Origin": "*"}
    assert "Origin" not in vary(response)
    if origin:
        pre = preflight(http, path, origin, method="GET")
        assert pre.status_code == 204
        assert cors_headers(pre) == {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "GET",
            "Access-Control-Max-Age": "600",
        }


# --- no CORS for anything else --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/introspect"),
        ("get", "/authorize"),
        ("post", "/authorize"),
        ("get", "/logout"),
        ("get", "/interaction/x"),
        ("get", "/sandbox"),
        ("post", "/sandbox/token"),
    ],
)
def test_no_cors_elsewhere_even_for_a_registered_origin(
    http: FlaskClient, method: str, path: str
) -> None:
    response = getattr(http, method)(path, headers={"Origin": SPA})
    assert cors_headers(response) == {}
    pre = preflight(http, path, SPA, method=method.upper())
    assert cors_headers(pre) == {}
    assert pre.status_code != 204


@pytest.mark.parametrize(
    ("uri", "origin"),
    [
        ("https://spa.example:8443/callback", "https://spa.example:8443"),
        ("https://SPA.example:443/cb?x=1", "https://spa.example"),
        ("http://localhost:80/cb", "http://localhost"),
        ("http://[::1]:8765/cb", "http://[::1]:8765"),
        ("HTTP://127.0.0.1:8765/callback", "http://127.0.0.1:8765"),
        ("com.example.app:/oauth2redirect", None),
        ("https:///no-host", None),
        ("http://127.0.0.1:notaport/cb", None),
    ],
)
def test_origin_of_a_redirect_uri(uri: str, origin: str | None) -> None:
    assert origin_of(uri) == origin
