"""DPoP at the provider (RFC 9449): proofs at the token and userinfo endpoints.

The stateless checks of a proof (§4.3) are :class:`client_sdk.dpop_check.ProofChecker`'s; this
module adds what needs the provider: its nonces, the ``jti`` store, and the rules of the token
request.

- §5 — "To request an access token that is bound to a public key using DPoP, the client MUST
  provide a valid DPoP proof JWT in a DPoP header when making an access token request to the
  authorization server's token endpoint." Every grant accepts one; the access token is then bound
  (``cnf.jkt``, §6.1) and its ``token_type`` is ``DPoP``. A proof that fails is
  ``invalid_dpop_proof``: "If the DPoP proof is invalid, the authorization server issues an error
  response per Section 5.2 of [RFC6749] with invalid_dpop_proof as the value of the error
  parameter." More than one ``DPoP`` header is invalid (§4.3 (1)).
- §5 — "Refresh tokens issued to confidential clients are not bound to the DPoP proof public key
  because they are already sender-constrained with a different existing mechanism"; those of a
  public client are: "the authorization server MUST bind the refresh token to the public key in
  the DPoP proof". A public client's bound refresh token needs a proof with that key.
- §5.2 ``dpop_bound_access_tokens`` — "If true, the authorization server MUST reject token
  requests from this client that do not contain the DPoP header": ``invalid_dpop_proof``, the
  error for a proof that is not there to be valid.
- §8 — the provider asks for nonces (``dpop_require_nonce``, on by default): a proof without a
  nonce, or with one that is not current, is answered ``400 use_dpop_nonce`` with the nonce to
  use in ``DPoP-Nonce``; every token response carries the current nonce (rotation).
  :class:`~client_sdk.dpop_check.Nonces` makes them from the time window and a secret every
  provider process shares, so no nonce is stored.
- §10 — an authorization code requested with ``dpop_jkt`` is redeemed only with a proof signed
  by that key.
- §11.1 — "the server MUST ensure that the jti value is only used once": an accepted proof is
  recorded by one atomic ``INSERT`` (:func:`provider.store.remember_proof`), in the database that
  every provider process shares.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error

from client_sdk.dpop_check import Nonces, Proof, ProofChecker
from client_sdk.errors import InvalidDPoPProof

from . import store
from .clients import ClientAdapter
from .clock import Clock
from .db import Database

__all__ = ["InvalidDPoPProofError", "ProviderDPoP", "UseDPoPNonceError"]
# How often a process deletes the proofs that have expired.
_PURGE_EVERY = 60


class InvalidDPoPProofError(OAuth2Error):  # type: ignore[misc]
    """RFC 9449 §5: ``invalid_dpop_proof``, a ``400`` token error response."""

    error = "invalid_dpop_proof"
    status_code = 400

    def __init__(self, description: str, nonce: str | None = None) -> None:
        super().__init__(description=description)
        self.nonce = nonce

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = super().get_headers()
        if self.nonce is not None:
            headers.append(("DPoP-Nonce", self.nonce))
        return headers


class UseDPoPNonceError(InvalidDPoPProofError):
    """RFC 9449 §8: "the authorization server responds to requests that do not include a nonce
    with an HTTP 400 (Bad Request) error response per Section 5.2 of [RFC6749] using
    use_dpop_nonce as the error code value" and the nonce in the ``DPoP-Nonce`` header."""

    error = "use_dpop_nonce"


