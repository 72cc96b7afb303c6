"""Checking a DPoP proof (RFC 9449 §4.3), for the servers: the provider's token and userinfo
endpoints, the resource API library, the gateway and the sideband.

:func:`check_proof` does every check of §4.3 that needs no memory: one well-formed JWT, its
``typ``, ``alg`` and public ``jwk``, the signature, ``htm``, ``htu``, the ``iat`` window, and — at a
protected resource — ``ath``. It returns a :class:`Proof`; the caller then does what needs state:
the ``nonce`` it gave out (§8, §9) and ``jti`` replay (§11.1), each in its own store. The §4.3 list,
in the RFC's words, next to the code that keeps it:

1. "There is not more than one DPoP HTTP request header field." (the caller: it has the headers)
2. "The DPoP HTTP request header field value is a single and well-formed JWT."
3. "All required claims per Section 4.2 are contained in the JWT."
4. "The typ JOSE Header Parameter has the value dpop+jwt."
5. "The alg JOSE Header Parameter indicates a registered asymmetric digital signature algorithm
   [IANA.JOSE.ALGS], is not none, is supported by the application, and is acceptable per local
   policy."
6. "The JWT signature verifies with the public key contained in the jwk JOSE Header Parameter."
7. "The jwk JOSE Header Parameter does not contain a private key."
8. "The htm claim matches the HTTP method of the current request."
9. "The htu claim matches the HTTP URI value for the HTTP request in which the JWT was received,
   ignoring any query and fragment parts."
10. "If the server provided a nonce value to the client, the nonce claim matches the server-provided
    nonce value." (the caller)
11. "The creation time of the JWT, as determined by either the iat claim or a server managed
    timestamp via the nonce claim, is within an acceptable window (see Section 11.1)."
12. "If presented to a protected resource in conjunction with an access token, ensure that the
    value of the ath claim equals the hash of that access token, [and] confirm that the public key
    to which the access token is bound matches the public key from the DPoP proof." (``ath`` here;
    the binding with :func:`check_binding`)

Every failure raises :class:`~client_sdk.errors.InvalidDPoPProof` with a description that names the
check; servers answer it ``invalid_dpop_proof``. Pure: plain values in, a value out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import struct
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64decode

from client_sdk.dpop import DPOP_ALGORITHMS, PROOF_TYPE, access_token_hash, htu_of, jwk_thumbprint
from client_sdk.errors import InvalidDPoPProof

__all__ = [
    "DEFAULT_LEEWAY",
    "DEFAULT_MAX_AGE",
    "Nonces",
    "Proof",
    "ProofChecker",
    "check_binding",
]

#: Seconds a proof stays acceptable after its ``iat`` (§11.1: "a relatively short time window").
DEFAULT_MAX_AGE = 60
#: Seconds of clock difference allowed each way between the client and the server.
DEFAULT_LEEWAY = 30

# A JWK's private members, by key type (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2): none may be present.
_PRIVATE_MEMBERS = frozenset(("d", "p", "q", "dp", "dq", "qi", "oth", "k"))
# Which key type each algorithm signs with, and for EC the curve (RFC 7518 §3.4).
_KEY_TYPE: dict[str, tuple[str, str | None]] = {
    "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "ES512": ("EC", "P-521"),
    "Ed25519": ("OKP", "Ed25519"), "EdDSA": ("OKP", None),
    **dict.fromkeys(("PS256", "PS384", "PS512", "RS256", "RS384", "RS512"), ("RSA", None)),
}  # fmt: skip
_MAX_PROOF_LENGTH = 8192
_MAX_JTI_LENGTH = 256


@dataclass(frozen=True)
class Proof:
    """A proof that passed the stateless checks. ``jkt`` is its key's RFC 7638 thumbprint;
    ``expires_at`` the last moment it is acceptable, so a ``jti`` store need keep it no longer."""

    jkt: str
    jti: str
    iat: int
    htm: str
    htu: str
    nonce: str | None
    expires_at: float


def _registry(alg: str) -> JWSRegistry:
    registry = JWSRegistry(algorithms=[alg], strict_check_header=False)
    # joserfc's default (512 bytes) is below the header of a proof with a 2048-bit RSA jwk.
    registry.max_header_length = 4096
    return registry


def _segment(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(urlsafe_b64decode(text.encode("ascii")))
    except (ValueError, UnicodeError, RecursionError):
        raise InvalidDPoPProof(f"the DPoP proof's {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise InvalidDPoPProof(f"the DPoP proof's {what} is not a JSON object")
    return value


class ProofChecker:
    """The stateless §4.3 checks, with the server's policy: ``algorithms`` accepted, ``max_age``
    (seconds a proof is good for after its ``iat``) and ``leeway`` (clock difference allowed).

    Thread-safe. It remembers the keys of the last ``key_cache`` proof headers it saw, so a client
    that sends many proofs with one key costs one key import (DESIGN.md "Performance rules").
    """

    def __init__(
        self,
        *,
        algorithms: Collection[str] = DPOP_ALGORITHMS,
        max_age: int = DEFAULT_MAX_AGE,
        leeway: int = DEFAULT_LEEWAY,
        key_cache: int = 1024,
    ) -> None:
        unknown = set(algorithms) - set(DPOP_ALGORITHMS)
        if unknown or not algorithms:
            raise ValueError(
                f"DPoP algorithms must be asymmetric signature algorithms among "
                f"{', '.join(DPOP_ALGORITHMS)}; not {sorted(unknown)}"
            )
        self.algorithms = tuple(a for a in DPOP_ALGORITHMS if a in set(algorithms))
        self.max_age = max_age
        self.leeway = leeway
        self._registries = {alg: _registry(alg) for alg in self.algorithms}
        self._keys: dict[str, tuple[ECKey | RSAKey | OKPKey, str]] = {}
        self._key_cache = key_cache
        self._lock = threading.Lock()

    def check(
        self, proof: str, *, method: str, url: str, now: float, access_token: str | None = None
    ) -> Proof:
        """Check ``proof`` for a ``method`` request to ``url`` (the URL the client used: the
        server's external URL) at ``now``; with ``access_token`` at a protected resource."""
        # (2) a single, well-formed JWT: three base64url segments, compact serialization.
        if not isinstance(proof, str) or len(proof) > _MAX_PROOF_LENGTH:
            raise InvalidDPoPProof("the DPoP proof is missing or too long")
        parts = proof.split(".")
        if len(parts) != 3 or not all(parts[:2]):
            raise InvalidDPoPProof("the DPoP proof is not a JWT in compact serialization")
        header = _segment(parts[0], "header")
        # (4) typ: compared exactly, "dpop+jwt" (RFC 7515 §4.1.9 allows the media type's case to
        # vary, but the RFC 9449 value is what every client sends).
        if header.get("typ") != PROOF_TYPE:
            raise InvalidDPoPProof("the DPoP proof's typ header is not dpop+jwt")
        # (5) an asymmetric algorithm of our list: never none, never a MAC.
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._registries:
            raise InvalidDPoPProof(
                "the DPoP proof's alg is not accepted; use one of " + " ".join(self.algorithms)
            )
        key, jkt = self._key(parts[0], header, alg)
        # (6) the signature, with the key of the jwk header and exactly this algorithm.
        try:
            verified = jws.deserialize_compact(proof, key, registry=self._registries[alg])
        except (JoseError, ValueError, TypeError):
            raise InvalidDPoPProof("the DPoP proof's signature does not verify") from None
        try:
            claims = json.loads(verified.payload)
        except (ValueError, RecursionError):
            raise InvalidDPoPProof("the DPoP proof's payload is not JSON") from None
        if not isinstance(claims, dict):
            raise InvalidDPoPProof("the DPoP proof's payload is not a JSON object")
        return self._claims(claims, jkt, method=method, url=url, now=now, token=access_token)

    def _key(
        self, encoded: str, header: Mapping[str, Any], alg: str
    ) -> tuple[ECKey | RSAKey | OKPKey, str]:
        with self._lock:
            hit = self._keys.get(encoded)
        if hit is not None:
            return hit
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise InvalidDPoPProof("the DPoP proof has no jwk header")
        # (7) "does not contain a private key": a private member is refused, not stripped — a
        # client that sends one has leaked its key.
        if _PRIVATE_MEMBERS & set(jwk):
            raise InvalidDPoPProof("the DPoP proof's jwk contains a private key")
        kty, crv = _KEY_TYPE[alg]
        if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
            raise InvalidDPoPProof(f"the DPoP proof's jwk is not a key for {alg}")
        try:
            key = import_key(dict(jwk))
            jkt = jwk_thumbprint(jwk)
        except (JoseError, ValueError, TypeError):
            raise InvalidDPoPProof("the DPoP proof's jwk is not a valid public key") from None
        if not isinstance(key, ECKey | RSAKey | OKPKey) or key.is_private:
            raise InvalidDPoPProof("the DPoP proof's jwk is not a public key")
        if isinstance(key, RSAKey) and key.raw_value.key_size < 2048:
            raise InvalidDPoPProof("the DPoP proof's RSA key is shorter than 2048 bits")
        with self._lock:
            if len(self._keys) >= self._key_cache:
                self._keys.pop(next(iter(self._keys)))
            self._keys[encoded] = (key, jkt)
        return key, jkt

    def _claims(
        self,
        claims: Mapping[str, Any],
        jkt: str,
        *,
        method: str,
        url: str,
        now: float,
        token: str | None,
    ) -> Proof:
        # (3) the required claims of §4.2, each of its type.
        jti, htm, htu, iat = (claims.get(n) for n in ("jti", "htm", "htu", "iat"))
        if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI_LENGTH:
            raise InvalidDPoPProof("the DPoP proof has no usable jti claim")
        if not isinstance(htm, str) or not isinstance(htu, str):
            raise InvalidDPoPProof("the DPoP proof lacks its htm or htu claim")
        if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
            raise InvalidDPoPProof("the DPoP proof has no iat claim (a number of seconds)")
        # (8) htm: "The value of the HTTP method (Section 9.1 of [RFC9110]) of the request" —
        # methods are case-sensitive (RFC 9110 §9.1).
        if htm != method:
            raise InvalidDPoPProof("the DPoP proof's htm is not the method of this request")
        # (9) htu, both sides normalised alike (client_sdk.dpop.htu_of).
        try:
            same = htu_of(htu) == htu_of(url)
        except ValueError:
            same = False
        if not same:
            raise InvalidDPoPProof("the DPoP proof's htu is not the URI of this request")
        # (11) iat within [now - max_age - leeway, now + leeway].
        if iat > now + self.leeway:
            raise InvalidDPoPProof("the DPoP proof was issued in the future (iat)")
        if iat < now - self.max_age - self.leeway:
            raise InvalidDPoPProof("the DPoP proof is too old (iat): make a new one per request")
        # (12) ath at a protected resource; a proof for the token endpoint carries none.
        if token is not None:
            ath = claims.get("ath")
            if not isinstance(ath, str) or not hmac.compare_digest(
                ath.encode(), access_token_hash(token).encode()
            ):
                raise InvalidDPoPProof("the DPoP proof's ath is not the hash of this access token")
        nonce = claims.get("nonce")
        if nonce is not None and not isinstance(nonce, str):
            raise InvalidDPoPProof("the DPoP proof's nonce is not a string")
        return Proof(
            jkt=jkt,
            jti=jti,
            iat=int(iat),
            htm=htm,
            htu=htu,
            nonce=nonce,
            expires_at=float(iat) + self.max_age + self.leeway,
        )


def check_binding(claims: Mapping[str, Any], proof: Proof) -> None:
    """§4.3 (12) and §6.1: the access token's ``cnf.jkt`` is the proof key's thumbprint.
    ``InvalidDPoPProof`` when the token is not bound or bound to another key."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str):
        raise InvalidDPoPProof("the access token is not bound to a DPoP key (no cnf.jkt)")
    if not hmac.compare_digest(jkt.encode(), proof.jkt.encode()):
        raise InvalidDPoPProof("the DPoP proof is signed with another key than the token's")


class Nonces:
    """Server-provided DPoP nonces (RFC 9449 §8, §9) without shared state.

    §8: "The nonce is opaque to the client"; the server decides how long one is good for. Ours
    is the number of the current time window (``period`` seconds) with an HMAC of it under
    ``secret``: any process holding the same secret makes and accepts the same nonces, so nothing
    is stored or shared per nonce. A nonce is accepted in its own window and the next one (so one
    handed out just before a window ends still works), and the nonce of the current window is
    sent with every answer (``DPoP-Nonce``) so clients move on to it: that is the rotation.
    """

    def __init__(self, secret: bytes, *, period: int = 300) -> None:
        if len(secret) < 16:
            raise ValueError("a DPoP nonce secret needs at least 16 bytes")
        if period < 1:
            raise ValueError("period must be at least one second")
        self._secret = secret
        self.period = period

    def _for_window(self, window: int) -> str:
        packed = struct.pack(">Q", window)
        mac = hmac.new(self._secret, b"dpop-nonce:" + packed, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(packed + mac).rstrip(b"=").decode("ascii")

    def current(self, now: float) -> str:
        """The nonce to hand out at ``now``."""
        return self._for_window(int(now // self.period))

    def accepts(self, nonce: str, now: float) -> bool:
        """Whether ``nonce`` is one of ours from this window or the one before."""
        window = int(now // self.period)
        encoded = nonce.encode("ascii", errors="replace")
        return any(
            hmac.compare_digest(encoded, self._for_window(w).encode("ascii"))
            for w in (window, window - 1)
        )
