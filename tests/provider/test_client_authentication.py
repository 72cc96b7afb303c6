"""Client authentication at /token, /introspect and /revoke: RFC 6749 §2.3, §2.3.1, §5.2.

- §2.3.1: in HTTP Basic, client_id and secret are each application/x-www-form-urlencoded before
  base64; a secret with a space, ``+``, ``:``, ``%`` or non-ASCII characters must authenticate
  when sent that way.
- §2.3: "The client MUST NOT use more than one authentication method in each request" — Basic
  with a body ``client_secret``, or with a body ``client_id`` other than Basic's, is
  ``invalid_request`` at every endpoint that authenticates clients.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from urllib.parse import quote, quote_plus

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun.api import FrozenDateTimeFactory
from werkzeug.test import TestResponse

from provider import create_app
from provider.client_auth import basic_credentials
from stepup.config import ClientConfig, StepupConfig

# Every character RFC 6749 §2.3.1 form-encodes, and some it does not.
ODD_SECRET = "a b+c:d%e/f?g&h=i#j~k'é€😀 padded-to-be-long-enough"
ODD_ID = "odd client:1"
JOB = ("reports-job", "reports-job-secret-for-the-local-sandbox")
WEB = ("bank-web", "bank-web-secret-for-the-local-sandbox")
ENDPOINTS = ("/token", "/introspect", "/revoke")


@pytest.fixture
def http(config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory) -> FlaskClient:
    odd = ClientConfig(
        client_id=ODD_ID,
        client_secret=ODD_SECRET,
        grant_types=("client_credentials",),
        scope="accounts:read",
    )
    config = replace(config, clients=(*config.clients, odd))
    app: Flask = create_app(config, database_url=sqlite_url)
    return app.test_client()


def form_encoded_basic(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1 exactly: form-encode each part (space as '+'), then RFC 7617."""
    pair = f"{quote_plus(client_id, safe='')}:{quote_plus(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("ascii")).decode("ascii")


def raw_basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")


def body(response: TestResponse) -> dict[str, object]:
    data = response.get_json()
    assert isinstance(data, dict)
    return data


def test_form_encoding_is_what_the_odd_secret_needs() -> None:
    """The test secret really exercises §2.3.1: its form encoding differs from a plain
    percent-encoding (the space) and from the raw value ('+', ':', '%', non-ASCII)."""
    encoded = quote_plus(ODD_SECRET, safe="")
    assert encoded != quote(ODD_SECRET, safe="")
    assert encoded.startswith("a+b%2Bc%3Ad%25e%2Ff")
    assert "%C3%A9" in encoded


# --- RFC 6749 §2.3.1: form-encoded HTTP Basic ----------------------------------------------------


def test_form_encoded_basic_authenticates_at_the_token_endpoint(http: FlaskClient) -> None:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": form_encoded_basic(ODD_ID, ODD_SECRET)},
    )
    assert response.status_code == 200, response.json
    assert (body(response)["token_type"], body(response)["scope"]) == ("Bearer", "accounts:read")


def test_form_encoded_basic_authenticates_at_introspection_and_revocation(
    http: FlaskClient,
) -> None:
    auth = {"Authorization": form_encoded_basic(ODD_ID, ODD_SECRET)}
    token = body(http.post("/token", data={"grant_type": "client_credentials"}, headers=auth))
    introspected = http.post("/introspect", data={"token": token["access_token"]}, headers=auth)
    assert introspected.status_code == 200
    assert (body(introspected)["active"], body(introspected)["client_id"]) == (True, ODD_ID)
    revoked = http.post("/revoke", data={"token": token["access_token"]}, headers=auth)
    assert revoked.status_code == 200
    again = http.post("/introspect", data={"token": token["access_token"]}, headers=auth)
    assert body(again) == {"active": False}


def test_the_same_secret_in_the_body_authenticates(http: FlaskClient) -> None:
    """client_secret_post: the form body is decoded by the form parser, nothing more to do."""
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": ODD_ID, "client_secret": ODD_SECRET},
    )
    assert response.status_code == 200, response.json