class ProviderDPoP:
    """The provider's DPoP: one per application, shared by its threads."""

    def __init__(
        self, db: Database, clock: Clock, *, issuer: str, nonce_secret: bytes, require_nonce: bool
    ) -> None:
        self.db = db
        self.clock = clock
        self.checker = ProofChecker()
        self.nonces = Nonces(nonce_secret)
        self.require_nonce = require_nonce
        self.token_url = f"{issuer}/token"
        self.userinfo_url = f"{issuer}/userinfo"
        self._purged_at = 0
        self._lock = threading.Lock()

    @property
    def algorithms(self) -> tuple[str, ...]:
        """``dpop_signing_alg_values_supported`` (RFC 9449 §5.1)."""
        return self.checker.algorithms

    def current_nonce(self) -> str | None:
        """The nonce every token response hands out, when nonces are in use."""
        return self.nonces.current(self.clock.now()) if self.require_nonce else None

    def token_request(
        self, proofs: Sequence[str], client: ClientAdapter, *, bound_to: str | None, what: str
    ) -> str | None:
        """Check the ``DPoP`` headers of a token request; the thumbprint to bind the tokens to,
        or ``None`` when the client sent no proof and needs none.

        ``bound_to`` is the key the grant presented is already bound to (a code's ``dpop_jkt``, a
        public client's refresh token), ``what`` names that grant in the error.
        """
        nonce = self.current_nonce()
        if not proofs:
            if client.dpop_required:
                raise InvalidDPoPProofError(
                    "This client must send a DPoP proof with every token request "
                    "(dpop_bound_access_tokens).",
                    nonce,
                )
            if bound_to is not None:
                raise InvalidDPoPProofError(
                    f"The {what} is bound to a DPoP key: send a DPoP proof signed with it.", nonce
                )
            return None
        proof = self._check(proofs, "POST", self.token_url, access_token=None)
        if bound_to is not None and proof.jkt != bound_to:
            raise InvalidDPoPProofError(
                f"The DPoP proof is signed with another key than the one the {what} is bound to.",
                nonce,
            )
        self._remember(proof)
        return proof.jkt

    def resource_request(
        self, proofs: Sequence[str], method: str, access_token: str, url: str | None = None
    ) -> Proof:
        """Check the proof sent to one of the provider's protected resources (§7) with a DPoP
        token — userinfo, or the factor API at ``url``; the caller compares its key with the
        token's ``cnf.jkt``. Raises :class:`InvalidDPoPProof` (answered with a ``DPoP``
        challenge)."""
        if len(proofs) != 1:
            raise InvalidDPoPProof("send exactly one DPoP header with a DPoP-bound access token")
        now = self.clock.now()
        proof = self.checker.check(
            proofs[0],
            method=method,
            url=url or self.userinfo_url,
            now=now,
            access_token=access_token,
        )
        if proof.nonce is not None and not self.nonces.accepts(proof.nonce, now):
            raise InvalidDPoPProof("the DPoP proof's nonce is not one this provider gave out")
        if not self._record(proof, now):
            raise InvalidDPoPProof("the DPoP proof was used before (jti): make one per request")
        return proof

    # -- steps ------------------------------------------------------------------------------

    def _check(
        self, proofs: Sequence[str], method: str, url: str, *, access_token: str | None
    ) -> Proof:
        now = self.clock.now()
        nonce = self.current_nonce()
        # §4.3 (1): "There is not more than one DPoP HTTP request header field."
        if len(proofs) > 1:
            raise InvalidDPoPProofError("Send one DPoP header, not several.", nonce)
        try:
            proof = self.checker.check(
                proofs[0], method=method, url=url, now=now, access_token=access_token
            )
        except InvalidDPoPProof as exc:
            raise InvalidDPoPProofError(_sentence(str(exc)), nonce) from None
        # §8: a nonce we did not give (or one of a window gone by) is answered with a fresh one.
        if proof.nonce is None:
            if self.require_nonce:
                raise UseDPoPNonceError("Send the DPoP proof again with this nonce.", nonce)
        elif not self.nonces.accepts(proof.nonce, now):
            raise UseDPoPNonceError(
                "The DPoP nonce is not current: send the proof again with this one.",
                self.nonces.current(now),
            )
        return proof

    def _remember(self, proof: Proof) -> None:
        if not self._record(proof, self.clock.now()):
            raise InvalidDPoPProofError(
                "This DPoP proof was used before (jti): make a new one for every request.",
                self.current_nonce(),
            )

    def _record(self, proof: Proof, now: int) -> bool:
        key = hashlib.sha256(f"{proof.jkt}.{proof.jti}".encode()).hexdigest()
        with self.db.engine.connect() as conn:
            with self.db.writing():
                fresh = store.remember_proof(conn, key, int(proof.expires_at) + 1, now)
            self._purge(conn, now)
        return fresh

    def _purge(self, conn: Any, now: int) -> None:
        with self._lock:
            due = now - self._purged_at >= _PURGE_EVERY
            if due:
                self._purged_at = now
        if due:
            with self.db.writing():
                store.forget_expired_proofs(conn, now)


def _sentence(text: str) -> str:
    """An SDK check's message as an error_description: capitalised, with a full stop."""
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
