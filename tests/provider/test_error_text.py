"""Error descriptions are fixed text in the RFC 6749 characters, never built from the request.

RFC 6749 §4.1.2.1 and §5.2: "Values for the "error_description" parameter MUST NOT include
characters outside the set %x20-21 / %x23-5B / %x5D-7E." A value the client sent — in any
parameter, or as a parameter's name — never shows up in an ``error_description``, at the
authorization endpoint (in the ``Location``) or at the JSON endpoints. Each value below carries a
marker and the characters that used to break the response (a quote, a backslash, non-ASCII, CR/LF).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from client_sdk.wire import is_error_text
from provider.error_text import FALLBACK, describe

from .flow import CLI_REDIRECT, Browser, Client, query_of

MARKER = "zqxj"
# A quote, a backslash, non-ASCII, CR/LF and a would-be header: everything error text must not hold.
HOSTILE = f'{MARKER}"\\\u00e9\u202e\r\nX-Injected: 1\x01'
AUTHORIZE_PARAMS = [
    "response_type", "scope", "nonce", "code_challenge", "code_challenge_method", "max_age",
    "prompt", "acr_values", "claims", "login_hint", "ui_locales", "display", "id_token_hint",
    "request", "request_uri", "response_mode", "claims_locales", "resource",
]  # fmt: skip
TOKEN_PARAMS = [
    "grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret",
    "refresh_token", "scope", "token", "token_type_hint",
]  # fmt: skip
WEB = ("bank-web", "bank-web-secret-for-the-local-sandbox")
FORM = "application/x-www-form-urlencoded"
GRANTS = ["authorization_code", "refresh_token", "client_credentials", "password", HOSTILE]


@pytest.fixture
def cli(sqlite_app: Flask) -> Client:
    return Client(Browser(sqlite_app))


@pytest.fixture
def http(sqlite_app: Flask) -> FlaskClient:
    return sqlite_app.test_client()


def redirected_error(response: TestResponse, case: object) -> dict[str, str]:
    assert response.status_code == 302, (case, response.get_data(as_text=True)[:300])
    assert response.location.startswith(CLI_REDIRECT + "?"), case
    q = query_of(response.location)
    assert is_error_text(q["error"]), (case, q)
    assert is_error_text(q["error_description"]), (case, q)
    assert MARKER not in q["error_description"], (case, q)
    return q


# --- the rule ----------------------------------------------------------------------------------


@given(error=st.sampled_from([*FALLBACK, "made_up"]), description=st.none() | st.text())
def test_describe_lets_only_error_text_through(error: str, description: str | None) -> None:
    result = describe(error, description)
    assert result
    assert is_error_text(result)
    if description and is_error_text(description) and len(description) <= 300:
        assert result == description
    else:
        assert result == FALLBACK.get(error, "The request could not be processed.")


# --- /authorize ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response_type",
    ['co"de', "c\\de", "c\u00e9", "token\r\nX-Injected: 1", "\x01", "code ", "CODE", "token",
     "code id_token", HOSTILE],
)  # fmt: skip
def test_an_unsupported_response_type_is_not_echoed(cli: Client, response_type: str) -> None:
    q = redirected_error(cli.authorize(response_type=response_type), response_type)
    assert (q["error"], q["error_description"]) == (
        "unsupported_response_type", "response_type must be code.",
    )  # fmt: skip
    assert q["state"] == cli.state


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(response_type=st.text(min_size=1).filter(lambda t: t != "code" and "\x00" not in t))
def test_any_response_type_but_code_is_unsupported_response_type(
    cli: Client, response_type: str
) -> None:
    q = redirected_error(cli.authorize(response_type=response_type), response_type)
    assert q["error"] == "unsupported_response_type"


def test_a_missing_response_type_is_invalid_request(cli: Client) -> None:
    # RFC 6749 §4.1.1: response_type is REQUIRED; §4.1.2.1 invalid_request: "missing a required
    # parameter".
    q = redirected_error(cli.authorize(response_type=None), "missing")  # type: ignore[arg-type]
    assert (q["error"], q["error_description"]) == ("invalid_request", "Missing response_type.")


def test_no_authorization_parameter_is_echoed_in_an_error(cli: Client) -> None:
    for name in AUTHORIZE_PARAMS:
        response = cli.authorize(**{name: HOSTILE})
        assert response.status_code in (302, 303), (name, response.status_code)
        if response.status_code == 302:
            redirected_error(response, name)


def test_a_repeated_parameter_is_named_only_when_its_name_is_plain(cli: Client) -> None:
    base = urlencode(cli.authorize_params())
    q = redirected_error(cli.browser.get(f"/authorize?{base}&nonce=a"), "nonce")
    assert q["error_description"] == "Parameter repeated: nonce."
    for name in (HOSTILE, "Nonce", "x" * 41, "nonce\n"):
        twice = urlencode([(name, "a"), (name, "b")])
        q = redirected_error(cli.browser.get(f"/authorize?{base}&{twice}"), name)
        assert (q["error"], q["error_description"]) == (
            "invalid_request",
            "A parameter is repeated.",
        )


# --- the JSON endpoints --------------------------------------------------------------------------


def json_error_text(response: TestResponse, case: object) -> dict[str, Any]:
    assert response.status_code in (400, 401), (case, response.status_code)
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    assert is_error_text(body["error"]), (case, body)
    assert is_error_text(body["error_description"]), (case, body)
    assert MARKER not in body["error_description"], (case, body)
    return body


def test_no_token_parameter_is_echoed_in_an_error(http: FlaskClient) -> None:
    for grant in GRANTS:
        for name in TOKEN_PARAMS:
            data = {"grant_type": grant, "client_id": "bank-cli", name: HOSTILE}
            json_error_text(http.post("/token", data=data), (grant, name))
    for path in ("/introspect", "/revoke"):
        for name in TOKEN_PARAMS:
            response = http.post(path, data={"token": "x", name: HOSTILE}, auth=WEB)
            if response.status_code != 200:  # an unknown token is "active": false / revoked
                json_error_text(response, (path, name))
        twice = urlencode([(HOSTILE, "a"), (HOSTILE, "b"), ("token", "x")])
        response = http.post(path, data=twice, auth=WEB, content_type=FORM)
        body = json_error_text(response, (path, "repeated"))
        assert body["error_description"] == "A parameter is repeated."


def test_unsupported_grant_type_is_described_without_the_value(http: FlaskClient) -> None:
    body = json_error_text(http.post("/token", data={"grant_type": HOSTILE}), "grant_type")
    assert body == {
        "error": "unsupported_grant_type",
        "error_description": FALLBACK["unsupported_grant_type"],
    }


def test_hostile_basic_credentials_are_not_echoed(http: FlaskClient) -> None:
    basic = base64.b64encode(f"{HOSTILE}:{HOSTILE}".encode()).decode()
    for path in ("/token", "/introspect", "/revoke"):
        response = http.post(path, data={"grant_type": "client_credentials", "token": "x"},
                             headers={"Authorization": f"Basic {basic}"})  # fmt: skip
        body = json_error_text(response, path)
        assert body["error"] == "invalid_client"
