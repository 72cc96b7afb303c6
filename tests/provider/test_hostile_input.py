"""Malformed and hostile input at every endpoint: never a 500, and the error each spec names.

DESIGN.md "Bad input": JSON errors for the token, introspection and revocation endpoints (RFC 6749
§5.2), Bearer challenges at userinfo (RFC 6750 §3), error pages (never redirects) for browsers.
Inputs that reach the database (NUL bytes, very long values) run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from .flow import Browser, Client

FORM = "application/x-www-form-urlencoded"
JSON_ENDPOINTS = ["/token", "/introspect", "/revoke"]
WEB = ("bank-web", "bank-web-secret-for-the-local-sandbox")
TOKEN_PARAMS = [
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "client_id",
    "client_secret",
    "refresh_token",
    "scope",
    "token",
    "token_type_hint",
]

# RFC 6750 §3.1 and RFC 9449 §7.1: one challenge per scheme userinfo accepts, no error code.
USERINFO_CHALLENGE = (
    'Bearer realm="userinfo", '
    'DPoP algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 Ed25519 EdDSA"'
)


@pytest.fixture
def http(sqlite_app: Flask) -> FlaskClient:
    return sqlite_app.test_client()


@pytest.fixture
def any_db_http(app: Flask) -> FlaskClient:
    return app.test_client()


def json_error(response: TestResponse, status: int, error: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.json
    assert body is not None
    assert body["error"] == error, body


def not_500(response: TestResponse) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]


def allowed(response: TestResponse) -> set[str]:
    return set(response.headers["Allow"].split(", "))


# --- methods and media types ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [*JSON_ENDPOINTS])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_at_a_json_endpoint_is_405_json_with_allow(
    http: FlaskClient, path: str, method: str
) -> None:
    response = http.open(path, method=method)
    json_error(response, 405, "invalid_request")
    # RFC 9110 §15.5.6: the origin server MUST generate an Allow header field in a 405.
    assert allowed(response) == {"OPTIONS", "POST"}


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/userinfo", "GET, HEAD, OPTIONS, POST"),
        ("/jwks", "GET, HEAD, OPTIONS"),
        ("/.well-known/openid-configuration", "GET, HEAD, OPTIONS"),
    ],
)
def test_wrong_method_at_other_endpoints(http: FlaskClient, path: str, allow: str) -> None:
    response = http.delete(path)
    json_error(response, 405, "invalid_request")
    assert allowed(response) == set(allow.split(", "))


def test_wrong_method_at_a_page_is_a_405_page(http: FlaskClient) -> None:
    response = http.get("/logout/confirm")
    assert (response.status_code, response.mimetype) == (405, "text/html")
    assert allowed(response) == {"OPTIONS", "POST"}


def test_unknown_path_under_a_json_endpoint_is_json_404(http: FlaskClient) -> None:
    json_error(http.get("/token/extra"), 404, "invalid_request")


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_json_body_instead_of_a_form_is_invalid(http: FlaskClient, path: str) -> None:
    body = {"grant_type": "client_credentials", "token": "x", "client_id": "bank-cli"}
    response = http.post(path, json=body, auth=WEB)
    # The parameters are not where RFC 6749 §3.2 puts them (a form body): nothing is read.
    json_error(response, 400, "invalid_request")


def test_json_body_at_userinfo_is_not_a_token(http: FlaskClient) -> None:
    response = http.post("/userinfo", json={"access_token": "x"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == USERINFO_CHALLENGE


def test_parameters_in_the_query_string_are_not_read(http: FlaskClient) -> None:
    # RFC 6749 §2.3.1: client credentials "MUST NOT be included in the request URI".
    response = http.post(
        "/token?grant_type=client_credentials&client_id=reports-job"
        "&client_secret=reports-job-secret-for-the-local-sandbox",
        data={},
    )
    json_error(response, 400, "invalid_request")
    response = http.post(
        "/token?client_id=reports-job&client_secret=reports-job-secret-for-the-local-sandbox",
        data={"grant_type": "client_credentials"},
    )
    json_error(response, 401, "invalid_client")


# --- sizes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*JSON_ENDPOINTS, "/userinfo"])
def test_body_over_64_kib_is_413_json(http: FlaskClient, path: str) -> None:
    response = http.post(
        path, data={"grant_type": "client_credentials", "token": "x" * (64 * 1024 + 1)}
    )
    json_error(response, 413, "invalid_request")


def test_body_over_64_kib_at_a_page_is_a_413_page(http: FlaskClient) -> None:
    response = http.post("/logout", data={"state": "x" * (64 * 1024 + 1)})
    assert (response.status_code, response.mimetype) == (413, "text/html")


def test_very_long_values_at_the_token_endpoint(any_db_http: FlaskClient) -> None:
    long = "x" * 20_000  # three of them still fit in the 64 KiB body limit
    for data, status, error in [
        ({"grant_type": long}, 400, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "client_id": long}, 401, "invalid_client"),
        ({"grant_type": "refresh_token", "client_id": "bank-cli", "refresh_token": long}, 400,
         "invalid_grant"),
        ({"grant_type": "authorization_code", "client_id": "bank-cli", "code": long,
          "redirect_uri": long, "code_verifier": long}, 400, "invalid_grant"),
    ]:  # fmt: skip
        json_error(any_db_http.post("/token", data=data), status, error)


def test_very_long_values_elsewhere(any_db_http: FlaskClient) -> None:
    long = "x" * 60_000
    assert any_db_http.post("/introspect", data={"token": long}, auth=WEB).json == {"active": False}
    assert (
        any_db_http.post("/revoke", data={"token": long, "client_id": "bank-cli"}).status_code
        == 200
    )
    response = any_db_http.get("/userinfo", headers={"Authorization": "Bearer " + "x" * 8000})
    json_error(response, 401, "invalid_token")
    response = any_db_http.get("/logout", query_string={"client_id": long, "id_token_hint": long})
    assert response.status_code == 400


# --- repeated and empty parameters ---------------------------------------------------------------


@pytest.mark.parametrize("param", ["grant_type", "client_id", "scope", "client_secret"])
def test_repeated_parameter_at_the_token_endpoint_is_invalid_request(
    http: FlaskClient, param: str
) -> None:
    data = {
        "grant_type": "client_credentials",
        "client_id": "reports-job",
        "client_secret": "reports-job-secret-for-the-local-sandbox",
        "scope": "accounts:read",
    }
    body = "&".join(f"{k}={v}" for k, v in data.items()) + f"&{param}={data[param]}"
    response = http.post("/token", data=body, content_type=FORM)
    # RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once."
    json_error(response, 400, "invalid_request")


@pytest.mark.parametrize("path", ["/introspect", "/revoke"])
def test_repeated_token_parameter_is_invalid_request(http: FlaskClient, path: str) -> None:
    response = http.post(path, data="token=a&token=b", content_type=FORM, auth=WEB)
    json_error(response, 400, "invalid_request")


def test_empty_parameters_count_as_omitted(http: FlaskClient) -> None:
    # RFC 6749 §3.2: "Parameters sent without a value MUST be treated as if they were omitted".
    json_error(
        http.post(
            "/token",
            data={"grant_type": ""},
            auth=("reports-job", "reports-job-secret-for-the-local-sandbox"),
        ),
        400,
        "invalid_request",
    )
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": ""},
        auth=("reports-job", "reports-job-secret-for-the-local-sandbox"),
    )
    assert response.status_code == 200
    assert response.json["scope"] == "accounts:read"  # type: ignore[index]
    json_error(
        http.post("/token", data={"grant_type": "authorization_code", "code": "",
                                  "client_id": "bank-cli"}),
        400,
        "invalid_request",
    )  # fmt: skip


# --- encodings, NUL bytes and garbage headers ----------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=client_credentials&client_id=\xff\xfe",
        b"\xff\xfe\xfd",
        b"grant_type=%ff%fe&client_id=%c3%28",
        b"%",
        b"=&=&&==",
        b"grant_type=client_credentials\x00&client_id=bank-cli",
    ],
)
def test_non_utf8_and_odd_form_bodies(http: FlaskClient, body: bytes) -> None:
    for path in JSON_ENDPOINTS:
        response = http.post(path, data=body, content_type=FORM)
        not_500(response)
        assert response.mimetype == "application/json"
        assert response.status_code in (400, 401)


@pytest.mark.parametrize("path", [*JSON_ENDPOINTS, "/userinfo", "/logout", "/authorize"])
def test_nul_bytes_never_reach_the_database_as_a_500(any_db_http: FlaskClient, path: str) -> None:
    values = {
        "grant_type": "authorization_code",
        "client_id": "bank\x00cli",
        "code": "c\x00",
        "redirect_uri": "http://127.0.0.1:8765/callback\x00",
        "code_verifier": "v" * 43,
        "token": "t\x00",
        "refresh_token": "r\x00",
        "access_token": "a\x00",
        "post_logout_redirect_uri": "http://127.0.0.1:8000/\x00",
        "id_token_hint": "\x00",
        "login_hint": "ali\x00ce",
        "response_type": "code",
        "scope": "openid\x00",
        "state": "\x00",
    }
    not_500(any_db_http.post(path, data=values))
    not_500(any_db_http.get(path, query_string=values))
    not_500(any_db_http.post(path, data={"client_id": "\x00", "client_secret": "\x00"}))


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic",
        "Basic ",
        "Basic !!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b":").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),
        "Basic " + base64.b64encode(b"bank\x00web:bank-web-secret-for-the-local-sandbox").decode(),
        "Basic " + base64.b64encode(b"%zz:%zz").decode(),
        "Bearer x",
        "Digest username=x",
        "\x00",
        " ",
        "Basic " + "A" * 20_000,
    ],
)
def test_garbage_authorization_header_is_invalid_client(
    any_db_http: FlaskClient, authorization: str
) -> None:
    for path in JSON_ENDPOINTS:
        response = any_db_http.post(
            path, data={"grant_type": "client_credentials", "token": "x"},
            headers={"Authorization": authorization},
        )  # fmt: skip
        json_error(response, 401, "invalid_client")


@pytest.mark.parametrize(
    ("authorization", "status", "error"),
    [
        ("Bearer", 400, "invalid_request"),
        ("Bearer    ", 400, "invalid_request"),
        ("Bearer \x00", 401, "invalid_token"),
        ("Bearer a b c", 401, "invalid_token"),
        ("Bearer ey.ey.ey", 401, "invalid_token"),
        ("Bearer eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.", 401, "invalid_token"),
        ("Bearer " + "é" * 100, 401, "invalid_token"),
    ],
)
def test_garbage_bearer_at_userinfo(
    http: FlaskClient, authorization: str, status: int, error: str
) -> None:
    response = http.get("/userinfo", headers={"Authorization": authorization})
    json_error(response, status, error)
    assert response.headers["WWW-Authenticate"].startswith(f'Bearer error="{error}"')


def test_alg_none_access_token_with_a_real_jti_is_refused(
    cli_tokens: dict[str, Any], sb: Browser
) -> None:
    """A token re-signed with ``alg: none`` keeps every claim but must not verify."""
    _, payload, _ = cli_tokens["access_token"].split(".")
    unsigned = (
        base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').rstrip(b"=").decode()
        + f".{payload}."
    )
    assert sb.http.post("/introspect", data={"token": unsigned}, auth=WEB).json == {"active": False}
    response = sb.http.get("/userinfo", headers={"Authorization": f"Bearer {unsigned}"})
    json_error(response, 401, "invalid_token")


@pytest.fixture
def sb(sqlite_app: Flask) -> Browser:
    return Browser(sqlite_app)


@pytest.fixture
def cli_tokens(sb: Browser) -> dict[str, Any]:
    return Client(sb).tokens()


# --- a fuzz of the token endpoint form -----------------------------------------------------------

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)
_values = st.one_of(
    _text,
    st.sampled_from(
        [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "bank-cli",
            "bank-web",
            "reports-job",
            "reports-job-secret-for-the-local-sandbox",
            "http://127.0.0.1:8765/callback",
            "openid offline_access",
            "access_token",
            "refresh_token",
        ]
    ),
)
_form = st.lists(st.tuples(st.one_of(st.sampled_from(TOKEN_PARAMS), _text), _values), max_size=8)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(form=_form, with_basic=st.booleans(), path=st.sampled_from(JSON_ENDPOINTS))
def test_fuzzed_forms_never_500(
    any_db_http: FlaskClient, form: list[tuple[str, str]], with_basic: bool, path: str
) -> None:
    from urllib.parse import urlencode

    credentials = base64.b64encode(b"reports-job:reports-job-secret-for-the-local-sandbox").decode()
    headers = {"Authorization": "Basic " + credentials} if with_basic else {}
    response = any_db_http.post(path, data=urlencode(form), content_type=FORM, headers=headers)
    assert response.status_code in (200, 400, 401), response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.json
    assert isinstance(body, dict)
    if response.status_code != 200:
        assert set(body) <= {"error", "error_description", "error_uri"}
        assert body["error"] in {
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "unsupported_token_type",
        }
