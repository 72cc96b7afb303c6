"""DPoP at a protected resource (RFC 9449 §7), for the Flask library, the gateway and the sideband.

A request's credentials come on one of two schemes. What each must be, after the token itself is
validated (RFC 9068 §4):

- ``Authorization: DPoP <token>`` (§7.1): the token must be DPoP-bound (``cnf.jkt``, §6.1) and
  come with exactly one ``DPoP`` header holding a proof that passes every check of §4.3
  (:class:`client_sdk.dpop_check.ProofChecker`: ``typ``, ``alg``, public ``jwk``, signature,
  ``htm``, ``htu`` against the URL the client used, ``iat``, ``ath``), is signed by the token's
  key, carries a nonce this server gave out when nonces are on (§9), and was not seen before
  (§11.1, ``jti``).
- ``Authorization: Bearer <token>``: the token must not be DPoP-bound. §7.2 — "a protected
  resource that supports both ... MUST reject" a DPoP-bound token presented as a bearer token
  (it would make the binding worthless): ``invalid_token`` on the ``DPoP`` scheme.

Refusals are :class:`~resource_api.errors.BearerError` subclasses whose challenge is on the
``DPoP`` scheme, with ``algs`` (§7.1). ``use_dpop_nonce`` (§9) comes with the nonce in
``DPoP-Nonce``.

**Replay across processes.** The ``jti`` memory (:class:`ReplayCache`) lives in the process: a
server run with several worker processes remembers a proof only in the worker that saw it, so a
proof replayed within its minute to another worker passes. Give every worker one
:class:`ReplayStore` backed by shared storage (a database, Redis) when that matters, or turn on
nonces, whose secret the workers share and which bound a proof to the current window.

Pure: plain values in, a decision (or a raised error) out; no Flask.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from client_sdk.dpop import DPOP_ALGORITHMS
from client_sdk.dpop_check import Nonces, Proof, ProofChecker
from client_sdk.errors import InvalidDPoPProof

from .errors import DPoPNonceRequired, DPoPProofRefused, InvalidToken

__all__ = [
    "Credentials",
    "DPoPVerifier",
    "ReplayCache",
    "ReplayStore",
    "bound_key",
]


@dataclass(frozen=True)
class Credentials:
    """The access token of a request and the scheme it came on: ``bearer`` or ``dpop``."""

    scheme: str
    token: str

    def __init__(self, scheme: str, token: str) -> None:
        # One is made per request: filled through __dict__, half the cost of the generated
        # frozen __init__ (object.__setattr__ per field); still frozen for everyone else.
        fields = self.__dict__
        fields["scheme"] = scheme
        fields["token"] = token

    @property
    def is_dpop(self) -> bool:
        return self.scheme == "dpop"


def bound_key(claims: Mapping[str, Any]) -> str | None:
    """The thumbprint a token is bound to (``cnf.jkt``, RFC 9449 §6.1), or ``None``."""
    cnf = claims.get("cnf")
    if cnf is None:
        return None  # a bearer token: no ABC instance check on the common path
    jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
    return jkt if isinstance(jkt, str) else None


class ReplayStore(Protocol):
    """Where accepted proofs are remembered: ``remember`` answers False for one seen before."""

    def remember(self, key: str, expires_at: float, now: float) -> bool: ...


class ReplayCache:
    """A :class:`ReplayStore` in the process's memory, bounded to ``max_entries``.

    Entries expire when their proof would be too old anyway. When the cache is full of live
    entries, the oldest go first: a proof could then be replayed, within its minute, after
    ``max_entries`` newer proofs — size it above the proofs one process accepts in a minute.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def remember(self, key: str, expires_at: float, now: float) -> bool:
        with self._lock:
            known = self._seen.get(key)
            if known is not None and known >= now:
                return False
            if len(self._seen) >= self.max_entries:
                for k, e in list(self._seen.items()):
                    if e < now:
                        del self._seen[k]
                while len(self._seen) >= self.max_entries:
                    del self._seen[next(iter(self._seen))]
            self._seen.pop(key, None)
            self._seen[key] = expires_at
            return True

    def __len__(self) -> int:
        return len(self._seen)


class DPoPVerifier:
    """The sender check of RFC 9449 §7 for one resource server.

    ``checker``: the §4.3 policy (algorithms, ``iat`` window). ``replay``: the ``jti`` memory
    (default: a :class:`ReplayCache` in this process). ``nonces``: when given, every proof must
    carry a current nonce of theirs (§9). ``clock``: seconds since the epoch, injectable.
    """

    def __init__(
        self,
        *,
        checker: ProofChecker | None = None,
        replay: ReplayStore | None = None,
        nonces: Nonces | None = None,
        clock: Callable[[], float],
    ) -> None:
        self.checker = checker or ProofChecker()
        self.replay = replay if replay is not None else ReplayCache()
        self.nonces = nonces
        self.clock = clock

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The ``algs`` of the challenge (§7.1)."""
        return self.checker.algorithms or DPOP_ALGORITHMS

    def check(
        self,
        credentials: Credentials,
        claims: Mapping[str, Any],
        *,
        proofs: Sequence[str],
        method: str,
        url: str | None,
    ) -> None:
        """Raise the refusal for a request whose token (``claims``, already validated) was sent
        as ``credentials`` with the ``DPoP`` header values ``proofs``, to ``method url`` — the
        URL the client used, or ``None`` when the carrier cannot tell it (then a DPoP request is
        refused: its ``htu`` cannot be checked)."""
        jkt = bound_key(claims)
        if not credentials.is_dpop:
            if jkt is not None:
                raise InvalidToken(
                    "this access token is DPoP-bound: send it as Authorization: DPoP <token> "
                    "with a DPoP proof"
                ).on_scheme("DPoP")
            return
        if jkt is None:
            raise InvalidToken(
                "this access token is not DPoP-bound: send it as Authorization: Bearer <token>"
            ).on_scheme("DPoP")
        proof = self._proof(credentials.token, proofs, method, url)
        # §4.3 (12): "confirm that the public key to which the access token is bound matches the
        # public key from the DPoP proof".
        if proof.jkt != jkt:
            raise DPoPProofRefused("the DPoP proof is signed with another key than the token's")
        now = self.clock()
        if self.nonces is not None and (
            proof.nonce is None or not self.nonces.accepts(proof.nonce, now)
        ):
            raise DPoPNonceRequired(
                "send the request again with a DPoP proof carrying the nonce of DPoP-Nonce",
                self.nonces.current(now),
            )
        key = hashlib.sha256(f"{proof.jkt}.{proof.jti}".encode()).hexdigest()
        # §11.1: "the server MUST ensure that the jti value is only used once".
        if not self.replay.remember(key, proof.expires_at, now):
            raise DPoPProofRefused("this DPoP proof was used before: make one per request")

    def _proof(self, token: str, proofs: Sequence[str], method: str, url: str | None) -> Proof:
        # §4.3 (1): "There is not more than one DPoP HTTP request header field."
        if len(proofs) != 1:
            raise DPoPProofRefused(
                "send exactly one DPoP header with the proof for this request"
                if proofs
                else "a DPoP-bound token needs a DPoP header with a proof for this request"
            )
        if url is None:
            raise DPoPProofRefused("this server cannot tell the URL of the request to check htu")
        try:
            return self.checker.check(
                proofs[0], method=method, url=url, now=self.clock(), access_token=token
            )
        except InvalidDPoPProof as exc:
            raise DPoPProofRefused(str(exc)) from None
