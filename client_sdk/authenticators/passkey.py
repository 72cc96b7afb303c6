"""A software passkey: a WebAuthn authenticator in a test key pair, for CI, scripts and demos.

It answers the provider's passkey pages without a browser: given the options a page carries
(``PublicKeyCredentialCreationOptionsJSON`` or ``...RequestOptionsJSON``, WebAuthn Level 3 §5.1.1
and §5.5), it makes what ``PublicKeyCredential.toJSON()`` would give a page — a registration with
``"none"`` attestation (§8.7), or an assertion signed over ``authenticatorData || SHA-256(
clientDataJSON)`` (§6.3.3). The key is an ECDSA P-256 key (COSE ``ES256``), made by
``cryptography``; the CBOR it needs (the attestation object, the COSE key) is encoded here, in a
few lines (RFC 8949 §3: major types 0-5 and their canonical lengths).

It plays both roles a browser and an authenticator share: it writes ``clientDataJSON`` with the
page's origin, so it can stand only in for a user whose browser would be on the provider's own
pages. Like :class:`~client_sdk.authenticators.HeadlessAuthenticator`, it is for test users and
automation — a private key in a file is no hardware key, and the provider counts it as ``swk``
(RFC 8176), never as hardware (EAP ``phrh``).

Keep it between runs with :meth:`SoftwarePasskey.to_json` / :meth:`SoftwarePasskey.from_json`:
its signature counter must go on increasing, or the provider refuses it as a possible clone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from client_sdk.errors import AuthenticatorError, ConfigurationError

__all__ = ["SoftwarePasskey"]

# Authenticator data flags (§6.1): user present, user verified, attested credential data.
_UP, _UV, _AT = 0x01, 0x04, 0x40
# COSE (RFC 9053): kty EC2 = 2, alg ES256 = -7, crv P-256 = 1; labels 1 kty, 3 alg, -1 crv, -2 x,
# -3 y.
_ES256 = -7


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for extra, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | extra]) + struct.pack(fmt, n)
    raise ValueError("integer too large for CBOR")


def cbor(value: object) -> bytes:
    """RFC 8949 encoding of ints, byte and text strings, and maps (keys in the order given)."""
    if isinstance(value, bool):
        raise TypeError("booleans are not needed here")
    if isinstance(value, int):
        return _cbor_head(0, value) if value >= 0 else _cbor_head(1, -1 - value)
    if isinstance(value, bytes):
        return _cbor_head(2, len(value)) + value
    if isinstance(value, str):
        data = value.encode("utf-8")
        return _cbor_head(3, len(data)) + data
    if isinstance(value, Mapping):
        items = b"".join(cbor(k) + cbor(v) for k, v in value.items())
        return _cbor_head(5, len(value)) + items
    raise TypeError(f"cannot encode {type(value).__name__}")


class SoftwarePasskey:
    """One discoverable credential in software: a P-256 key, its id, and its counter.

    ``user_verified``: whether it reports user verification (the UV flag), as a platform
    authenticator does after a PIN or biometric check. ``sign_count``: the counter it last
    reported; each assertion adds one (``counter=False``: always 0, like authenticators that keep
    no counter). Until :meth:`create` runs (or ``rp_id`` and ``user_handle`` are given), it
    belongs to no site.
    """

    def __init__(
        self,
        *,
        private_key: ec.EllipticCurvePrivateKey | None = None,
        credential_id: bytes | None = None,
        rp_id: str | None = None,
        user_handle: bytes | None = None,
        sign_count: int = 0,
        user_verified: bool = True,
        counter: bool = True,
    ) -> None:
        self._key = private_key or ec.generate_private_key(ec.SECP256R1())
        if not isinstance(self._key.curve, ec.SECP256R1):
            raise ConfigurationError("a SoftwarePasskey key must be on P-256 (COSE ES256)")
        self.credential_id = credential_id or secrets.token_bytes(16)
        self.rp_id = rp_id
        self.user_handle = user_handle
        self.sign_count = sign_count
        self.user_verified = user_verified
        self.counter = counter

    def __repr__(self) -> str:  # never the key
        return f"SoftwarePasskey(id={_b64url(self.credential_id)!r}, rp_id={self.rp_id!r})"

    @property
    def id(self) -> str:
        """The credential id, base64url (as ``PublicKeyCredential.id``)."""
        return _b64url(self.credential_id)

    # --- keeping it --------------------------------------------------------------------------

    def to_json(self) -> str:
        """Everything needed to use it again, the private key included (a test key: keep the
        file as you would any test credential)."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        return json.dumps(
            {
                "credential_id": self.id,
                "rp_id": self.rp_id,
                "user_handle": _b64url(self.user_handle) if self.user_handle else None,
                "sign_count": self.sign_count,
                "user_verified": self.user_verified,
                "counter": self.counter,
                "private_key": pem,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SoftwarePasskey:
        try:
            data = json.loads(text)
            key = serialization.load_pem_private_key(data["private_key"].encode(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ConfigurationError("the saved passkey's key is not an EC key")
            return cls(
                private_key=key,
                credential_id=_b64url_decode(data["credential_id"]),
                rp_id=data.get("rp_id"),
                user_handle=(
                    _b64url_decode(data["user_handle"]) if data.get("user_handle") else None
                ),
                sign_count=int(data.get("sign_count", 0)),
                user_verified=bool(data.get("user_verified", True)),
                counter=bool(data.get("counter", True)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"not a saved SoftwarePasskey: {exc}") from exc

    # --- the two ceremonies ------------------------------------------------------------------

    def _cose_key(self) -> bytes:
        numbers = self._key.public_key().public_numbers()
        return cbor(
            {
                1: 2,
                3: _ES256,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _flags(self) -> int:
        return _UP | (_UV if self.user_verified else 0)

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        # §5.8.1.1: the JSON-compatible serialization of client data, members in this order.
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False},
            separators=(",", ":"),
        ).encode()

    def create(self, options: Mapping[str, Any], origin: str) -> dict[str, Any]:
        """Answer ``navigator.credentials.create()`` for these creation options: a
        ``RegistrationResponseJSON`` with ``"none"`` attestation (§8.7)."""
        try:
            rp_id = str(options["rp"]["id"])
            user_handle = _b64url_decode(str(options["user"]["id"]))
            challenge = str(options["challenge"])
            excluded = {str(c["id"]) for c in options.get("excludeCredentials", [])}
            algorithms = {int(p["alg"]) for p in options["pubKeyCredParams"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise AuthenticatorError(
                f"the passkey page's creation options are invalid: {exc}"
            ) from exc
        if self.id in excluded:
            # §6.3.2 step 3: an authenticator holding an excluded credential refuses to make one.
            raise AuthenticatorError("this passkey is registered already (excludeCredentials)")
        if _ES256 not in algorithms:
            raise AuthenticatorError("the provider does not accept ES256 keys")
        self.rp_id, self.user_handle = rp_id, user_handle
        client_data = self._client_data("webauthn.create", challenge, origin)
        # §6.5.1 attested credential data: AAGUID (zero for "none"), id length, id, COSE key.
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + struct.pack(">BI", self._flags() | _AT, self.sign_count)
            + attested
            + self._cose_key()
        )
        attestation = cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": _b64url(client_data),
                "attestationObject": _b64url(attestation),
                "transports": ["internal"],
            },
        }

    def get(self, options: Mapping[str, Any], origin: str) -> dict[str, Any]:
        """Answer ``navigator.credentials.get()`` for these request options: an
        ``AuthenticationResponseJSON``."""
        try:
            rp_id = str(options.get("rpId") or self.rp_id)
            challenge = str(options["challenge"])
            allowed = options.get("allowCredentials")
            allow = None if allowed is None else {str(c["id"]) for c in allowed}
        except (KeyError, TypeError, ValueError) as exc:
            raise AuthenticatorError(
                f"the passkey page's request options are invalid: {exc}"
            ) from exc
        if allow is not None and self.id not in allow:
            raise AuthenticatorError("the provider does not list this passkey for the account")
        if self.rp_id is not None and rp_id != self.rp_id:
            raise AuthenticatorError(
                f"this passkey belongs to {self.rp_id}, and the page asks for {rp_id}"
            )
        if self.counter:
            self.sign_count += 1
        client_data = self._client_data("webauthn.get", challenge, origin)
        auth_data = hashlib.sha256(rp_id.encode()).digest() + struct.pack(
            ">BI", self._flags(), self.sign_count if self.counter else 0
        )
        signature = self._key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        response = {
            "clientDataJSON": _b64url(client_data),
            "authenticatorData": _b64url(auth_data),
            "signature": _b64url(signature),
        }
        if self.user_handle:
            response["userHandle"] = _b64url(self.user_handle)
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": response,
        }
