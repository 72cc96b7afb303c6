"""RFC 6750 §2-3 through the Flask extension: where the token may be, and each error response."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from resource_api import JwtAccessTokenValidator
from resource_api.bearer import is_b64token

from .support import DROP, FakeIssuer, bearer, challenge_params

METADATA = "http://localhost/.well-known/oauth-protected-resource"


def assert_error(response: Any, status: int, error: str) -> dict[str, str]:
    assert response.status_code == status
    params = challenge_params(response)
    assert params["error"] == error
    assert response.json["error"] == error
    assert response.json["error_description"] == params["error_description"]
    assert response.headers["Cache-Control"] == "no-store"
    return params


def test_no_token_is_401_with_a_bare_challenge(client: FlaskClient) -> None:
    response = client.get("/accounts")
    assert response.status_code == 401
    # RFC 6750 §3: no error code; RFC 9728 §5.1: where the resource's metadata is.
    assert response.headers["WWW-Authenticate"] == f'Bearer resource_metadata="{METADATA}"'
    assert challenge_params(response) == {"resource_metadata": METADATA}
    assert "error" not in response.json


def test_another_scheme_counts_as_no_credentials(client: FlaskClient) -> None:
    response = client.get("/accounts", headers={"Authorization": "Basic YWxpY2U6cHc="})
    assert response.status_code == 401
    assert challenge_params(response) == {"resource_metadata": METADATA}


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer a\tb",
        "Bearer tok=en",
        "Bearer tok@en",
        "Bearer ä",
        'Bearer "quoted"',
        "Bearer a, Bearer b",
        "Basic YWxpY2U6cHc=, Bearer abc",
        "=Bearer abc",
    ],
)
def test_malformed_authorization_is_400_invalid_request(client: FlaskClient, header: str) -> None:
    assert_error(client.get("/accounts", headers={"Authorization": header}), 400, "invalid_request")


def test_two_authorization_headers_are_400(client: FlaskClient, issuer: FakeIssuer) -> None:
    t = issuer.mint()
    headers = [("Authorization", f"Bearer {t}"), ("Authorization", f"Bearer {t}")]
    assert_error(client.get("/accounts", headers=headers), 400, "invalid_request")


def test_token_in_query_and_header_is_400(client: FlaskClient, issuer: FakeIssuer) -> None:
    t = issuer.mint()
    params = assert_error(
        client.get(f"/accounts?access_token={t}", headers=bearer(t)), 400, "invalid_request"
    )
    assert "one way only" in params["error_description"]


def test_token_in_query_only_is_400(client: FlaskClient, issuer: FakeIssuer) -> None:
    params = assert_error(
        client.get(f"/accounts?access_token={issuer.mint()}"), 400, "invalid_request"
    )
    assert "Authorization header" in params["error_description"]


def test_token_in_form_body_and_header_is_400(client: FlaskClient, issuer: FakeIssuer) -> None:
    t = issuer.mint()
    response = client.post("/transfers", data={"access_token": t}, headers=bearer(t))
    assert_error(response, 400, "invalid_request")


def test_token_in_form_body_only_is_400(client: FlaskClient, issuer: FakeIssuer) -> None:
    assert_error(
        client.post("/transfers", data={"access_token": issuer.mint()}), 400, "invalid_request"
    )


def test_bearer_scheme_is_case_insensitive(client: FlaskClient, issuer: FakeIssuer) -> None:
    response = client.get("/accounts", headers={"Authorization": f"bEaReR {issuer.mint()}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "make",
    [
        lambda i: "not-a-jwt",
        lambda i: i.mint(exp=int(i.clock()) - 3600),
        lambda i: i.mint(aud="https://other.example"),
        lambda i: i.mint(iss="https://evil.example"),
        lambda i: i.mint(header={"typ": "JWT"}),
        lambda i: i.mint(sub=DROP),
    ],
    ids=["garbage", "expired", "audience", "issuer", "id-token-typ", "no-sub"],
)
def test_bad_or_expired_token_is_401_invalid_token(
    client: FlaskClient, issuer: FakeIssuer, make: Any
) -> None:
    assert_error(client.get("/accounts", headers=bearer(make(issuer))), 401, "invalid_token")


def test_provider_unreachable_and_nothing_cached_is_503_not_401(
    client: FlaskClient, issuer: FakeIssuer
) -> None:
    issuer.down = True
    response = client.get("/accounts", headers=bearer(issuer.mint()))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.json["error"] == "temporarily_unavailable"
    assert "WWW-Authenticate" not in response.headers


def test_provider_down_after_keys_cached_still_serves(
    client: FlaskClient, issuer: FakeIssuer, validator: JwtAccessTokenValidator
) -> None:
    assert client.get("/accounts", headers=bearer(issuer.mint())).status_code == 200
    issuer.down = True
    issuer.clock.advance(7200)
    assert client.get("/accounts", headers=bearer(issuer.mint(sub="carol"))).status_code == 200


def test_unknown_path_and_wrong_method_are_plain_404_405(client: FlaskClient) -> None:
    assert client.get("/nope").status_code == 404
    response = client.delete("/accounts")
    assert response.status_code == 405
    assert response.json["error"] == "method_not_allowed"


def test_health_is_public(client: FlaskClient) -> None:
    assert client.get("/health").json == {"status": "ok"}


_B64TOKEN_ABNF = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("aZ09-._~+/= \t,\"'@ä\x00"), max_size=12) | st.text())
def test_is_b64token_is_the_rfc_6750_grammar(value: str) -> None:
    # RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    assert is_b64token(value) is (_B64TOKEN_ABNF.fullmatch(value) is not None)


@pytest.mark.parametrize("value", ["a", "a=", "a==", "A.b-c_d~e+f/g=", "x" * 4000])
def test_is_b64token_accepts(value: str) -> None:
    assert is_b64token(value)


@pytest.mark.parametrize("value", ["", "=", "==a", "a=b", "a b", "a\n", "ä", "a\x00", "K\u212a"])
def test_is_b64token_refuses(value: str) -> None:
    assert not is_b64token(value)
