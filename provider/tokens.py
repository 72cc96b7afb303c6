"""What the provider signs: ID tokens (OIDC Core §2) and JWT access tokens (RFC 9068).

Both carry the authentication context — ``acr``, ``amr``, ``auth_time`` — that travelled from the
login, through the authorization code, to here; a refresh copies it unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from joserfc import jwt
from joserfc.errors import JoseError

from client_sdk.wire import numeric_date

from .keys import ALGORITHM, KeyStore

__all__ = ["CLOCK_SKEW", "AuthContext", "TokenSigner", "at_hash"]


@dataclass(frozen=True)
class AuthContext:
    """How and when the user authenticated: the claims a step-up is about."""

    acr: str
    amr: tuple[str, ...]
    auth_time: int


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: the left half of the hash of the ASCII octets of the access token,
    base64url-encoded, with the hash of the ID token's ``alg`` (SHA-256 for RS256)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


#: Seconds a time claim may lie in the future: provider processes sharing a database may read
#: clocks that differ by this much.
CLOCK_SKEW = 30


def _times_in_force(claims: Mapping[str, Any], now: int, *, expired_ok: bool) -> bool:
    """RFC 9068 §2.2 / RFC 7519 §4.1: ``exp`` and ``iat`` present, ``nbf`` and ``auth_time``
    optional; each a NumericDate (:func:`client_sdk.wire.numeric_date`), in this order in time."""
    exp, iat = numeric_date(claims.get("exp")), numeric_date(claims.get("iat"))
    if exp is None or iat is None or iat > now + CLOCK_SKEW or iat > exp:
        return False
    if now >= exp and not expired_ok:
        return False
    for name in ("nbf", "auth_time"):
        if name in claims:
            value = numeric_date(claims[name])
            if value is None or value > now + CLOCK_SKEW or value > exp:
                return False
    return True


_PADDING = PKCS1v15()
_HASH = SHA256()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class TokenSigner:
    def __init__(self, keys: KeyStore, *, issuer: str, audience: str) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self._headers: dict[tuple[str, str], bytes] = {}  # encoded protected headers

    def _sign(self, typ: str, claims: Mapping[str, Any]) -> str:
        """RFC 7515 §7.1 compact serialization, RS256 (RFC 7518 §3.3: RSASSA-PKCS1-v1_5 with
        SHA-256), written out here: joserfc's ``jwt.encode`` re-checks the key and the claims
        on every call, which costs a tenth of the signature itself. Verification stays with
        joserfc (:meth:`verify`), and the tests decode these tokens with it."""
        ring = self.keys.ring()
        header = self._headers.get((ring.kid, typ))
        if header is None:
            header = _b64(_json({"alg": ALGORITHM, "kid": ring.kid, "typ": typ}))
            self._headers[(ring.kid, typ)] = header
        signing_input = header + b"." + _b64(_json(claims))
        private_key = ring.current.private_key
        assert private_key is not None  # a signing key is a private key (provider.keys)
        signature = private_key.sign(signing_input, _PADDING, _HASH)
        return (signing_input + b"." + _b64(signature)).decode("ascii")

    def access_token(
        self,
        *,
        subject: str,
        client_id: str,
        scope: str,
        jti: str,
        now: int,
        lifetime: int,
        context: AuthContext | None,
        audience: Sequence[str] = (),
        dpop_jkt: str | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """RFC 9068 §2.2: ``iss``, ``exp``, ``aud``, ``sub``, ``client_id``, ``iat``, ``jti``
        are REQUIRED; ``auth_time``, ``acr`` and ``amr`` carry the authentication (§2.2.1).
        RFC 9449 §6.1: a DPoP-bound token says its key as ``cnf: {"jkt": <thumbprint>}``.

        RFC 9068 §2.1: the header "typ" MUST be "at+jwt", so an ID token can never be
        mistaken for an access token.

        ``audience``: the resources the token is for (RFC 8707 §2.2, "audience-restricted"); one
        is a string ``aud``, several an array (RFC 7519 §4.1.3); none is the default audience.
        """
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": (audience[0] if len(audience) == 1 else list(audience))
            if audience
            else self.audience,
            "client_id": client_id,
            "iat": now,
            "exp": now + lifetime,
            "jti": jti,
            "scope": scope,
        }
        if context is not None:
            claims.update(acr=context.acr, amr=list(context.amr), auth_time=context.auth_time)
        if dpop_jkt is not None:
            claims["cnf"] = {"jkt": dpop_jkt}
        if extra_claims:
            claims.update(extra_claims)  # e.g. RFC 9396 §9.1 authorization_details
        return self._sign("at+jwt", claims)

    def id_token(
        self,
        *,
        subject: str,
        client_id: str,
        now: int,
        lifetime: int,
        context: AuthContext,
        nonce: str | None,
        access_token: str | None,
        user_claims: Mapping[str, Any],
    ) -> str:
        """OIDC Core §2: ``auth_time`` is the time the End-User authentication occurred — never
        the issue time — and ``acr``/``amr`` say how."""
        claims: dict[str, Any] = dict(user_claims)
        claims.update(
            iss=self.issuer,
            sub=subject,
            aud=client_id,
            azp=client_id,
            iat=now,
            exp=now + lifetime,
            auth_time=context.auth_time,
            acr=context.acr,
            amr=list(context.amr),
        )
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = at_hash(access_token)
        return self._sign("JWT", claims)

    def verify(self, token: str, *, typ: str) -> dict[str, Any] | None:
        """Verify a token this provider signed (for userinfo and introspection).

        Returns the claims, or ``None`` for anything that is not a valid, unexpired token of this
        issuer with the given ``typ``; callers answer ``invalid_token`` / ``active: false``.
        """
        try:
            decoded = jwt.decode(token, self._key_for, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError):
            return None
        if decoded.header.get("typ") != typ:
            return None
        claims = dict(decoded.claims)
        if claims.get("iss") != self.issuer:
            return None
        return claims

    def verify_access_token(
        self, token: str, *, now: int, expired_ok: bool = False
    ) -> dict[str, Any] | None:
        """The claims of an access token this provider signed that is in force at ``now``, or
        ``None`` (userinfo answers ``invalid_token``, introspection ``active: false``).
        ``expired_ok``: a token past its ``exp`` is still returned (revocation looks it up to
        revoke its grant; introspection answers it ``active: false`` itself).

        The signature alone does not make the times sensible: a key that signed a token whose
        ``exp`` is NaN, Infinity, ``true`` or the year 10000 must not make it valid forever (or
        crash the comparison). RFC 7519 §4.1.4 ``exp``: "the current date/time MUST be before
        the expiration date/time". ``iat``, ``nbf`` and ``auth_time`` must be NumericDates that
        are not in the future (beyond :data:`CLOCK_SKEW`), and none may come after ``exp``.
        """
        claims = self.verify(token, typ="at+jwt")
        if claims is None or not _times_in_force(claims, now, expired_ok=expired_ok):
            return None
        for name in ("sub", "jti", "client_id"):
            value = claims.get(name)
            if not isinstance(value, str) or not value:
                return None
        return claims

    def _key_for(self, obj: Any) -> Any:
        kid = obj.headers().get("kid")
        key = self.keys.find(kid) if isinstance(kid, str) else None
        if key is None:
            raise ValueError("unknown kid")
        return key
