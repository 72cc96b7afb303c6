"""WebAuthn Level 3 §7.1 and §7.2, the Relying Party's checks, against the SDK's software
authenticator: each check refuses with its own code, and nothing malformed gets past as anything
but ``malformed``. Pure: no app, no database (storage: ``test_passkey_storage.py``)."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from client_sdk.authenticators.passkey import SoftwarePasskey, cbor
from provider.factors import passkey as pk
from provider.factors.passkey import PasskeyRefused, RelyingParty

RP = RelyingParty.for_issuer("http://localhost:9000")
HANDLE = b"opaque-subject-1"


def creation(challenge: str, *, exclude: tuple[bytes, ...] = (), uv: str = "required") -> Any:
    return pk.creation_options(
        RP,
        user_handle=HANDLE,
        username="alice",
        display_name="Alice",
        challenge=challenge,
        exclude=exclude,
        user_verification=uv,
    )


def registered(key: SoftwarePasskey | None = None) -> tuple[SoftwarePasskey, pk.NewCredential]:
    key = key or SoftwarePasskey()
    challenge = pk.new_challenge()
    response = key.create(creation(challenge), RP.origin)
    return key, pk.verify_registration(RP, response, challenge=challenge, require_uv=True)


def assertion(key: SoftwarePasskey, challenge: str, origin: str = RP.origin) -> Any:
    options = pk.request_options(RP, challenge=challenge, allow=None, user_verification="required")
    return key.get(options, origin)


def verify(
    response: Any, new: pk.NewCredential, challenge: str, *, stored: int = 0, uv: bool = True
) -> pk.Asserted:
    return pk.verify_assertion(
        RP,
        pk.read_assertion(response),
        challenge=challenge,
        public_key=new.public_key,
        stored_sign_count=stored,
        require_uv=uv,
    )


def refused(code: str) -> Any:
    return pytest.raises(PasskeyRefused, match=f"^{code}(:|$)")


def reencode_client_data(response: Any, **changes: Any) -> Any:
    """The response with its clientDataJSON changed (for checks that precede the signature)."""
    data = json.loads(pk.b64url_decode(response["response"]["clientDataJSON"]))
    data.update(changes)
    out = json.loads(json.dumps(response))
    out["response"]["clientDataJSON"] = pk.b64url(json.dumps(data).encode())
    return out


# --- the Relying Party --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issuer", "rp_id", "origin"),
    [
        ("http://localhost:9000", "localhost", "http://localhost:9000"),
        ("https://Login.Example.com/op", "login.example.com", "https://login.example.com"),
        ("https://login.example.com:443", "login.example.com", "https://login.example.com"),
        ("http://127.0.0.1:9000", "127.0.0.1", "http://127.0.0.1:9000"),
    ],
)
def test_the_relying_party_is_the_issuer_host_and_origin(
    issuer: str, rp_id: str, origin: str
) -> None:
    rp = RelyingParty.for_issuer(issuer)
    assert (rp.id, rp.origin) == (rp_id, origin)
    assert rp.id_hash == hashlib.sha256(rp_id.encode()).digest()


def test_creation_options_exclude_the_users_credentials_and_ask_for_a_passkey() -> None:
    options = creation("c" * 43, exclude=(b"\x01" * 16, b"\x02" * 16))
    assert options["rp"] == {"id": "localhost", "name": "Stepup"}
    assert options["user"] == {"id": pk.b64url(HANDLE), "name": "alice", "displayName": "Alice"}
    assert options["excludeCredentials"] == [
        {"type": "public-key", "id": pk.b64url(b"\x01" * 16)},
        {"type": "public-key", "id": pk.b64url(b"\x02" * 16)},
    ]
    assert options["authenticatorSelection"] == {
        "residentKey": "required",
        "requireResidentKey": True,
        "userVerification": "required",
    }
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-8, -7, -257]
    assert options["attestation"] == "none"


def test_request_options_without_a_user_allow_any_discoverable_credential() -> None:
    options = pk.request_options(RP, challenge="c" * 43, allow=None, user_verification="required")
    assert "allowCredentials" not in options
    assert options["rpId"] == "localhost"
    listed = pk.request_options(RP, challenge="c", allow=[b"\x07" * 16], user_verification="x")
    assert listed["allowCredentials"] == [{"type": "public-key", "id": pk.b64url(b"\x07" * 16)}]


def test_challenges_are_32_random_bytes() -> None:
    a, b = pk.new_challenge(), pk.new_challenge()
    assert a != b
    assert len(pk.b64url_decode(a)) == 32


# --- registration, §7.1 --------------------------------------------------------------------------


def test_a_none_attestation_registration_is_stored_as_a_software_key() -> None:
    key, new = registered()
    assert new.credential_id == key.credential_id
    assert (new.sign_count, new.attestation_format, new.aaguid) == (
        0,
        "none",
        "00000000-0000-0000-0000-000000000000",
    )
    assert (new.user_verified, new.hardware, new.transports) == (True, False, ("internal",))
    assert key.user_handle == HANDLE
    assert key.rp_id == "localhost"


def test_a_trust_check_is_not_asked_about_a_none_attestation() -> None:
    asked: list[str] = []

    def trust(fmt: str, chain: Any, aaguid: bytes) -> bool:
        asked.append(fmt)
        return True

    challenge = pk.new_challenge()
    response = SoftwarePasskey().create(creation(challenge), RP.origin)
    new = pk.verify_registration(RP, response, challenge=challenge, require_uv=True, trust=trust)
    assert new.hardware is False
    assert asked == []


def test_registration_for_another_challenge_is_refused() -> None:
    response = SoftwarePasskey().create(creation(pk.new_challenge()), RP.origin)
    with refused("challenge"):
        pk.verify_registration(RP, response, challenge=pk.new_challenge(), require_uv=True)


def test_registration_from_another_origin_is_refused() -> None:
    challenge = pk.new_challenge()
    response = SoftwarePasskey().create(creation(challenge), "http://localhost:9001")
    with refused("origin"):
        pk.verify_registration(RP, response, challenge=challenge, require_uv=True)


def test_registration_for_another_rp_id_is_refused() -> None:
    challenge = pk.new_challenge()
    options = creation(challenge)
    options["rp"]["id"] = "evil.example"
    response = SoftwarePasskey().create(options, RP.origin)
    with refused("rp_id"):
        pk.verify_registration(RP, response, challenge=challenge, require_uv=True)


def test_registration_without_user_verification_is_refused_only_where_required() -> None:
    challenge = pk.new_challenge()
    response = SoftwarePasskey(user_verified=False).create(creation(challenge), RP.origin)
    with refused("user_verification"):
        pk.verify_registration(RP, response, challenge=challenge, require_uv=True)
    new = pk.verify_registration(RP, response, challenge=challenge, require_uv=False)
    assert new.user_verified is False


def test_an_assertion_is_no_registration() -> None:
    challenge = pk.new_challenge()
    response = reencode_client_data(
        SoftwarePasskey().create(creation(challenge), RP.origin), type="webauthn.get"
    )
    with refused("type"):
        pk.verify_registration(RP, response, challenge=challenge, require_uv=True)


def test_a_registration_inside_another_sites_frame_is_refused() -> None:
    challenge = pk.new_challenge()
    response = reencode_client_data(
        SoftwarePasskey().create(creation(challenge), RP.origin),
        crossOrigin=True,
        topOrigin="https://evil.example",
    )
    with refused("cross_origin"):
        pk.verify_registration(RP, response, challenge=challenge, require_uv=True)


def _attestation_response(
    challenge: str, cose: dict[int, Any], *, fmt: str = "none", stmt: Any = None
) -> Any:
    """A registration response built by hand, for what the software passkey never sends."""
    credential_id = b"\x42" * 16
    client_data = json.dumps(
        {"type": "webauthn.create", "challenge": challenge, "origin": RP.origin}
    ).encode()
    auth_data = (
        RP.id_hash
        + struct.pack(">BI", 0x45, 0)
        + bytes(16)
        + struct.pack(">H", 16)
        + credential_id
        + cbor(cose)
    )
    obj = cbor({"fmt": fmt, "attStmt": stmt if stmt is not None else {}, "authData": auth_data})
    return {
        "id": pk.b64url(credential_id),
        "rawId": pk.b64url(credential_id),
        "type": "public-key",
        "response": {
            "clientDataJSON": pk.b64url(client_data),
            "attestationObject": pk.b64url(obj),
        },
        "clientExtensionResults": {},
    }


def _p256_cose(alg: int = -7) -> dict[int, Any]:
    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
    return {1: 2, 3: alg, -1: 1, -2: x, -3: y}


def test_a_key_algorithm_not_offered_is_refused() -> None:
    challenge = pk.new_challenge()
    response = _attestation_response(challenge, _p256_cose(alg=-35))  # ES384: not offered
    with refused("algorithm"):
        pk.verify_registration(RP, response, challenge=challenge, require_uv=True)


def test_a_public_key_that_is_no_point_on_the_curve_is_refused() -> None:
    challenge = pk.new_challenge()
    cose = {1: 2, 3: -7, -1: 1, -2: b"\x01" * 32, -3: b"\x02" * 32}
    with refused("malformed"):
        pk.verify_registration(
            RP, _attestation_response(challenge, cose), challenge=challenge, require_uv=True
        )


def test_a_packed_self_attestation_with_a_wrong_signature_is_refused() -> None:
    challenge = pk.new_challenge()
    stmt = {"alg": -7, "sig": b"\x30\x06\x02\x01\x01\x02\x01\x01"}
    response = _attestation_response(challenge, _p256_cose(), fmt="packed", stmt=stmt)
    with refused("attestation"):
        pk.verify_registration(RP, response, challenge=challenge, require_uv=True)


def test_a_none_attestation_with_a_statement_is_refused() -> None:
    challenge = pk.new_challenge()
    response = _attestation_response(challenge, _p256_cose(), stmt={"x5c": b"junk"})
    with refused("attestation"):
        pk.verify_registration(RP, response, challenge=challenge, require_uv=True)


@pytest.mark.parametrize(
    "response",
    [
        [],
        "text",
        {},
        {"type": "public-key"},
        {"type": "other", "id": "AA", "rawId": "AA", "response": {}},
        {"type": "public-key", "id": "AA", "rawId": "AB", "response": {}},
        {
            "type": "public-key",
            "id": "AAAA",
            "rawId": "AAAA",
            "response": {"clientDataJSON": "!!!", "attestationObject": "AAAA"},
        },
        {
            "type": "public-key",
            "id": "AAAA",
            "rawId": "AAAA",
            "response": {"clientDataJSON": pk.b64url(b"{}"), "attestationObject": "oA"},
        },
    ],
    ids=["list", "string", "empty", "no-response", "type", "id-rawid", "bad-b64", "bad-cbor"],
)
def test_malformed_registrations_are_refused_as_malformed(response: Any) -> None:
    with refused("malformed"):
        pk.verify_registration(RP, response, challenge=pk.new_challenge(), require_uv=True)


# --- assertion, §7.2 ----------------------------------------------------------------------------


def test_an_assertion_verifies_and_reports_the_new_counter() -> None:
    key, new = registered()
    challenge = pk.new_challenge()
    response = assertion(key, challenge)
    parsed = pk.read_assertion(response)
    assert (parsed.credential_id, parsed.user_handle, parsed.challenge) == (
        key.credential_id,
        HANDLE,
        challenge,
    )
    done = verify(response, new, challenge)
    assert (done.credential_id, done.sign_count, done.user_verified) == (key.credential_id, 1, True)


def test_an_assertion_for_another_challenge_is_refused() -> None:
    key, new = registered()
    with refused("challenge"):
        verify(assertion(key, pk.new_challenge()), new, pk.new_challenge())


def test_an_assertion_from_another_origin_is_refused() -> None:
    key, new = registered()
    challenge = pk.new_challenge()
    with refused("origin"):
        verify(assertion(key, challenge, origin="https://localhost.evil.example"), new, challenge)


def test_an_assertion_for_another_rp_id_is_refused() -> None:
    key, new = registered()
    elsewhere = SoftwarePasskey.from_json(key.to_json())
    elsewhere.rp_id = "evil.example"
    challenge = pk.new_challenge()
    options = {"challenge": challenge, "rpId": "evil.example"}
    with refused("rp_id"):
        verify(elsewhere.get(options, RP.origin), new, challenge)


def test_an_assertion_without_user_verification_is_refused_where_the_level_needs_it() -> None:
    key, new = registered()
    key.user_verified = False
    challenge = pk.new_challenge()
    response = assertion(key, challenge)
    with refused("user_verification"):
        verify(response, new, challenge, uv=True)
    assert verify(response, new, challenge, uv=False).user_verified is False


def test_a_registration_is_no_assertion() -> None:
    key, new = registered()
    challenge = pk.new_challenge()
    response = reencode_client_data(assertion(key, challenge), type="webauthn.create")
    with refused("type"):
        verify(response, new, challenge)


def test_a_cloned_authenticator_whose_counter_goes_back_is_refused() -> None:
    key, new = registered()
    clone = SoftwarePasskey.from_json(key.to_json())
    stored = 0
    for _ in range(3):
        challenge = pk.new_challenge()
        stored = verify(assertion(key, challenge), new, challenge, stored=stored).sign_count
    assert stored == 3
    challenge = pk.new_challenge()
    response = assertion(clone, challenge)  # the copy says 1: behind the original
    with refused("sign_count"):
        verify(response, new, challenge, stored=stored)


def test_a_counter_that_stays_put_is_refused_unless_both_are_zero() -> None:
    key, new = registered()
    challenge = pk.new_challenge()
    response = assertion(key, challenge)  # count 1
    with refused("sign_count"):
        verify(response, new, challenge, stored=1)
    counterless = SoftwarePasskey(counter=False)
    _, plain = registered(counterless)
    challenge = pk.new_challenge()
    assert verify(assertion(counterless, challenge), plain, challenge, stored=0).sign_count == 0


def test_another_keys_signature_is_refused() -> None:
    key, _ = registered()
    _, other = registered()
    challenge = pk.new_challenge()
    with refused("signature"):
        verify(assertion(key, challenge), other, challenge)


def test_tampered_authenticator_data_breaks_the_signature() -> None:
    key, new = registered()
    challenge = pk.new_challenge()
    response = assertion(key, challenge)
    data = bytearray(pk.b64url_decode(response["response"]["authenticatorData"]))
    data[36] = 0x7F  # the counter's low byte: a higher count the authenticator never signed
    response["response"]["authenticatorData"] = pk.b64url(bytes(data))
    with refused("signature"):
        verify(response, new, challenge)


def test_a_signature_over_other_client_data_is_refused() -> None:
    key, new = registered()
    challenge = pk.new_challenge()
    response = assertion(key, challenge)
    forged = ec.generate_private_key(ec.SECP256R1()).sign(b"x", ec.ECDSA(hashes.SHA256()))
    response["response"]["signature"] = pk.b64url(forged)
    with refused("signature"):
        verify(response, new, challenge)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "null", "[1]", "{", '"x"', "[" * 5000],
    ids=["empty", "blank", "null", "list", "broken", "string", "deep"],
)
def test_the_form_value_must_be_a_json_object(text: str) -> None:
    code = "missing" if not text.strip() else "malformed"
    with refused(code):
        pk.parse_json(text)


def test_malformed_assertions_are_refused_as_malformed() -> None:
    key, _ = registered()
    good = assertion(key, pk.new_challenge())
    for broken in (
        {**good, "response": {**good["response"], "authenticatorData": "AAAA"}},
        {**good, "response": {**good["response"], "signature": 7}},
        {**good, "rawId": "AAAA"},
        reencode_client_data(good, challenge=12),
    ):
        with refused("malformed"):
            pk.read_assertion(broken)
