"""Signing keys: generated on first start, stored, loaded once, published with a ``kid``.

DESIGN.md's performance rule: a private-key import costs tens of milliseconds, so keys are parsed
once, here, and the loaded objects are reused for every token. The ``kid`` is the RFC 7638 JWK
thumbprint, so it is stable and derived from the key itself.

Rotation (:func:`rotate`) makes a new key current and marks the old one retired; the retired key
stays in the JWKS until every token it signed has expired, so resource servers can keep verifying
them (OIDC Core §10.1.1). Every provider process follows the database through a :class:`KeyStore`,
so a rotation, or a key another process generated while starting at the same moment, is picked up
without a restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from .clock import Clock
from .db import Database
from .models import SigningKey

__all__ = ["KeyRing", "KeyStore", "load_key_ring", "rotate"]

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


def load_key_ring(
    session: Session,
    now: int,
    *,
    max_token_lifetime: int,
    imported: dict[str, RSAKey] | None = None,
) -> KeyRing:
    """Load the keys, generating the first one if the database has none.

    ``imported`` caches parsed keys by ``kid`` across loads: a key is parsed once per process.
    """
    rows = list(session.scalars(select(SigningKey).order_by(SigningKey.created_at, SigningKey.kid)))
    current_rows = [r for r in rows if r.retired_at is None]
    loaded = imported if imported is not None else {}
    if not current_rows:
        row, key = _new_key(now)
        session.add(row)
        session.commit()
        rows.append(row)
        current_rows = [row]
        loaded[row.kid] = key
    current_row = current_rows[-1]
    published_rows = sorted(
        (r for r in rows if r.retired_at is None or r.retired_at + max_token_lifetime >= now),
        key=lambda r: (r.retired_at is None, r.created_at),  # retired first, current last
    )
    for r in published_rows:
        if r.kid not in loaded:
            loaded[r.kid] = RSAKey.import_key(r.private_jwk)
    return KeyRing(
        current=loaded[current_row.kid], published=tuple(loaded[r.kid] for r in published_rows)
    )


class KeyStore:
    """The keys one provider process signs and verifies with, following the database.

    The key list is re-read at most every ``refresh_interval`` seconds (one small query; only keys
    not seen before are parsed), and at once when a token names a ``kid`` this process does not
    know yet. So every process starts signing with a rotated key within that interval, and a
    retired key stays published for the longest token lifetime *plus* that interval: a process
    may sign with it until its next read.
    """

    def __init__(
        self, db: Database, clock: Clock, *, max_token_lifetime: int, refresh_interval: int = 60
    ) -> None:
        self.db = db
        self.clock = clock
        self.window = max_token_lifetime + refresh_interval
        self.refresh_interval = refresh_interval
        self._imported: dict[str, RSAKey] = {}
        self._lock = threading.Lock()
        self._ring, self._read_at = self._read()

    def _read(self) -> tuple[KeyRing, int]:
        now = self.clock.now()
        with self.db.session() as s:
            ring = load_key_ring(s, now, max_token_lifetime=self.window, imported=self._imported)
        return ring, now

    def ring(self, *, at_least_every: int | None = None) -> KeyRing:
        interval = self.refresh_interval if at_least_every is None else at_least_every
        if abs(self.clock.now() - self._read_at) >= interval:
            with self._lock:
                if abs(self.clock.now() - self._read_at) >= interval:
                    self._ring, self._read_at = self._read()
        return self._ring

    @property
    def current(self) -> RSAKey:
        return self.ring().current

    @property
    def kid(self) -> str:
        return self.ring().kid

    def jwks(self) -> dict[str, Any]:
        return self.ring().jwks()

    def find(self, kid: str) -> RSAKey | None:
        key = self.ring().find(kid)
        if key is None:
            # Perhaps another process's new key: look again (one small query, like the grant
            # lookup every such request makes anyway).
            key = self.ring(at_least_every=0).find(kid)
        return key


def rotate(session: Session, now: int) -> str:
    """Retire every current key and make a new one current; returns the new ``kid``."""
    for row in session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        row.retired_at = now
    row, _ = _new_key(now)
    session.add(row)
    session.commit()
    return row.kid
