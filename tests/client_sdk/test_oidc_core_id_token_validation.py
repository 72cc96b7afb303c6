"""OIDC Core §3.1.3.7 ID token validation, plus the step-up checks (acr, auth_time, sub)."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from client_sdk.errors import InvalidIDToken, LevelNotReached, SubjectMismatch
from client_sdk.id_token import UnknownKeyId, validate_id_token
from client_sdk.protocol import Requirement

from ..hostile import NOT_TIMES
from .sdk_fakes import CLIENT_ID, ISSUER, NOW, at_hash, make_id_token

LOA2 = Requirement(("urn:stepup:loa:2",), 300)


def validate(token: str, jwks: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "jwks": jwks,
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "now": NOW,
        "nonce": "n-1",
    }
    args.update(kwargs)
    return validate_id_token(token, **args)


def test_valid_step_up_token_returns_its_claims(signing_key: RSAKey, jwks: dict[str, Any]) -> None:
    token = make_id_token(
        signing_key, acr="urn:stepup:loa:2", amr=["pwd", "otp"], at_hash=at_hash("at-1")
    )
    claims = validate(token, jwks, requirement=LOA2, previous_sub="alice-sub", access_token="at-1")
    assert claims["acr"] == "urn:stepup:loa:2"
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["sub"] == "alice-sub"


def test_signature_by_another_key_is_refused(jwks: dict[str, Any]) -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(InvalidIDToken, match="signature does not verify"):
        validate(make_id_token(other), jwks)


def test_unknown_kid_is_reported_so_the_jwks_can_be_refetched(jwks: dict[str, Any]) -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    with pytest.raises(UnknownKeyId) as caught:
        validate(make_id_token(other), jwks)
    assert caught.value.claim == "kid"


def test_hmac_signed_token_is_refused(jwks: dict[str, Any]) -> None:
    # Algorithm confusion: HS256 with some key must never pass, even if listed as allowed.
    token = jwt.encode({"alg": "HS256"}, {"iss": ISSUER}, OctKey.generate_key(256))
    with pytest.raises(InvalidIDToken, match="signature does not verify"):
        validate(token, jwks, algorithms=("RS256", "HS256"))


def test_unsigned_token_is_refused(jwks: dict[str, Any]) -> None:
    with pytest.raises(InvalidIDToken, match="signature does not verify"):
        validate("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", jwks)


@pytest.mark.parametrize(
    ("overrides", "claim", "message"),
    [
        ({"iss": "https://evil.example"}, "iss", "iss is 'https://evil.example'"),
        ({"aud": "someone-else"}, "aud", "does not contain 'bank-cli'"),
        ({"aud": ["bank-cli", "untrusted"]}, "aud", "audiences this client does not trust"),
        ({"azp": "someone-else"}, "azp", "azp 'someone-else'"),
        ({"exp": NOW - 61}, "exp", "has expired"),
        ({"iat": NOW + 61}, "iat", "issued in the future"),
        ({"exp": None}, "exp", "no numeric exp"),
        ({"nonce": "n-2"}, "nonce", "nonce does not match"),
        ({"nonce": None}, "nonce", "nonce does not match"),
        ({"sub": None}, "sub", "has no sub"),
    ],
)
def test_claim_checks(
    signing_key: RSAKey,
    jwks: dict[str, Any],
    overrides: dict[str, Any],
    claim: str,
    message: str,
) -> None:
    with pytest.raises(InvalidIDToken, match=message) as caught:
        validate(make_id_token(signing_key, **overrides), jwks)
    assert caught.value.claim == claim


def test_exp_within_the_leeway_is_accepted(signing_key: RSAKey, jwks: dict[str, Any]) -> None:
    assert validate(make_id_token(signing_key, exp=NOW - 59), jwks)["exp"] == NOW - 59


def test_acr_not_among_those_requested_means_level_not_reached(
    signing_key: RSAKey, jwks: dict[str, Any]
) -> None:
    with pytest.raises(LevelNotReached) as caught:
        validate(make_id_token(signing_key, acr="urn:stepup:loa:1"), jwks, requirement=LOA2)
    assert caught.value.claim == "acr"
    assert str(caught.value) == (
        "the provider authenticated the user at acr 'urn:stepup:loa:1', not at one of "
        "['urn:stepup:loa:2']"
    )


def test_auth_time_older_than_max_age_plus_leeway_is_refused(
    signing_key: RSAKey, jwks: dict[str, Any]
) -> None:
    token = make_id_token(signing_key, acr="urn:stepup:loa:2", auth_time=NOW - 361)
    with pytest.raises(LevelNotReached, match="361 s ago, more than max_age=300") as caught:
        validate(token, jwks, requirement=LOA2)
    assert caught.value.claim == "auth_time"


def test_auth_time_within_max_age_plus_leeway_is_accepted(
    signing_key: RSAKey, jwks: dict[str, Any]
) -> None:
    token = make_id_token(signing_key, acr="urn:stepup:loa:2", auth_time=NOW - 360)
    assert validate(token, jwks, requirement=LOA2)["auth_time"] == NOW - 360


def test_max_age_requested_but_no_auth_time(signing_key: RSAKey, jwks: dict[str, Any]) -> None:
    token = make_id_token(signing_key, acr="urn:stepup:loa:2", auth_time=None)
    with pytest.raises(LevelNotReached, match="no auth_time"):
        validate(token, jwks, requirement=LOA2)


def test_another_subject_after_step_up_is_refused(
    signing_key: RSAKey, jwks: dict[str, Any]
) -> None:
    token = make_id_token(signing_key, sub="mallory", acr="urn:stepup:loa:2")
    with pytest.raises(SubjectMismatch) as caught:
        validate(token, jwks, requirement=LOA2, previous_sub="alice-sub")
    assert caught.value.claim == "sub"


def test_at_hash_mismatch_is_refused(signing_key: RSAKey, jwks: dict[str, Any]) -> None:
    token = make_id_token(signing_key, at_hash=at_hash("at-1"))
    with pytest.raises(InvalidIDToken, match="at_hash") as caught:
        validate(token, jwks, access_token="at-2")
    assert caught.value.claim == "at_hash"


def test_refreshed_token_skips_level_checks_and_needs_no_nonce(
    signing_key: RSAKey, jwks: dict[str, Any]
) -> None:
    # OIDC Core §12.2: the refreshed token keeps the original auth_time; it is not a new login.
    token = make_id_token(signing_key, nonce=None, auth_time=NOW - 3600)
    claims = validate(
        token, jwks, nonce=None, refreshed=True, previous_sub="alice-sub", requirement=LOA2
    )
    assert claims["auth_time"] == NOW - 3600


def test_refreshed_token_with_another_nonce_is_refused(
    signing_key: RSAKey, jwks: dict[str, Any]
) -> None:
    token = make_id_token(signing_key, nonce="n-other")
    with pytest.raises(InvalidIDToken, match="nonce does not match"):
        validate(token, jwks, nonce="n-1", refreshed=True)


def test_refreshed_token_without_nonce_passes_when_the_original_had_one(
    signing_key: RSAKey, jwks: dict[str, Any]
) -> None:
    token = make_id_token(signing_key, nonce=None)
    assert "nonce" not in validate(token, jwks, nonce="n-1", refreshed=True)


@pytest.mark.parametrize("name", ["exp", "iat", "auth_time"])
def test_a_time_claim_that_is_no_time_is_refused(
    signing_key: RSAKey, jwks: dict[str, Any], name: str
) -> None:
    # RFC 7519 §2 NumericDate. A NaN exp compares false with "now", so the token would never
    # expire; a NaN auth_time would pass any max_age check.
    for value in NOT_TIMES:
        if value is None:
            continue  # make_id_token drops a claim given None: "missing" is tested above
        with pytest.raises(InvalidIDToken, match=f"{name} is not a valid time") as caught:
            validate(make_id_token(signing_key, **{name: value}), jwks, requirement=LOA2)
        assert caught.value.claim == name, value


def test_an_authentication_in_the_future_is_refused(
    signing_key: RSAKey, jwks: dict[str, Any]
) -> None:
    with pytest.raises(InvalidIDToken, match="authenticated in the future") as caught:
        validate(make_id_token(signing_key, acr="urn:stepup:loa:2", auth_time=NOW + 61), jwks,
                 requirement=LOA2)  # fmt: skip
    assert caught.value.claim == "auth_time"
    token = make_id_token(signing_key, acr="urn:stepup:loa:2", auth_time=NOW + 60)
    assert validate(token, jwks, requirement=LOA2)["auth_time"] == NOW + 60  # the leeway
