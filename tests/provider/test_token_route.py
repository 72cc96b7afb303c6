"""``POST /token`` answered from WSGI (provider/token_route.py) or, for anything but the plain case,
by the Flask view: the same answer either way, the same headers, and the unusual requests still
answered by Flask's rules (NUL bytes, encodings, sizes, CORS, unexpected errors)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from provider.token_route import TokenRoute

JOB_BASIC = (
    "Basic " + base64.b64encode(b"reports-job:reports-job-secret-for-the-local-sandbox").decode()
)
CC_FORM = "grant_type=client_credentials&scope=accounts%3Aread"
SECURITY = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture
def http(sqlite_app: Flask) -> FlaskClient:
    return sqlite_app.test_client()


def token_route(app: Flask) -> TokenRoute:
    route = app.wsgi_app
    assert isinstance(route, TokenRoute)
    return route


FORM = "application/x-www-form-urlencoded"
MULTIPART = (
    b'--b\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\n'
    b"client_credentials\r\n--b--\r\n"
)


def post(http: FlaskClient, body: bytes | str, *, content_type: str = FORM, **headers: str) -> Any:
    return http.post(
        "/token",
        data=body,
        content_type=content_type,
        headers={"Authorization": JOB_BASIC, **headers},
    )


def counting(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which path answered: 'route' for the WSGI route, 'flask' for the Flask view."""
    seen: list[str] = []
    route = token_route(app)
    endpoint = route.endpoint
    respond = endpoint.respond
    flask_app = route.app

    def via_route(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append("flask")
        return flask_app(environ, start_response)

    monkeypatch.setattr(route, "app", via_route)
    monkeypatch.setattr(endpoint, "respond", respond)
    return seen


def test_the_plain_request_takes_the_route_with_every_header_flask_adds(
    sqlite_app: Flask, http: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = counting(sqlite_app, monkeypatch)
    direct = post(http, CC_FORM)
    assert seen == []
    assert direct.status_code == 200
    assert direct.json is not None
    assert direct.json["token_type"] == "Bearer"
    assert direct.headers["Content-Type"] == "application/json"
    assert direct.headers["Cache-Control"] == "no-store"
    assert direct.headers["Pragma"] == "no-cache"
    assert direct.headers["Vary"] == "Origin"
    assert direct.headers["Content-Length"] == str(len(direct.data))
    for name, value in SECURITY.items():
        assert direct.headers[name] == value
    assert direct.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_an_error_is_the_same_on_both_paths(
    sqlite_app: Flask, http: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = counting(sqlite_app, monkeypatch)
    wrong = "Basic " + base64.b64encode(b"reports-job:wrong").decode()
    # A charset parameter is still a form, and still the route; a query string is Flask's.
    direct = http.post("/token", data=CC_FORM, content_type=FORM + "; charset=utf-8",
                       headers={"Authorization": wrong})  # fmt: skip
    via_flask = http.post("/token?x=1", data=CC_FORM, content_type=FORM,
                          headers={"Authorization": wrong})  # fmt: skip
    assert seen == ["flask"]
    for response in (direct, via_flask):
        assert response.status_code == 401
        assert response.json == {
            "error": "invalid_client",
            "error_description": "Client authentication failed.",
        }
        assert response.headers["WWW-Authenticate"] == (
            'Basic error="invalid_client", error_description="Client authentication failed."'
        )
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Frame-Options"] == "DENY"
    assert direct.headers["Vary"] == via_flask.headers["Vary"] == "Origin"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        # A NUL byte: the provider's rule for every parameter (provider/views/errors.py).
        (CC_FORM + "&state=a%00b", "application/x-www-form-urlencoded", 400, "invalid_request"),
        # Not UTF-8: werkzeug's reading of the form, not ours.
        (CC_FORM + "&state=%FF", "application/x-www-form-urlencoded", 200, None),
        # multipart/form-data is a form to werkzeug.
        (MULTIPART, "multipart/form-data; boundary=b", 200, None),
    ],
)
def test_what_the_route_does_not_read_goes_to_flask(
    sqlite_app: Flask,
    http: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    body: str | bytes,
    content_type: str,
    status: int,
    error: str | None,
) -> None:
    seen = counting(sqlite_app, monkeypatch)
    response = post(http, body, content_type=content_type)
    assert seen == ["flask"]
    assert response.status_code == status, response.json
    if error is not None:
        assert response.json is not None
        assert response.json["error"] == error


def test_a_body_over_the_limit_is_413_from_flask(
    sqlite_app: Flask, http: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = counting(sqlite_app, monkeypatch)
    response = post(http, CC_FORM + "&pad=" + "a" * (64 * 1024))
    assert seen == ["flask"]
    assert response.status_code == 413
    assert response.json is not None
    assert response.json["error"] == "invalid_request"


def test_a_cors_request_is_answered_by_flask_with_its_headers(
    sqlite_app: Flask, http: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = counting(sqlite_app, monkeypatch)
    response = post(http, CC_FORM, Origin="https://evil.example")
    assert seen == ["flask"]
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.headers["Vary"] == "Origin"


def test_an_unexpected_error_is_a_json_500_not_a_bare_one(
    sqlite_app: Flask, http: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(request: object) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(token_route(sqlite_app).endpoint, "respond", broken)
    response = post(http, CC_FORM)
    assert response.status_code == 500
    assert json.loads(response.data) == {
        "error": "server_error",
        "error_description": "unexpected error",
    }
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_other_methods_on_token_are_flasks(sqlite_app: Flask, http: FlaskClient) -> None:
    response = http.get("/token")
    assert response.status_code == 405
    assert sorted(response.headers["Allow"].split(", ")) == ["OPTIONS", "POST"]