def test_raw_basic_still_authenticates(http: FlaskClient) -> None:
    """Many client libraries do not form-encode; their raw credentials are the second reading."""
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": raw_basic("reports-job", JOB[1])},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "wrong",
    [
        ODD_SECRET.replace(" ", "+"),  # the raw '+' of a form-encoded space, not decoded
        ODD_SECRET.replace("é", "e"),
        ODD_SECRET[:-1],
    ],
)
def test_a_near_miss_is_still_invalid_client(http: FlaskClient, wrong: str) -> None:
    for authorization in (form_encoded_basic(ODD_ID, wrong), raw_basic("x", wrong)):
        response = http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": authorization},
        )
        assert (response.status_code, body(response)["error"]) == (401, "invalid_client")


def test_basic_readings() -> None:
    token = base64.b64encode(b"a%3Ab:c+d%25").decode()
    assert basic_credentials(token) == [("a:b", "c d%"), ("a%3Ab", "c+d%25")]
    # Nothing to decode: one reading.
    assert basic_credentials(base64.b64encode(b"id:secret").decode()) == [("id", "secret")]
    # Percent-escapes that are not UTF-8 leave only the raw reading.
    assert basic_credentials(base64.b64encode(b"id:%ff").decode()) == [("id", "%ff")]
    for malformed in ("!!!!", base64.b64encode(b"no-colon").decode(), "", "Zm9v:"):
        assert basic_credentials(malformed) == []
    assert basic_credentials(base64.b64encode(b":secret").decode()) == []


# --- RFC 6749 §2.3: one authentication method per request -----------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_basic_and_a_body_secret_is_invalid_request(http: FlaskClient, path: str) -> None:
    response = http.post(
        path,
        data={
            "grant_type": "client_credentials",
            "token": "x",
            "client_id": JOB[0],
            "client_secret": JOB[1],
        },
        auth=JOB,
    )
    assert (response.status_code, body(response)["error"]) == (400, "invalid_request")
    assert body(response)["error_description"] == (
        "Authenticate the client one way only: HTTP Basic or client_secret in the body."
    )
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_basic_and_another_body_client_id_is_invalid_request(http: FlaskClient, path: str) -> None:
    response = http.post(
        path,
        data={"grant_type": "client_credentials", "token": "x", "client_id": "bank-web"},
        auth=JOB,
    )
    assert (response.status_code, body(response)["error"]) == (400, "invalid_request")
    assert body(response)["error_description"] == (
        "The client_id in the body is not the one in HTTP Basic."
    )


@pytest.mark.parametrize("path", ENDPOINTS)
def test_basic_with_its_own_client_id_in_the_body_is_one_method(
    http: FlaskClient, path: str
) -> None:
    """RFC 6749 §4.1.3 has client_id in the body of a code exchange; the same id is no second
    method. Revocation and introspection answer 200 for an unknown token."""
    response = http.post(
        path, data={"grant_type": "client_credentials", "token": "x", "client_id": JOB[0]}, auth=JOB
    )
    assert response.status_code == 200, response.json


def test_basic_with_its_form_decoded_client_id_in_the_body_is_one_method(
    http: FlaskClient,
) -> None:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": ODD_ID},
        headers={"Authorization": form_encoded_basic(ODD_ID, ODD_SECRET)},
    )
    assert response.status_code == 200, response.json


def test_a_body_secret_with_a_broken_basic_header_is_invalid_request(http: FlaskClient) -> None:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": JOB[0], "client_secret": JOB[1]},
        headers={"Authorization": "Basic !!!!"},
    )
    assert (response.status_code, body(response)["error"]) == (400, "invalid_request")


def test_a_bearer_header_is_not_a_client_authentication_method(http: FlaskClient) -> None:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": WEB[0], "client_secret": WEB[1]},
        headers={"Authorization": "Bearer something"},
    )
    # bank-web is not registered for client_credentials: past authentication, to the grant check.
    assert (response.status_code, body(response)["error"]) == (400, "unauthorized_client")
