"""RFC 9068 §4: what makes a JWT access token acceptable, one rule per test."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import OctKey

from resource_api import ConfigurationError, InvalidToken, JwtAccessTokenValidator
from resource_api.validation import FetchError, http_fetch

from .support import AUDIENCE, DROP, ISSUER, Clock, FakeIssuer, ec_key, rsa_key


def b64(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_good_token_gives_its_claims(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator
) -> None:
    claims = validator.validate(issuer.mint(sub="bob"))
    assert claims["sub"] == "bob"
    assert claims["acr"] == "urn:stepup:loa:2"


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT"])
def test_typ_at_jwt_is_accepted(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator, typ: str
) -> None:
    assert validator.validate(issuer.mint(header={"typ": typ}))["iss"] == ISSUER


@pytest.mark.parametrize("typ", ["JWT", "id_token+jwt", DROP])
def test_other_typ_is_refused_an_id_token_is_not_an_access_token(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator, typ: Any
) -> None:
    with pytest.raises(InvalidToken, match="typ must be at\\+jwt"):
        validator.validate(issuer.mint(header={"typ": typ}))


def test_a_typ_that_is_not_a_string_is_refused(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator
) -> None:
    _, payload, sig = issuer.mint().split(".")
    with pytest.raises(InvalidToken, match="typ must be at\\+jwt"):
        validator.validate(b64({"alg": "RS256", "typ": 7, "kid": "k1"}) + "." + payload + "." + sig)


def test_alg_none_is_refused(issuer: FakeIssuer, validator: JwtAccessTokenValidator) -> None:
    token = b64({"alg": "none", "typ": "at+jwt", "kid": "k1"}) + "." + b64(issuer.claims()) + "."
    with pytest.raises(InvalidToken, match="'none' is not accepted"):
        validator.validate(token)


def test_hmac_signed_with_the_public_key_is_refused(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator
) -> None:
    # The algorithm-confusion forgery: HS256 keyed with the provider's public key.
    secret = OctKey.import_key(json.dumps(issuer.jwks()["keys"][0]).encode())
    token = jws.serialize_compact(
        {"alg": "HS256", "typ": "at+jwt", "kid": "k1"}, json.dumps(issuer.claims()), secret,
        algorithms=["HS256"],
    )  # fmt: skip
    with pytest.raises(InvalidToken, match="'HS256' is not accepted"):
        validator.validate(token)


@pytest.mark.parametrize("algs", [["HS256"], ["none"], ["RS256", "HS512"], []])
def test_the_allow_list_cannot_hold_symmetric_algorithms(algs: list[str]) -> None:
    with pytest.raises(ConfigurationError):
        JwtAccessTokenValidator(ISSUER, AUDIENCE, algorithms=algs, fetch=lambda url: {})


def test_alg_not_in_the_configured_list_is_refused(issuer: FakeIssuer, clock: Clock) -> None:
    only_es = JwtAccessTokenValidator(
        ISSUER, AUDIENCE, fetch=issuer.fetch, clock=clock, algorithms=["ES256"]
    )
    with pytest.raises(InvalidToken, match="'RS256' is not accepted"):
        only_es.validate(issuer.mint())


def test_an_ec_key_from_the_jwks_verifies_es256(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator
) -> None:
    ec = ec_key("ec1")
    issuer.published.append(ec.as_dict(private=False, use="sig", alg="ES256"))
    assert validator.validate(issuer.mint(header={"alg": "ES256"}, key=ec))["sub"] == "alice"


def test_a_key_published_for_another_alg_is_not_used(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator
) -> None:
    with pytest.raises(InvalidToken, match="signature"):
        validator.validate(issuer.mint(header={"alg": "PS256"}))  # k1 says alg RS256


def test_a_bad_signature_is_refused(issuer: FakeIssuer, validator: JwtAccessTokenValidator) -> None:
    h, _, s = issuer.mint().split(".")
    forged = h + "." + b64(issuer.claims(sub="mallory")) + "." + s
    with pytest.raises(InvalidToken, match="signature is not valid"):
        validator.validate(forged)


def test_a_token_signed_by_a_stranger_with_our_kid_is_refused(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator
) -> None:
    stranger = rsa_key("stranger")
    token = issuer.mint(key=stranger, header={"kid": "k1"})
    with pytest.raises(InvalidToken, match="signature is not valid"):
        validator.validate(token)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"iss": "https://evil.example"}, "another issuer"),
        ({"iss": ISSUER + "/"}, "another issuer"),
        ({"iss": DROP}, "another issuer"),
        ({"aud": "https://other.example/api"}, "aud"),
        ({"aud": ["https://other.example/api"]}, "aud"),
        ({"aud": DROP}, "aud"),
        ({"exp": DROP}, "no exp"),
        ({"exp": "soon"}, "exp claim is not a valid time"),
        ({"exp": True}, "exp claim is not a valid time"),
        ({"iat": DROP}, "no iat"),
        ({"sub": DROP}, "no sub"),
        ({"sub": 5}, "no sub"),
        ({"client_id": DROP}, "no client_id"),
        ({"jti": DROP}, "no jti"),
    ],
)
def test_claims_that_fail(
    issuer: FakeIssuer,
    validator: JwtAccessTokenValidator,
    overrides: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(InvalidToken, match=message):
        validator.validate(issuer.mint(**overrides))


def test_aud_may_be_a_list_containing_us(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator
) -> None:
    assert validator.validate(issuer.mint(aud=["x", AUDIENCE]))["aud"] == ["x", AUDIENCE]


def test_exp_with_leeway(issuer: FakeIssuer, clock: Clock) -> None:
    v = JwtAccessTokenValidator(ISSUER, AUDIENCE, fetch=issuer.fetch, clock=clock, leeway=30)
    token = issuer.mint(exp=int(clock()) + 60)
    clock.advance(89)
    assert v.validate(token)["sub"] == "alice"  # cached, still inside exp + leeway
    clock.advance(1)
    with pytest.raises(InvalidToken, match="expired"):
        v.validate(token)
    fresh_validator = JwtAccessTokenValidator(ISSUER, AUDIENCE, fetch=issuer.fetch, clock=clock)
    with pytest.raises(InvalidToken, match="expired"):
        fresh_validator.validate(token)  # and without the cache


def test_nbf_and_iat_in_the_future(issuer: FakeIssuer, validator: JwtAccessTokenValidator) -> None:
    now = int(issuer.clock())
    with pytest.raises(InvalidToken, match="nbf"):
        validator.validate(issuer.mint(nbf=now + 31))
    assert validator.validate(issuer.mint(nbf=now + 30))["sub"] == "alice"  # leeway
    with pytest.raises(InvalidToken, match="iat"):
        validator.validate(issuer.mint(iat=now + 31))


def test_a_token_not_yet_valid_is_not_cached(issuer: FakeIssuer, clock: Clock) -> None:
    v = JwtAccessTokenValidator(ISSUER, AUDIENCE, fetch=issuer.fetch, clock=clock, leeway=0)
    token = issuer.mint(nbf=int(clock()))
    clock.advance(-1)
    with pytest.raises(InvalidToken, match="nbf"):
        v.validate(token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        b64(b"not json") + ".e30.c2ln",
        b64([1, 2]) + ".e30.c2ln",
        b64({"typ": "at+jwt"}) + ".e30.c2ln",
        b64({"alg": "RS256", "typ": "at+jwt", "kid": 5}) + ".e30.c2ln",
        b64({"alg": "RS256", "typ": "at+jwt", "kid": "k1", "crit": ["exp"], "exp": 1})
        + ".e30.c2ln",
        "a" * 20000,
    ],
)
def test_malformed_tokens_are_invalid_never_a_crash(
    validator: JwtAccessTokenValidator, token: str
) -> None:
    with pytest.raises(InvalidToken):
        validator.validate(token)


def test_encrypted_tokens_are_refused_plainly(validator: JwtAccessTokenValidator) -> None:
    with pytest.raises(InvalidToken, match="JWE"):
        validator.validate("a.b.c.d.e")


def test_a_payload_that_is_not_an_object_is_invalid(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator
) -> None:
    token = jws.serialize_compact({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}, "[1]",
                                  issuer.signing)  # fmt: skip
    with pytest.raises(InvalidToken, match="not a JSON object"):
        validator.validate(token)


def test_verified_claims_are_cached_by_token_hash(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator
) -> None:
    token = issuer.mint()
    first = validator.validate(token)
    assert validator.validate(token) is first
    assert all(isinstance(k, bytes) and len(k) == 32 for k in validator._cache)
    assert token.encode() not in validator._cache


def test_the_cache_is_bounded(issuer: FakeIssuer, clock: Clock) -> None:
    v = JwtAccessTokenValidator(ISSUER, AUDIENCE, fetch=issuer.fetch, clock=clock, cache_size=3)
    for _ in range(10):
        v.validate(issuer.mint())
    assert len(v._cache) == 3


def test_http_fetch_reports_failures_as_fetch_error() -> None:
    with pytest.raises(FetchError):
        http_fetch(timeout=0.5)("http://127.0.0.1:9/nothing-listens-here")
