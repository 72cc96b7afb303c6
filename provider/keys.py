"""Signing keys: generated on first start, stored, loaded once, published with a ``kid``.

DESIGN.md's performance rule: a private-key import costs tens of milliseconds, so keys are parsed
once, here, and the loaded objects are reused for every token. The ``kid`` is the RFC 7638 JWK
thumbprint, so it is stable and derived from the key itself.

Rotation (:func:`rotate`) makes a new key current and marks the old one retired; the retired key
stays in the JWKS until every token it signed has expired (``retired_at`` + the longest lifetime),
so resource servers can keep verifying them (OIDC Core §10.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joserfc.jwk import RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import SigningKey

__all__ = ["KeyRing", "load_key_ring", "rotate"]

ALGORITHM = "RS256"  # OIDC Core §15.1: every OP MUST support RS256 for ID tokens.
RSA_BITS = 2048


@dataclass(frozen=True)
class KeyRing:
    """The current signing key and the public keys still published."""

    current: RSAKey
    published: tuple[RSAKey, ...]

    @property
    def kid(self) -> str:
        return str(self.current.kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self.published]}

    def find(self, kid: str) -> RSAKey | None:
        for key in self.published:
            if key.kid == kid:
                return key
        return None


def _new_key(now: int) -> tuple[SigningKey, RSAKey]:
    key = RSAKey.generate_key(RSA_BITS, parameters={"alg": ALGORITHM, "use": "sig"}, private=True)
    key.ensure_kid()  # RFC 7638 thumbprint
    row = SigningKey(
        kid=str(key.kid), alg=ALGORITHM, private_jwk=key.as_dict(private=True), created_at=now
    )
    return row, key


def load_key_ring(session: Session, now: int, *, max_token_lifetime: int) -> KeyRing:
    """Load the keys, generating the first one if the database has none."""
    rows = list(session.scalars(select(SigningKey).order_by(SigningKey.created_at)))
    current_rows = [r for r in rows if r.retired_at is None]
    loaded: dict[str, RSAKey] = {}
    if not current_rows:
        row, key = _new_key(now)
        session.add(row)
        session.commit()
        rows.append(row)
        current_rows = [row]
        loaded[row.kid] = key
    current_row = current_rows[-1]
    published_rows = [
        r for r in rows if r.retired_at is None or r.retired_at + max_token_lifetime >= now
    ]
    for r in published_rows:
        if r.kid not in loaded:
            loaded[r.kid] = RSAKey.import_key(r.private_jwk)
    return KeyRing(current=loaded[current_row.kid], published=tuple(loaded.values()))


def rotate(session: Session, now: int) -> str:
    """Retire every current key and make a new one current; returns the new ``kid``."""
    for row in session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        row.retired_at = now
    row, _ = _new_key(now)
    session.add(row)
    session.commit()
    return row.kid
