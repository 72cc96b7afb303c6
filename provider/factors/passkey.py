"""The passkey factor: WebAuthn registration and assertion, verified step by step.

Web Authentication Level 3 (W3C), §7.1 "Registering a New Credential" and §7.2 "Verifying an
Authentication Assertion": each numbered step the Relying Party must take is one check below, in
the spec's order, and each refusal is a :class:`PasskeyRefused` with a fixed machine code
(:data:`REFUSALS`) the login pages show as ``data-error``. python-fido2 (Yubico) parses the
structures (client data JSON, CBOR attestation objects, authenticator data, COSE keys), verifies
signatures and attestation statements; ``docs/provider.md`` ("Passkeys") says why that library.

What this module does **not** do is storage: the caller consumes the challenge (single use, bound
to the interaction) and stores the new signature counter, each with one atomic statement
(:mod:`provider.passkey_login`). Pure: bytes and JSON in, answers out; no Flask, no database.

The Relying Party (:class:`RelyingParty`) is the issuer: RP ID = the issuer's host name, origin =
the issuer's origin (§5.1.2, "RP ID": "an RP ID is a valid domain string"; a browser refuses an IP
address, which is why the sandbox serves passkeys at ``http://localhost:PORT``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ALGORITHMS",
    "REFUSALS",
    "Asserted",
    "AssertionResponse",
    "NewCredential",
    "PasskeyRefused",
    "RelyingParty",
    "b64url",
    "b64url_decode",
    "creation_options",
    "new_challenge",
    "parse_json",
    "read_assertion",
    "request_options",
    "verify_assertion",
    "verify_registration",
]

# COSE algorithms offered in pubKeyCredParams, preferred first. §5.4 "pubKeyCredParams": an RP that
# wants the widest support lists EdDSA (-8), ES256 (-7) and RS256 (-257).
ALGORITHMS: tuple[int, ...] = (-8, -7, -257)

# Machine codes of refusals, with the sentence the page shows. A page says what to do next; the
# code is for scripts and tests (data-error on the alert).
REFUSALS: dict[str, str] = {
    "missing": "The browser sent no passkey response. Use the button to try again.",
    "malformed": "The passkey response could not be read. Try again.",
    "type": "The passkey response is for another kind of request. Try again.",
    "challenge": "This passkey response was already used or has expired. Try again.",
    "origin": "The passkey response was made for another site.",
    "cross_origin": "The passkey was used from inside another site's frame.",
    "rp_id": "The passkey belongs to another site.",
    "user_presence": "The authenticator did not confirm that you were present.",
    "user_verification": (
        "This level needs a passkey that verifies you (a PIN, fingerprint or face). Use a "
        "passkey that does."
    ),
    "algorithm": "The authenticator uses a signature algorithm this site does not accept.",
    "attestation": "The authenticator's attestation could not be verified.",
    "credential_id": "The authenticator returned an invalid credential id.",
    "unknown_credential": "That passkey is not registered for this account.",
    "signature": "The passkey's signature is not valid.",
    "sign_count": (
        "The passkey's signature counter went back: it may have been copied. It was refused; "
        "use another passkey or contact your administrator."
    ),
    "excluded": "That passkey is already registered.",
    "hardware": (
        "This level needs a hardware security key whose make this provider trusts; that "
        "passkey does not show one."
    ),
}


class PasskeyRefused(Exception):
    """A registration or assertion that fails a WebAuthn check; ``code`` is in :data:`REFUSALS`."""

    def __init__(self, code: str, detail: str = "") -> None:
        assert code in REFUSALS, code
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}" if detail else code)

    @property
    def message(self) -> str:
        return REFUSALS[self.code]


def b64url(data: bytes) -> str:
    """base64url without padding (WebAuthn's JSON encoding of binary values)."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    """Strict base64url (padding optional); ``ValueError`` for anything else."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def new_challenge() -> str:
    """§13.4.3 "Cryptographic Challenges": at least 16 random bytes; we use 32."""
    return b64url(secrets.token_bytes(32))


@dataclass(frozen=True)
class RelyingParty:
    """The WebAuthn Relying Party this provider is: ``id`` (host name) and ``origin``."""

    id: str
    origin: str
    name: str = "Stepup"

    @classmethod
    def for_issuer(cls, issuer: str, name: str = "Stepup") -> RelyingParty:
        """RP ID = the issuer's host; origin = ``scheme://host[:port]`` (default port omitted,
        as a browser serialises it, §5.8.1 "origin")."""
        parts = urlsplit(issuer)
        host = (parts.hostname or "").lower()
        default = {"http": 80, "https": 443}.get(parts.scheme)
        port = f":{parts.port}" if parts.port is not None and parts.port != default else ""
        shown = f"[{host}]" if ":" in host else host
        return cls(id=host, origin=f"{parts.scheme}://{shown}{port}", name=name)

    @property
    def id_hash(self) -> bytes:
        return hashlib.sha256(self.id.encode("utf-8")).digest()


# --- options sent to the browser ------------------------------------------------------------------


def creation_options(
    rp: RelyingParty,
    *,
    user_handle: bytes,
    username: str,
    display_name: str,
    challenge: str,
    exclude: Sequence[bytes],
    user_verification: str,
    attestation: str = "none",
    timeout_ms: int = 300_000,
) -> dict[str, Any]:
    """``PublicKeyCredentialCreationOptionsJSON`` (§5.1.1), for ``parseCreationOptionsFromJSON``.

    ``excludeCredentials`` lists the user's credentials (§5.4: "to limit the creation of multiple
    credentials for the same account on a single authenticator"); ``residentKey: required`` makes
    it a discoverable credential — a passkey, usable without typing a username.
    """
    return {
        "rp": {"id": rp.id, "name": rp.name},
        "user": {"id": b64url(user_handle), "name": username, "displayName": display_name},
        "challenge": challenge,
        "pubKeyCredParams": [{"type": "public-key", "alg": alg} for alg in ALGORITHMS],
        "timeout": timeout_ms,
        "excludeCredentials": [{"type": "public-key", "id": b64url(c)} for c in exclude],
        "authenticatorSelection": {
            "residentKey": "required",
            "requireResidentKey": True,
            "userVerification": user_verification,
        },
        "attestation": attestation,
    }


def request_options(
    rp: RelyingParty,
    *,
    challenge: str,
    allow: Sequence[bytes] | None,
    user_verification: str,
    timeout_ms: int = 300_000,
) -> dict[str, Any]:
    """``PublicKeyCredentialRequestOptionsJSON`` (§5.5). ``allow=None``: any discoverable
    credential for this RP (a sign-in without a username)."""
    options: dict[str, Any] = {
        "challenge": challenge,
        "rpId": rp.id,
        "timeout": timeout_ms,
        "userVerification": user_verification,
    }
    if allow is not None:
        options["allowCredentials"] = [{"type": "public-key", "id": b64url(c)} for c in allow]
    return options


# --- registration (§7.1) ----------------------------------------------------------------------


@dataclass(frozen=True)
class NewCredential:
    """A verified registration: what the provider stores (``public_key`` is the COSE key)."""

    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: str
    attestation_format: str
    user_verified: bool
    backup_eligible: bool
    backed_up: bool
    #: The attestation chains to a trusted root (:func:`verify_registration`'s ``trust``):
    #: a hardware-protected key, RFC 8176 ``hwk``, EAP ``phrh``.
    hardware: bool
    transports: tuple[str, ...]


# Given the verified attestation (format, trust path as DER certificates, AAGUID), whether it
# chains to a root this provider trusts for hardware keys.
TrustCheck = Callable[[str, Sequence[bytes], bytes], bool]


def _parse(kind: str, response: Mapping[str, Any]) -> Any:
    """fido2's parser for a RegistrationResponseJSON / AuthenticationResponseJSON, any failure
    being ``malformed`` (its errors are builtins of many kinds)."""
    from fido2.webauthn import AuthenticationResponse, RegistrationResponse

    parser = RegistrationResponse if kind == "create" else AuthenticationResponse
    if not isinstance(response, Mapping):
        raise PasskeyRefused("malformed", "the response is not a JSON object")
    if response.get("type") != "public-key":
        raise PasskeyRefused("malformed", "type is not public-key")
    # The JSON shapes of §5.1 (RegistrationResponseJSON, AuthenticationResponseJSON): binary
    # members are base64url strings. fido2 would turn a number into that many zero bytes.
    inner = response.get("response")
    binary = ["clientDataJSON"]
    binary += ["attestationObject"] if kind == "create" else ["authenticatorData", "signature"]
    if (
        not isinstance(response.get("id"), str)
        or not isinstance(response.get("rawId"), str)
        or not isinstance(inner, Mapping)
        or not all(isinstance(inner.get(name), str) for name in binary)
        or not isinstance(inner.get("userHandle"), str | None)
    ):
        raise PasskeyRefused("malformed", "not a WebAuthn response JSON")
    try:
        return parser.from_dict(response)
    except Exception as exc:  # fido2 raises KeyError, ValueError, TypeError, struct.error...
        raise PasskeyRefused("malformed", type(exc).__name__) from None


def _client_data_checks(rp: RelyingParty, client_data: Any, ceremony: str, challenge: str) -> None:
    """§7.1 steps 7-10 / §7.2 steps 13-16: type, challenge, origin, cross-origin."""
    # "Verify that the value of C.type is webauthn.create" (§7.1 step 7) / "webauthn.get".
    if client_data.type != f"webauthn.{ceremony}":
        raise PasskeyRefused("type", str(client_data.type))
    # "Verify that the value of C.challenge equals the base64url encoding of
    # pkOptions.challenge." (§7.1 step 8; §7.2 step 14)
    if not hmac.compare_digest(client_data.challenge, b64url_decode(challenge)):
        raise PasskeyRefused("challenge", "not the challenge of this page")
    # "Verify that the value of C.origin is an origin expected by the Relying Party."
    if client_data.origin != rp.origin:
        raise PasskeyRefused("origin", str(client_data.origin)[:200])
    # "If C.crossOrigin is present and set to true, verify that the Relying Party expects this
    # credential to be used within an iframe that is not same-origin with its ancestors." We
    # never do: every page sends frame-ancestors 'none'.
    if client_data.cross_origin is True or client_data._data.get("topOrigin") is not None:
        raise PasskeyRefused("cross_origin")


def _flag_checks(rp: RelyingParty, auth_data: Any, require_uv: bool) -> None:
    """§7.1 steps 13-16 / §7.2 steps 17-20: rpIdHash, UP, UV, BE/BS consistency."""
    # "Verify that the rpIdHash in authData is the SHA-256 hash of the RP ID expected by the
    # Relying Party."
    if not hmac.compare_digest(auth_data.rp_id_hash, rp.id_hash):
        raise PasskeyRefused("rp_id")
    # "Verify that the UP bit of the flags in authData is set."
    if not auth_data.is_user_present():
        raise PasskeyRefused("user_presence")
    # "If user verification is required for this registration [assertion], verify that the
    # User Verified bit of the flags in authData is set."
    if require_uv and not auth_data.is_user_verified():
        raise PasskeyRefused("user_verification")
    # "If the BE bit of the flags in authData is not set, verify that the BS bit is not set."
    if auth_data.is_backed_up() and not auth_data.is_backup_eligible():
        raise PasskeyRefused("malformed", "BS set without BE")


def verify_registration(
    rp: RelyingParty,
    response: Mapping[str, Any],
    *,
    challenge: str,
    require_uv: bool,
    trust: TrustCheck | None = None,
) -> NewCredential:
    """§7.1, for a ``RegistrationResponseJSON`` (what ``PublicKeyCredential.toJSON()`` gives).

    ``challenge``: the one the page was given (the caller consumes it, once). ``trust``: decides
    whether a verified attestation shows a hardware key; without it no credential is hardware.
    Whether the credential id is registered already (§7.1 step 24) is the caller's check, at
    insert time (a unique column).
    """
    from fido2.attestation.base import Attestation, InvalidAttestation, UnsupportedType

    parsed = _parse("create", response)
    client_data = parsed.response.client_data
    _client_data_checks(rp, client_data, "create", challenge)
    attestation = parsed.response.attestation_object
    auth_data = attestation.auth_data
    _flag_checks(rp, auth_data, require_uv)
    credential = auth_data.credential_data
    if credential is None:
        raise PasskeyRefused("malformed", "no attested credential data")
    # §7.1 step 18: "Verify that the "alg" parameter in the credential public key in authData
    # matches the alg attribute of one of the items in pkOptions.pubKeyCredParams."
    public_key = credential.public_key
    if public_key.get(3) not in ALGORITHMS:
        raise PasskeyRefused("algorithm", str(public_key.get(3)))
    if not _usable(public_key):
        raise PasskeyRefused("malformed", "the credential public key is not a valid key")
    # §7.1 step 23: "Verify that the credentialId is ≤ 1023 bytes."
    if not 16 <= len(credential.credential_id) <= 1023:
        raise PasskeyRefused("credential_id", f"{len(credential.credential_id)} bytes")
    if parsed.raw_id != credential.credential_id:
        raise PasskeyRefused("credential_id", "rawId is not the attested credential id")
    # §7.1 steps 20-22: the attestation statement's format and signature, then whether its trust
    # path is acceptable. "none" carries no statement and proves nothing about the key's storage.
    fmt = str(attestation.fmt)
    hardware = False
    try:
        result = Attestation.for_type(fmt)().verify(
            attestation.att_stmt, auth_data, client_data.hash
        )
    except UnsupportedType:
        result = None  # an unknown format: registered, but nothing is inferred from it
    except (InvalidAttestation, ValueError, TypeError, KeyError) as exc:
        raise PasskeyRefused("attestation", f"{fmt}: {type(exc).__name__}") from None
    if result is not None and fmt != "none" and trust is not None:
        hardware = trust(fmt, list(result.trust_path), bytes(credential.aaguid))
    from fido2 import cbor

    transports = response.get("response", {}).get("transports", [])
    return NewCredential(
        credential_id=bytes(credential.credential_id),
        public_key=cbor.encode(dict(public_key)),
        sign_count=int(auth_data.counter),
        aaguid=str(credential.aaguid),
        attestation_format=fmt[:32],
        user_verified=auth_data.is_user_verified(),
        backup_eligible=auth_data.is_backup_eligible(),
        backed_up=auth_data.is_backed_up(),
        hardware=hardware,
        transports=tuple(
            t for t in transports if isinstance(t, str) and len(t) <= 32 and t.isascii()
        )[:8]
        if isinstance(transports, list)
        else (),
    )


def _usable(key: Any) -> bool:
    """Whether a COSE key is a real public key: verifying a dummy signature with it fails as a
    wrong signature, not as a bad key."""
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(b"probe", b"\x30\x06\x02\x01\x01\x02\x01\x01")
    except InvalidSignature:
        return True
    except Exception:
        return False
    return False


# --- assertion (§7.2) -------------------------------------------------------------------------


@dataclass(frozen=True)
class AssertionResponse:
    """A parsed ``AuthenticationResponseJSON``: enough to find the credential and the challenge
    before verifying it."""

    credential_id: bytes
    user_handle: bytes | None
    challenge: str
    parsed: Any


@dataclass(frozen=True)
class Asserted:
    """A verified assertion: the credential, its new counter, and the flags amr reports."""

    credential_id: bytes
    sign_count: int
    user_verified: bool
    backed_up: bool


def read_assertion(response: Mapping[str, Any]) -> AssertionResponse:
    """Parse an ``AuthenticationResponseJSON`` (§7.2 steps 1-3, 8-12); ``malformed`` when it is
    not one."""
    parsed = _parse("get", response)
    client_data = parsed.response.client_data
    if not isinstance(client_data._data.get("challenge"), str):
        raise PasskeyRefused("malformed", "no challenge in the client data")
    handle = parsed.response.user_handle
    return AssertionResponse(
        credential_id=bytes(parsed.raw_id),
        user_handle=bytes(handle) if handle else None,
        challenge=b64url(client_data.challenge),
        parsed=parsed,
    )


def verify_assertion(
    rp: RelyingParty,
    response: AssertionResponse,
    *,
    challenge: str,
    public_key: bytes,
    stored_sign_count: int,
    require_uv: bool,
) -> Asserted:
    """§7.2 steps 13-24 for a response whose credential the caller found (steps 5-7: it is one
    of the user's, and its user handle, if any, is the user's).

    Step 24, the signature counter: "If authData.signCount is nonzero or storedSignCount is
    nonzero, then run the following sub-step: If authData.signCount is greater than
    storedSignCount: Update storedSignCount to be the value of authData.signCount. less than or
    equal to storedSignCount: This is a signal that the authenticator may be cloned [...] Relying
    Party-specific behavior." Ours: refuse (``sign_count``). The caller stores the new count
    with a conditional update, so two assertions racing with one count cannot both pass.
    """
    from fido2 import cbor
    from fido2.cose import CoseKey

    parsed = response.parsed
    client_data = parsed.response.client_data
    auth_data = parsed.response.authenticator_data
    _client_data_checks(rp, client_data, "get", challenge)
    _flag_checks(rp, auth_data, require_uv)
    # §7.2 steps 22-23: "Let hash be the result of computing a hash over the cData using
    # SHA-256. Using credentialPublicKey, verify that sig is a valid signature over the binary
    # concatenation of authData and hash."
    try:
        decoded = cbor.decode(public_key)
        if not isinstance(decoded, Mapping):
            raise TypeError("the stored key is not a COSE key")
        key = CoseKey.parse(decoded)
        key.verify(bytes(auth_data) + client_data.hash, bytes(parsed.response.signature))
    except Exception:  # cryptography's InvalidSignature, or a signature that is not DER at all
        raise PasskeyRefused("signature") from None
    count = int(auth_data.counter)
    if (count or stored_sign_count) and count <= stored_sign_count:
        raise PasskeyRefused("sign_count", f"{count} <= {stored_sign_count}")
    return Asserted(
        credential_id=response.credential_id,
        sign_count=count,
        user_verified=auth_data.is_user_verified(),
        backed_up=auth_data.is_backed_up(),
    )


def parse_json(text: str) -> Mapping[str, Any]:
    """The form field the page's script fills: a JSON object, else ``missing``/``malformed``."""
    if not text or not text.strip():
        raise PasskeyRefused("missing")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise PasskeyRefused("malformed", "not JSON") from None
    if not isinstance(value, dict):
        raise PasskeyRefused("malformed", "not a JSON object")
    return value
