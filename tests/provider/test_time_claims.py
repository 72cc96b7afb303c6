"""Access tokens whose times are no times, or impossible ones, are not in force at the provider.

``/userinfo`` answers them ``401 invalid_token`` (RFC 6750 §3.1) and ``/introspect`` ``active:
false`` (RFC 7662 §2.2) — never a ``200`` with claims, never a ``500``. The tokens are signed with
the provider's own current key and carry the ``jti`` of a grant it really issued, so the signature
and the grant lookup pass and only the claims are under test.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from joserfc import jwt

from provider.tokens import CLOCK_SKEW

from ..hostile import NOT_TIMES, TIME_CLAIMS
from .conftest import T0_EPOCH
from .flow import Browser, Client, claims

WEB = ("bank-web", "bank-web-secret-for-the-local-sandbox")
NOW = T0_EPOCH


@pytest.fixture
def sb(sqlite_app: Flask) -> Browser:
    return Browser(sqlite_app)


@pytest.fixture
def access_claims(sb: Browser) -> dict[str, Any]:
    """The claims of a real access token (a recorded grant, scope openid)."""
    tokens = Client(sb).tokens()
    return claims(sb.app, tokens["access_token"])


def signed(sb: Browser, payload: dict[str, Any]) -> str:
    ring = sb.op.keys.ring()
    header = {"alg": "RS256", "kid": ring.kid, "typ": "at+jwt"}
    return jwt.encode(header, payload, ring.current, algorithms=["RS256"])


def assert_not_in_force(sb: Browser, token: str, case: object) -> None:
    response = sb.http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, (case, response.status_code, response.get_data()[:200])
    assert response.json == {
        "error": "invalid_token",
        "error_description": "The access token is invalid or expired",
    }, case
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"'), case
    response = sb.http.post("/introspect", data={"token": token}, auth=WEB)
    assert (response.status_code, response.json) == (200, {"active": False}), case


def assert_in_force(sb: Browser, token: str, case: object) -> None:
    response = sb.http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, (case, response.json)
    response = sb.http.post("/introspect", data={"token": token}, auth=WEB)
    assert response.json["active"] is True, case  # type: ignore[index]


def test_the_real_token_is_in_force(sb: Browser, access_claims: dict[str, Any]) -> None:
    # The control: re-signed unchanged, the token works; only the changed claim makes it fail.
    assert_in_force(sb, signed(sb, access_claims), "unchanged")
    assert set(access_claims) >= {"exp", "iat", "auth_time"}


@pytest.mark.parametrize("name", TIME_CLAIMS)
def test_a_time_claim_that_is_no_time_is_refused(
    sb: Browser, access_claims: dict[str, Any], name: str
) -> None:
    for value in NOT_TIMES:
        assert_not_in_force(sb, signed(sb, {**access_claims, name: value}), (name, value))


@pytest.mark.parametrize(
    ("changes", "in_force"),
    [
        ({"auth_time": NOW + 3600}, False),  # authenticated an hour from now
        ({"auth_time": NOW + CLOCK_SKEW + 1}, False),
        ({"auth_time": NOW + CLOCK_SKEW}, True),  # within the clock skew
        ({"iat": NOW + 3600, "exp": NOW + 4200}, False),  # issued in the future
        ({"iat": NOW + CLOCK_SKEW + 1}, False),
        ({"nbf": NOW + 3600}, False),  # not valid yet
        ({"nbf": NOW + 5}, True),
        ({"exp": NOW}, False),  # expired this second
        ({"exp": NOW + 10, "iat": NOW + 20}, False),  # issued after it expires
        ({"exp": NOW + 10, "auth_time": NOW + 20}, False),  # authenticated after it expires
        ({"exp": NOW + 10, "nbf": NOW + 20}, False),  # valid from after it expires
        ({"exp": 253_402_300_799, "iat": NOW}, True),  # the year 9999 is a time
        ({"exp": float(NOW + 600), "iat": float(NOW)}, True),  # a NumericDate may be fractional
    ],
)
def test_impossible_or_future_times_are_refused(
    sb: Browser, access_claims: dict[str, Any], changes: dict[str, Any], in_force: bool
) -> None:
    token = signed(sb, {**access_claims, **changes})
    (assert_in_force if in_force else assert_not_in_force)(sb, token, changes)


@pytest.mark.parametrize("name", ["sub", "jti", "client_id"])
def test_a_required_string_claim_of_another_type_is_refused(
    sb: Browser, access_claims: dict[str, Any], name: str
) -> None:
    for value in (None, 1, True, ["x"], {"x": 1}, ""):
        assert_not_in_force(sb, signed(sb, {**access_claims, name: value}), (name, value))
