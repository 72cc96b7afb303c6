"""Request objects: OIDC Core §6.1 (``request``) and §6.2 (``request_uri``) are refused.

An RP that puts ``acr_values`` (or ``max_age``, or an essential ``acr``) only inside a request
object must never get a silent weaker login: the answer is ``request_not_supported`` /
``request_uri_not_supported``, and discovery says both are unsupported.
"""

from __future__ import annotations

import base64
import json

import pytest
from flask import Flask

from .flow import CLI_REDIRECT, LOA2, Browser, Client, query_of

ISSUER = "http://127.0.0.1:9000"


@pytest.fixture
def cli(sqlite_app: Flask) -> Client:
    return Client(Browser(sqlite_app))


def unsigned_request_object(claims: dict[str, object]) -> str:
    def segment(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return segment({"alg": "none"}) + "." + segment(claims) + "."


def test_acr_values_only_in_a_request_object_is_request_not_supported(cli: Client) -> None:
    cli.sign_in()  # a password session: a silent loa1 code would be possible
    request_object = unsigned_request_object(
        {"acr_values": LOA2, "client_id": "bank-cli", "iss": "bank-cli", "aud": ISSUER}
    )
    response = cli.authorize(request=request_object)
    assert response.status_code == 302
    assert response.location.startswith(CLI_REDIRECT + "?")
    assert query_of(response.location) == {
        "error": "request_not_supported",
        "error_description": "Request objects are not supported: send the parameters in the "
        "query or the form",
        "state": cli.state,
        "iss": ISSUER,
    }


def test_request_uri_is_request_uri_not_supported(cli: Client) -> None:
    for prompt in (None, "none"):
        response = cli.authorize(
            request_uri="https://rp.example/request.jwt",
            prompt=prompt,  # type: ignore[arg-type]
        )
        assert response.status_code == 302
        assert query_of(response.location) == {
            "error": "request_uri_not_supported",
            "error_description": "request_uri is not supported: send the parameters in the "
            "query or the form",
            "state": cli.state,
            "iss": ISSUER,
        }


def test_request_objects_are_refused_by_post_too(cli: Client) -> None:
    response = cli.browser.http.post(
        "/authorize", data=cli.authorize_params(request=unsigned_request_object({}))
    )
    assert query_of(response.location)["error"] == "request_not_supported"


def test_an_empty_request_parameter_is_as_omitted(cli: Client) -> None:
    # RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they were omitted".
    response = cli.authorize(request="", request_uri="")
    assert response.status_code == 303
    assert response.location.startswith("/interaction/")


def test_discovery_says_request_objects_are_not_supported(sqlite_app: Flask) -> None:
    metadata = sqlite_app.test_client().get("/.well-known/openid-configuration").json
    assert metadata is not None
    assert metadata["request_parameter_supported"] is False
    assert metadata["request_uri_parameter_supported"] is False
    assert "request_object_signing_alg_values_supported" not in metadata
