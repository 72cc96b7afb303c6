"""RFC 9449 §4: making a DPoP proof and checking one — every check of §4.3 that needs no state,
each refused with a description that names it. (Replay and nonces: the provider's and the resource
servers' tests.)"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, RSAKey

from client_sdk.dpop import DPoPKey, access_token_hash, htu_of, jwk_thumbprint
from client_sdk.dpop_check import Nonces, ProofChecker, check_binding
from client_sdk.errors import InvalidDPoPProof, StepUpError

NOW = 1_800_000_000
URL = "https://api.example/accounts"
TOKEN = "eyJ.a-token.sig"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(key: Any, header: dict[str, Any], claims: dict[str, Any], alg: str = "ES256") -> str:
    """A proof with any header and claims, signed by ``key``."""
    return jws.serialize_compact(header, json.dumps(claims), key, algorithms=[alg])


def good_claims(**changes: Any) -> dict[str, Any]:
    claims = {"jti": "j-1", "htm": "GET", "htu": URL, "iat": NOW, "ath": access_token_hash(TOKEN)}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    return DPoPKey.generate()


def header_of(key: DPoPKey, **changes: Any) -> dict[str, Any]:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(key.public_jwk)}
    header.update(changes)
    return {k: v for k, v in header.items() if v is not None}


def check(proof: str, **kw: Any) -> Any:
    args: dict[str, Any] = {"method": "GET", "url": URL, "now": NOW, "access_token": TOKEN}
    args.update(kw)
    return ProofChecker().check(proof, **args)


def refused(proof: str, **kw: Any) -> str:
    with pytest.raises(InvalidDPoPProof) as caught:
        check(proof, **kw)
    return str(caught.value)


# --- what a good proof is ------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "PS256", "RS256", "Ed25519"])
def test_a_proof_the_sdk_signs_passes_and_names_its_key(alg: str) -> None:
    key = DPoPKey.generate(alg)
    proof = key.proof("GET", URL + "?page=2#top", now=NOW, access_token=TOKEN, nonce="n-1")
    checked = check(proof)
    assert checked.jkt == key.jkt == key.key.thumbprint()  # joserfc's RFC 7638 thumbprint agrees
    assert (checked.htm, checked.htu, checked.iat, checked.nonce) == ("GET", URL, NOW, "n-1")
    assert checked.expires_at == NOW + 60 + 30


def test_the_proof_header_and_claims_are_those_of_rfc9449_section_4_2(key: DPoPKey) -> None:
    proof = key.proof("post", "https://AS.example:443/token?x=1", now=NOW + 0.9)
    header = json.loads(base64.urlsafe_b64decode(proof.split(".")[0] + "=="))
    claims = json.loads(base64.urlsafe_b64decode(proof.split(".")[1] + "=="))
    assert header == {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(key.public_jwk)}
    assert "d" not in header["jwk"]
    assert set(claims) == {"jti", "htm", "htu", "iat"}
    assert claims["htm"] == "POST"
    assert claims["htu"] == "https://as.example/token"
    assert claims["iat"] == NOW
    assert len(base64.urlsafe_b64decode(claims["jti"] + "==")) == 16
    payloads = {key.proof("GET", URL, now=NOW).split(".")[1] for _ in range(2)}
    assert len(payloads) == 2  # a new jti each time


def test_the_rfc7638_example_thumbprint() -> None:
    # RFC 7638 §3.1: the example RSA key and its thumbprint.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6t"
        "Soc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQ"
        "R0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWh"
        "AI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_ath_is_the_base64url_sha256_of_the_token() -> None:
    assert access_token_hash("abc") == b64(hashlib.sha256(b"abc").digest())


@pytest.mark.parametrize(
    ("url", "htu"),
    [
        ("HTTPS://API.Example:443/a?b=c#d", "https://api.example/a"),
        ("http://api.example:80", "http://api.example/"),
        ("http://api.example:8080/x%7ey/%2f", "http://api.example:8080/x~y/%2F"),
        ("http://[::1]:9000/t", "http://[::1]:9000/t"),
    ],
)
def test_htu_is_normalised_as_rfc3986_section_6_2_2_and_6_2_3_say(url: str, htu: str) -> None:
    assert htu_of(url) == htu


@pytest.mark.parametrize("url", ["ftp://x/y", "/relative", "https://user:pw@host/", "http://[::1"])
def test_htu_of_something_that_is_no_http_uri_is_a_value_error(url: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any message
        htu_of(url)


def test_a_private_key_round_trips_through_its_jwk(key: DPoPKey) -> None:
    again = DPoPKey.from_private_jwk(key.private_jwk())
    assert again.jkt == key.jkt
    with pytest.raises(ValueError, match="private"):
        DPoPKey.from_private_jwk(dict(key.public_jwk))


def test_the_error_is_the_sdks_and_a_value_error() -> None:
    assert issubclass(InvalidDPoPProof, StepUpError)
    assert issubclass(InvalidDPoPProof, ValueError)


# --- every refusal of §4.3 -----------------------------------------------------------------------


def test_wrong_method_htm(key: DPoPKey) -> None:
    assert "htm" in refused(key.proof("POST", URL, now=NOW, access_token=TOKEN))
    # RFC 9110 §9.1: methods are case-sensitive.
    proof = forge(key.key, header_of(key), good_claims(htm="get"))
    assert "htm" in refused(proof)


@pytest.mark.parametrize(
    "url", ["https://api.example/transfers", "http://api.example/accounts",
            "https://api.example:8443/accounts", "https://evil.example/accounts"],
)  # fmt: skip
def test_wrong_uri_htu(key: DPoPKey, url: str) -> None:
    assert "htu" in refused(key.proof("GET", url, now=NOW, access_token=TOKEN))


def test_htu_that_is_no_uri_is_refused_not_an_error(key: DPoPKey) -> None:
    assert "htu" in refused(forge(key.key, header_of(key), good_claims(htu="http://[::1")))


def test_stale_iat(key: DPoPKey) -> None:
    assert check(key.proof("GET", URL, now=NOW - 90, access_token=TOKEN)).iat == NOW - 90
    assert "too old" in refused(key.proof("GET", URL, now=NOW - 91, access_token=TOKEN))


def test_future_iat(key: DPoPKey) -> None:
    assert check(key.proof("GET", URL, now=NOW + 30, access_token=TOKEN)).iat == NOW + 30
    assert "future" in refused(key.proof("GET", URL, now=NOW + 31, access_token=TOKEN))


@pytest.mark.parametrize("iat", ["1800000000", None, True, float("nan"), float("inf"), [NOW]])
def test_iat_that_is_not_a_number_of_seconds(key: DPoPKey, iat: Any) -> None:
    # json.dumps writes NaN and Infinity as bare words that Python's json.loads reads back.
    assert "iat" in refused(forge(key.key, header_of(key), good_claims(iat=iat)))


def test_wrong_ath(key: DPoPKey) -> None:
    assert "ath" in refused(key.proof("GET", URL, now=NOW, access_token="another-token"))
    assert "ath" in refused(key.proof("GET", URL, now=NOW))  # no ath at all


def test_a_token_endpoint_proof_needs_no_ath(key: DPoPKey) -> None:
    assert check(key.proof("GET", URL, now=NOW), access_token=None).jkt == key.jkt


def test_jkt_mismatch_with_the_token(key: DPoPKey) -> None:
    proof = check(key.proof("GET", URL, now=NOW, access_token=TOKEN))
    check_binding({"cnf": {"jkt": key.jkt}}, proof)
    with pytest.raises(InvalidDPoPProof, match="another key"):
        check_binding({"cnf": {"jkt": DPoPKey.generate().jkt}}, proof)
    for claims in ({}, {"cnf": "x"}, {"cnf": {"x5t#S256": "y"}}):
        with pytest.raises(InvalidDPoPProof, match="not bound"):
            check_binding(claims, proof)


def test_private_key_in_jwk(key: DPoPKey) -> None:
    header = header_of(key, jwk=key.private_jwk())
    assert "private" in refused(forge(key.key, header, good_claims()))


def test_alg_none() -> None:
    key = DPoPKey.generate()
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": dict(key.public_jwk)}
    proof = b64(json.dumps(header).encode()) + "." + b64(json.dumps(good_claims()).encode()) + "."
    assert "alg" in refused(proof)


def test_alg_hs256_with_a_symmetric_jwk() -> None:
    secret = OctKey.generate_key(256)
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": secret.as_dict(private=False)}
    assert "alg" in refused(forge(secret, header, good_claims(), alg="HS256"))


def test_alg_that_does_not_fit_the_jwk(key: DPoPKey) -> None:
    rsa = RSAKey.generate_key(2048)
    header = {"typ": "dpop+jwt", "alg": "RS256", "jwk": dict(key.public_jwk)}
    assert "not a key for RS256" in refused(forge(rsa, header, good_claims(), alg="RS256"))
    p384 = ECKey.generate_key("P-384")
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": p384.as_dict(private=False)}
    assert "not a key for ES256" in refused(forge(key.key, header, good_claims()))


@pytest.mark.filterwarnings("ignore:Key size should be")
def test_a_short_rsa_key() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = RSAKey.import_key(rsa.generate_private_key(65537, 1024))
    header = {"typ": "dpop+jwt", "alg": "RS256", "jwk": small.as_dict(private=False)}
    assert "2048" in refused(forge(small, header, good_claims(), alg="RS256"))


def test_an_alg_outside_the_servers_list(key: DPoPKey) -> None:
    proof = key.proof("GET", URL, now=NOW, access_token=TOKEN)
    with pytest.raises(InvalidDPoPProof, match="use one of PS256"):
        ProofChecker(algorithms=["PS256"]).check(proof, method="GET", url=URL, now=NOW)
    with pytest.raises(ValueError, match="HS256"):
        ProofChecker(algorithms=["ES256", "HS256"])


def test_signature_by_another_key(key: DPoPKey) -> None:
    other = DPoPKey.generate()
    assert "signature" in refused(forge(other.key, header_of(key), good_claims()))


@pytest.mark.parametrize(
    "changes", [{"typ": "JWT"}, {"typ": None}, {"typ": "application/dpop+jwt"}]
)
def test_wrong_typ(key: DPoPKey, changes: dict[str, Any]) -> None:
    assert "typ" in refused(forge(key.key, header_of(key, **changes), good_claims()))


@pytest.mark.parametrize("missing", ["jti", "htm", "htu"])
def test_a_required_claim_missing(key: DPoPKey, missing: str) -> None:
    proof = forge(key.key, header_of(key), good_claims(**{missing: None}))
    assert missing in refused(proof)


def test_no_jwk_header(key: DPoPKey) -> None:
    assert "jwk" in refused(forge(key.key, header_of(key, jwk=None), good_claims()))


@pytest.mark.parametrize(
    "proof", ["", "a.b", "a.b.c.d.e", "x" * 9000, "!!!.???.", "e30.e30.", "W10.e30.sig"]
)
def test_not_a_single_well_formed_jwt(proof: str) -> None:
    refused(proof)


def test_a_payload_that_is_not_an_object(key: DPoPKey) -> None:
    proof = jws.serialize_compact(header_of(key), "[1,2]", key.key, algorithms=["ES256"])
    assert "JSON object" in refused(proof)


@given(st.text(max_size=300))
def test_any_text_is_refused_with_invalid_dpop_proof_never_another_error(text: str) -> None:
    with pytest.raises(InvalidDPoPProof):
        ProofChecker().check(text, method="GET", url=URL, now=NOW)


# --- nonces --------------------------------------------------------------------------------------


def test_nonces_rotate_by_window_and_are_accepted_in_the_next_one() -> None:
    nonces = Nonces(b"k" * 32, period=300)
    first = nonces.current(NOW)
    assert nonces.current(NOW + 1) == first or NOW // 300 != (NOW + 1) // 300
    start = (NOW // 300) * 300
    n0 = nonces.current(start)
    assert nonces.current(start + 299) == n0
    n1 = nonces.current(start + 300)
    assert n1 != n0
    assert nonces.accepts(n0, start + 300) is True  # the window just gone by
    assert nonces.accepts(n0, start + 600) is False  # two windows on
    assert nonces.accepts(n1, start + 299) is False  # not issued yet
    assert Nonces(b"other-secret-16b").accepts(n0, start) is False
    assert nonces.accepts("\u00e9\x00", start) is False
