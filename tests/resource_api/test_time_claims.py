"""Time claims that are no time, or impossible ones, make an access token ``invalid_token``.

RFC 7519 §2 NumericDate; RFC 9068 §4 (``exp``, with "some small leeway"); RFC 7519 §4.1.5
(``nbf``); RFC 9470 §6.1 (``auth_time`` tells the API when the user authenticated). NaN, Infinity,
booleans, strings, huge numbers and dates after the year 9999 in ``exp``, ``nbf``, ``iat`` or
``auth_time``, a time in the future beyond the leeway, or one after the token's own ``exp``: the API
answers ``401`` with ``error="invalid_token"`` (RFC 6750 §3.1) — never a pass, never a ``500``,
never a step-up challenge (re-authenticating cannot fix a malformed token). The tokens are signed
with the key the API trusts, so only the claims are under test. Introspection answers get the same
checks.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from resource_api import IntrospectionValidator, InvalidToken, JwtAccessTokenValidator

from ..hostile import NOT_TIMES, TIME_CLAIMS
from .support import AUDIENCE, ISSUER, Clock, FakeIssuer, bearer
from .test_introspection_and_public_names import FakeIntrospection

LEEWAY = 30  # the validator's default


def assert_invalid_token(client: FlaskClient, token: str, case: object) -> None:
    for method, path, body in (
        ("GET", "/accounts", None),
        ("POST", "/transfers", {"from_account": "a", "to_account": "b", "amount": "5000.00"}),
    ):
        response = client.open(path, method=method, json=body, headers=bearer(token))
        assert response.status_code == 401, (case, path, response.status_code, response.json)
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer error="invalid_token"'), (case, challenge)
        assert response.json["error"] == "invalid_token", case  # type: ignore[index]


@pytest.mark.parametrize("name", TIME_CLAIMS)
def test_a_time_claim_that_is_no_time_is_invalid_token(
    client: FlaskClient, issuer: FakeIssuer, name: str
) -> None:
    for value in NOT_TIMES:
        assert_invalid_token(client, issuer.mint(**{name: value}), (name, value))


def test_the_same_token_with_sensible_times_passes(client: FlaskClient, issuer: FakeIssuer) -> None:
    # The control for the test above: only the changed claim makes the token fail.
    assert client.get("/accounts", headers=bearer(issuer.mint())).status_code == 200


@pytest.mark.parametrize(
    ("changes", "valid"),
    [
        ({"auth_time": +3600}, False),  # the user authenticated an hour from now
        ({"auth_time": +LEEWAY + 1}, False),
        ({"auth_time": +LEEWAY}, True),  # within the leeway (and not after iat + leeway)
        ({"auth_time": +25, "iat": -10}, False),  # authenticated after the token was issued
        ({"exp": +10, "iat": +20}, False),  # issued after it expires
        ({"exp": +10, "nbf": +20}, False),  # valid only after it expires
        ({"exp": +10, "auth_time": +20, "iat": +5}, False),  # authenticated after it expires
        ({"exp": 253_402_300_799 - 1_700_000_000}, True),  # the year 9999 is a time
        ({"exp": +600.5, "iat": -0.25, "auth_time": -10.75}, True),  # fractions are times
    ],
)
def test_future_and_impossible_times_are_invalid_token(
    client: FlaskClient, issuer: FakeIssuer, changes: dict[str, float], valid: bool
) -> None:
    now = issuer.clock()
    token = issuer.mint(**{name: now + delta for name, delta in changes.items()})
    if valid:
        assert client.get("/accounts", headers=bearer(token)).status_code == 200, changes
    else:
        assert_invalid_token(client, token, changes)


@pytest.mark.parametrize("name", TIME_CLAIMS)
def test_the_validator_raises_invalid_token_naming_the_claim(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator, name: str
) -> None:
    for value in NOT_TIMES:
        with pytest.raises(InvalidToken, match=f"{name} claim is not a valid time"):
            validator.validate(issuer.mint(**{name: value}))


@pytest.mark.parametrize("name", TIME_CLAIMS)
def test_introspection_answers_with_no_time_are_invalid_token(
    issuer: FakeIssuer, clock: Clock, name: str
) -> None:
    for value in NOT_TIMES:
        answer: dict[str, Any] = {"active": True, **issuer.claims(), name: value}
        v = IntrospectionValidator(ISSUER, AUDIENCE, client_id="bank-api", client_secret="s",
                                   fetch=issuer.fetch, post=FakeIntrospection(answer),
                                   clock=clock)  # fmt: skip
        with pytest.raises(InvalidToken, match=f"{name} claim is not a valid time"):
            v.validate("opaque")


def test_an_introspection_answer_authenticated_in_the_future_is_invalid_token(
    issuer: FakeIssuer, clock: Clock
) -> None:
    answer = {"active": True, **issuer.claims(auth_time=int(clock()) + 3600)}
    v = IntrospectionValidator(ISSUER, AUDIENCE, client_id="bank-api", client_secret="s",
                               fetch=issuer.fetch, post=FakeIntrospection(answer),
                               clock=clock)  # fmt: skip
    with pytest.raises(InvalidToken, match="authenticated in the future"):
        v.validate("opaque")
