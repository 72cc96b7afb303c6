"""What the provider signs: ID tokens (OIDC Core §2) and JWT access tokens (RFC 9068).

Both carry the authentication context — ``acr``, ``amr``, ``auth_time`` — that travelled from the
login, through the authorization code, to here; a refresh copies it unchanged.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from .keys import ALGORITHM, KeyStore

__all__ = ["AuthContext", "TokenSigner", "at_hash"]


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


class TokenSigner:
    def __init__(self, keys: KeyStore, *, issuer: str, audience: str) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience

    def _sign(self, typ: str, claims: Mapping[str, Any]) -> str:
        ring = self.keys.ring()
        header = {"alg": ALGORITHM, "kid": ring.kid, "typ": typ}
        return jwt.encode(header, dict(claims), ring.current, algorithms=[ALGORITHM])

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
    ) -> str:
        """RFC 9068 §2.2: ``iss``, ``exp``, ``aud``, ``sub``, ``client_id``, ``iat``, ``jti``
        are REQUIRED; ``auth_time``, ``acr`` and ``amr`` carry the authentication (§2.2.1).

        RFC 9068 §2.1: the header "typ" MUST be "at+jwt", so an ID token can never be
        mistaken for an access token.
        """
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "client_id": client_id,
            "iat": now,
            "exp": now + lifetime,
            "jti": jti,
            "scope": scope,
        }
        if context is not None:
            claims.update(acr=context.acr, amr=list(context.amr), auth_time=context.auth_time)
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

    def _key_for(self, obj: Any) -> Any:
        kid = obj.headers().get("kid")
        key = self.keys.find(kid) if isinstance(kid, str) else None
        if key is None:
            raise ValueError("unknown kid")
        return key
