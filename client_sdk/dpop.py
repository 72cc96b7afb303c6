"""DPoP proofs (RFC 9449): the key a client proves, and the proof JWT it signs.

The SDK signs a proof for every request that carries a DPoP-bound token and for every token
request (:class:`DPoPKey`); the provider and the resource servers check them
(:mod:`client_sdk.dpop_check`). Both sides share the wire rules here, the way all three packages
share :mod:`client_sdk.wire`:

- §4.2 — the proof is a JWS with header ``typ: dpop+jwt``, ``alg`` (asymmetric) and ``jwk`` (the
  public key), and claims ``jti``, ``htm``, ``htu``, ``iat``; ``ath`` when an access token is sent
  with it, ``nonce`` when the server gave one.
- §4.2 ``htu``: "The HTTP target URI (Section 7.1 of [RFC9110]) of the request to which the JWT is
  attached, without query and fragment parts" — :func:`htu_of`; §4.3: servers "SHOULD employ
  Syntax-Based Normalization (Section 6.2.2 of [RFC3986]) and Scheme-Based Normalization
  (Section 6.2.3 of [RFC3986]) before comparing the htu claim" — the same function, both sides.
- §4.2 ``ath``: "the base64url encoding of the SHA-256 hash of the ASCII encoding of the associated
  access token's value" — :func:`access_token_hash`.
- §6.1 ``cnf.jkt``: the JWK SHA-256 thumbprint (RFC 7638) of the key — :func:`jwk_thumbprint`.

Pure: no HTTP library. Keys are generated and signed with joserfc (on ``cryptography``), which the
SDK already uses for ID tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

__all__ = [
    "DPOP_ALGORITHMS",
    "PROOF_TYPE",
    "DPoPKey",
    "access_token_hash",
    "htu_of",
    "jwk_thumbprint",
]

PROOF_TYPE = "dpop+jwt"

#: RFC 9449 §4.2: "alg: An identifier for a JWS asymmetric digital signature algorithm ... It MUST
#: NOT be none or an identifier for a symmetric algorithm (Message Authentication Code (MAC))."
#: The algorithms accepted by default; servers advertise them as
#: ``dpop_signing_alg_values_supported`` and in the challenge's ``algs``. ``Ed25519`` is the fully
#: specified name (RFC 9864) of what older clients call ``EdDSA``; both are accepted.
DPOP_ALGORITHMS: tuple[str, ...] = (
    "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512",
    "Ed25519", "EdDSA",
)  # fmt: skip

# RFC 7638 §3.2: "the required members" of each key type, the only ones the thumbprint hashes.
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"),
                       "OKP": ("crv", "kty", "x")}  # fmt: skip

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
# RFC 3986 §2.3: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: the base64url SHA-256 of the key's required members, as JSON with the names
    in lexicographic order and no whitespace. ``ValueError`` for a key type we do not know or a
    member that is missing or not a string."""
    members = _THUMBPRINT_MEMBERS.get(jwk.get("kty"))  # type: ignore[arg-type]
    if members is None:
        raise ValueError(f"unsupported key type {jwk.get('kty')!r}")
    required: dict[str, str] = {}
    for name in members:
        value = jwk.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"the {jwk.get('kty')} key has no {name!r} member")
        required[name] = value
    text = json.dumps(required, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return _b64(hashlib.sha256(text.encode("utf-8")).digest())


def access_token_hash(access_token: str) -> str:
    """RFC 9449 §4.2 ``ath``: base64url(SHA-256(ASCII(access token)))."""
    return _b64(hashlib.sha256(access_token.encode("ascii", errors="replace")).digest())


def _normalise_percent(text: str) -> str:
    # RFC 3986 §6.2.2.1: percent-encodings are case-insensitive (upper-case them); §6.2.2.2:
    # encoded unreserved characters are decoded.
    def fix(m: re.Match[str]) -> str:
        char = chr(int(m.group(0)[1:], 16))
        return char if char in _UNRESERVED else m.group(0).upper()

    return _PERCENT.sub(fix, text)


def htu_of(url: str) -> str:
    """The ``htu`` of a request to ``url``: the URI without query and fragment, normalised
    (RFC 3986 §6.2.2 and §6.2.3): scheme and host lower-case, the scheme's default port dropped,
    an empty path made ``/``, percent-encodings upper-cased, encoded unreserved characters decoded.
    ``ValueError`` when ``url`` is not an absolute ``http``/``https`` URI."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URI: {exc}") from None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError("not an absolute http or https URI")
    if parts.username is not None or parts.password is not None:
        raise ValueError("a URI with user information")
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    authority = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{authority}{_normalise_percent(parts.path) or '/'}"


def _generate(alg: str) -> ECKey | RSAKey | OKPKey:
    if alg in ("ES256", "ES384", "ES512"):
        return ECKey.generate_key({"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg])
    if alg in ("Ed25519", "EdDSA"):
        return OKPKey.generate_key("Ed25519")
    if alg in ("PS256", "PS384", "PS512", "RS256", "RS384", "RS512"):
        return RSAKey.generate_key(2048)
    raise ValueError(f"cannot make a DPoP key for {alg!r}; use one of {', '.join(DPOP_ALGORITHMS)}")


@dataclass(frozen=True)
class DPoPKey:
    """A client's DPoP key pair and the proofs it signs (RFC 9449 §4).

    ``DPoPKey.generate()`` makes an EC P-256 key for ES256 (RFC 9449's own example, and the
    cheapest to verify of the strong ones). Keep one per client: tokens are bound to its
    thumbprint :attr:`jkt`, so a new key means new tokens. :meth:`private_jwk` and
    :meth:`from_private_jwk` let an application keep it across runs (store it like a password).
    """

    key: ECKey | RSAKey | OKPKey = field(repr=False)
    alg: str = "ES256"
    public_jwk: Mapping[str, Any] = field(init=False, repr=False)
    jkt: str = field(init=False)

    def __post_init__(self) -> None:
        if self.alg not in DPOP_ALGORITHMS:
            raise ValueError(f"{self.alg!r} is not a DPoP signature algorithm")
        public = {k: v for k, v in self.key.as_dict(private=False).items() if k != "kid"}
        object.__setattr__(self, "public_jwk", public)
        object.__setattr__(self, "jkt", jwk_thumbprint(public))

    @classmethod
    def generate(cls, alg: str = "ES256") -> DPoPKey:
        return cls(_generate(alg), alg)

    @classmethod
    def from_private_jwk(cls, jwk: Mapping[str, Any], alg: str = "ES256") -> DPoPKey:
        from joserfc.jwk import import_key

        key = import_key(dict(jwk))
        if not isinstance(key, ECKey | RSAKey | OKPKey) or not key.is_private:
            raise ValueError("a DPoP key needs a private EC, RSA or OKP JWK")
        return cls(key, alg)

    def private_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=True))

    def proof(
        self,
        method: str,
        url: str,
        *,
        now: float,
        access_token: str | None = None,
        nonce: str | None = None,
        jti: str | None = None,
    ) -> str:
        """A proof for one request: ``method url`` at ``now``; with ``access_token`` (its ``ath``)
        when the request carries one, and ``nonce`` when the server asked for one (§8, §9)."""
        header = {"typ": PROOF_TYPE, "alg": self.alg, "jwk": dict(self.public_jwk)}
        claims: dict[str, Any] = {
            # §4.2 jti: "a unique identifier for the DPoP proof JWT ... MUST be assigned such that
            # there is a negligible probability that the same value will be assigned to any
            # other DPoP proof" — 128 random bits.
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method.upper(),
            "htu": htu_of(url),
            "iat": int(now),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        payload = json.dumps(claims, separators=(",", ":"))
        return jws.serialize_compact(header, payload, self.key, algorithms=[self.alg])
