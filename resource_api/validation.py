"""JWT access-token validation (RFC 9068 §4) with a cached, rotation-aware JWKS.

The keys come from the provider: OIDC Discovery 1.0 §4
(``{issuer}/.well-known/openid-configuration`` → ``jwks_uri``) and RFC 7517 (the JWK Set). They
are imported once per fetch and kept as key objects, never parsed per request. A token signed with
a ``kid`` we do not know triggers a refetch (the provider rotated its keys), at most once per
``min_refetch_interval``, so that a stream of tokens with made-up ``kid`` values cannot hammer the
provider. While the provider is down, the cached keys keep working.

Verified claims may be cached until the token's ``exp``, keyed by a SHA-256 hash of the token (the
token itself is never a key, so a memory dump holds no usable tokens). This is what keeps
enforcement within a few percent of a bare endpoint (docs/benchmarks.md).

Pure of Flask; the HTTP fetch is injectable (``fetch``), so tests need no socket.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import Key, import_key
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64decode

from client_sdk.wire import numeric_date

from .errors import ConfigurationError, InvalidToken, KeySetUnavailable, ResourceApiError

__all__ = [
    "DEFAULT_ALGORITHMS",
    "Fetch",
    "FetchError",
    "JwksCache",
    "JwtAccessTokenValidator",
    "TokenValidator",
    "check_times",
    "http_fetch",
    "wall_clock",
]

#: Asymmetric JWS algorithms only (RFC 7518 §3.3-3.5, RFC 8037). Never ``none``, never HMAC: an HMAC
#: "verified" with a public key as the secret is the classic algorithm-confusion forgery.
DEFAULT_ALGORITHMS: tuple[str, ...] = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
_ASYMMETRIC = frozenset(DEFAULT_ALGORITHMS)


def wall_clock() -> float:
    """``time.time()``, looked up at each call so that freezegun and friends can move it."""
    return time.time()


#: GET a URL and return the parsed JSON document; raise on any failure.
Fetch = Callable[[str], Any]


class FetchError(ResourceApiError):
    """A discovery document or JWKS could not be fetched or was not valid JSON."""


class TokenValidator(Protocol):
    """Anything that turns a bearer token into verified claims or raises :class:`InvalidToken`
    (and :class:`KeySetUnavailable` when it cannot decide yet)."""

    def validate(self, token: str) -> Mapping[str, Any]: ...


def http_fetch(timeout: float = 5.0) -> Fetch:
    """The default fetch: ``requests`` with a timeout, one pooled session."""
    import requests  # here, not at import: `stepup provider` never needs it (start-up time)

    session = requests.Session()

    def fetch(url: str) -> Any:
        try:
            response = session.get(url, timeout=timeout, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            raise FetchError(f"GET {url} failed: {exc}") from exc

    return fetch


class JwksCache:
    """The provider's signing keys: discovered lazily, imported once, refetched on rotation.

    ``refresh_interval``: keys older than this are refetched on the next use (the old ones keep
    working if that fails). ``min_refetch_interval``: the least time between two fetches.

    """

    def __init__(
        self,
        issuer: str,
        *,
        jwks_uri: str | None = None,
        fetch: Fetch | None = None,
        clock: Callable[[], float] | None = None,
        min_refetch_interval: float = 30.0,
        refresh_interval: float = 3600.0,
    ) -> None:
        self.issuer = issuer
        self._jwks_uri = jwks_uri
        self._fetch = fetch or http_fetch()
        self._clock = clock or wall_clock
        self.min_refetch_interval = min_refetch_interval
        self.refresh_interval = refresh_interval
        self._by_kid: dict[str, tuple[Key, str | None]] = {}
        self._without_kid: list[tuple[Key, str | None]] = []
        self._loaded_at: float | None = None
        self._last_attempt: float | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0
        #: Called with the ``kid`` values that disappeared from the set on a refetch.
        self.on_keys_removed: Callable[[set[str]], None] | None = None

    # -- fetching -------------------------------------------------------------------------------

    def _discover(self) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._get(url)
        # OIDC Discovery §4.3: "The issuer value returned MUST be identical to the Issuer URL that
        # was used as the prefix to /.well-known/openid-configuration to retrieve the configuration
        # information."
        if not isinstance(doc, dict) or doc.get("issuer") != self.issuer:
            raise FetchError(f"{url}: the issuer in the document is not {self.issuer!r}")
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise FetchError(f"{url}: no usable jwks_uri")
        return jwks_uri

    def _get(self, url: str) -> Any:
        self.fetch_count += 1
        try:
            return self._fetch(url)
        except FetchError:
            raise
        except Exception as exc:  # an injected fetch may raise anything; it is a failed fetch
            raise FetchError(f"GET {url} failed: {exc}") from exc

    def _load(self) -> None:
        """Fetch and import the set; on failure keep what we had. Caller holds the lock."""
        self._last_attempt = self._clock()
        if self._jwks_uri is None:
            self._jwks_uri = self._discover()
        doc = self._get(self._jwks_uri)
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise FetchError(f"{self._jwks_uri}: not a JWK Set")
        by_kid: dict[str, tuple[Key, str | None]] = {}
        without_kid: list[tuple[Key, str | None]] = []
        for jwk in doc["keys"]:
            entry = _import_signing_key(jwk)
            if entry is None:
                continue
            kid = jwk.get("kid")
            if isinstance(kid, str):
                by_kid.setdefault(kid, entry)
            else:
                without_kid.append(entry)
        removed = set(self._by_kid) - set(by_kid)
        self._by_kid, self._without_kid = by_kid, without_kid
        self._loaded_at = self._clock()
        if removed and self.on_keys_removed is not None:
            self.on_keys_removed(removed)

    def _may_fetch(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self.min_refetch_interval

    def _refresh(self, *, required: bool) -> None:
        with self._lock:
            now = self._clock()
            if not self._may_fetch(now):
                if required and self._loaded_at is None:
                    raise KeySetUnavailable(
                        f"the signing keys of {self.issuer} could not be fetched; retrying later"
                    )
                return
            try:
                self._load()
            except FetchError as exc:
                if self._loaded_at is None:
                    raise KeySetUnavailable(str(exc)) from exc
                # The provider is down: keep using the keys we have.

    # -- lookup ---------------------------------------------------------------------------------

    def keys_for(self, kid: str | None) -> list[tuple[Key, str | None]]:
        """Candidate ``(key, alg)`` pairs for a token's ``kid``; refetch if it is unknown."""
        if self._loaded_at is None:
            self._refresh(required=True)
        elif self._clock() - self._loaded_at >= self.refresh_interval:
            self._refresh(required=False)
        found = self._lookup(kid)
        if found:
            return found
        # An unknown kid: the provider may have rotated its keys. Refetch, rate-limited.
        self._refresh(required=False)
        return self._lookup(kid)

    def _lookup(self, kid: str | None) -> list[tuple[Key, str | None]]:
        if kid is None:
            return list(self._without_kid) + list(self._by_kid.values())
        entry = self._by_kid.get(kid)
        return [entry] if entry is not None else []


def _import_signing_key(jwk: Any) -> tuple[Key, str | None] | None:
    """Import one JWK if it is a public signing key; skip anything else."""
    if not isinstance(jwk, dict) or jwk.get("kty") not in ("RSA", "EC", "OKP"):
        return None  # symmetric ("oct") or unknown key types are never used to verify
    if jwk.get("use", "sig") != "sig":
        return None
    alg = jwk.get("alg")
    if alg is not None and alg not in _ASYMMETRIC:
        return None
    public = {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "oth")}
    try:
        key = import_key(public)
    except (JoseError, ValueError, TypeError):
        return None
    return key, alg if isinstance(alg, str) else None


def _b64json(segment: str) -> Any:
    try:
        return json.loads(urlsafe_b64decode(segment.encode("ascii")))
    except (ValueError, UnicodeError) as exc:
        raise InvalidToken("the access token is malformed") from exc


def _time(claims: Mapping[str, Any], name: str) -> float | None:
    """A time claim as seconds, ``None`` when absent; :class:`InvalidToken` when it is not an
    RFC 7519 §2 NumericDate (:func:`client_sdk.wire.numeric_date`): NaN and Infinity compare
    false with every time, so a token carrying them would never expire."""
    if name not in claims:
        return None
    value = numeric_date(claims[name])
    if value is None:
        raise InvalidToken(f"the access token's {name} claim is not a valid time")
    return value


def check_times(
    claims: Mapping[str, Any], now: float, leeway: float, *, required: Collection[str]
) -> None:
    """The time claims of an access token (JWT or introspection answer) at ``now``.

    RFC 7519 §4.1.4 ``exp``: "the current date/time MUST be before the expiration date/time";
    §4.1.5 ``nbf``: "MUST NOT be accepted for processing" before it. RFC 9068 §4 allows "some
    small leeway" for clock skew, which also bounds how far in the future ``iat`` and
    ``auth_time`` may lie. A token issued, valid from, or authenticated after its own ``exp`` is
    impossible, and ``auth_time`` after ``iat`` is an authentication after the token was issued.
    """
    times = {name: _time(claims, name) for name in ("exp", "nbf", "iat", "auth_time")}
    for name in required:
        if times[name] is None:
            raise InvalidToken(f"the access token has no {name} claim")
    exp, nbf, iat, auth_time = times["exp"], times["nbf"], times["iat"], times["auth_time"]
    # RFC 9068 §4: "The current time MUST be before the time represented by the 'exp' claim.
    # Implementers MAY provide for some small leeway, usually no more than a few minutes."
    if exp is not None and now >= exp + leeway:
        raise InvalidToken("the access token has expired")
    if nbf is not None and now < nbf - leeway:
        raise InvalidToken("the access token is not valid yet (nbf)")
    if iat is not None and iat > now + leeway:
        raise InvalidToken("the access token was issued in the future (iat)")
    if auth_time is not None and auth_time > now + leeway:
        raise InvalidToken("the access token says the user authenticated in the future")
    if exp is not None and any(t is not None and t > exp for t in (nbf, iat, auth_time)):
        raise InvalidToken("the access token's times are impossible (after its exp)")
    if iat is not None and auth_time is not None and auth_time > iat + leeway:
        raise InvalidToken("the access token says the user authenticated after it was issued")


class JwtAccessTokenValidator:
    """RFC 9068 §4 validation of JWT access tokens issued by ``issuer`` for ``audience``.

    ``leeway`` (seconds) absorbs clock skew on ``exp``, ``nbf`` and ``iat``. ``cache_size``
    bounds the verified-claims cache (0 turns it off).
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        keys: JwksCache | None = None,
        jwks_uri: str | None = None,
        fetch: Fetch | None = None,
        algorithms: Collection[str] = DEFAULT_ALGORITHMS,
        leeway: float = 30.0,
        clock: Callable[[], float] | None = None,
        cache_size: int = 10_000,
        max_token_length: int = 16_384,
    ) -> None:
        unsafe = set(algorithms) - _ASYMMETRIC
        if unsafe or not algorithms:
            raise ConfigurationError(
                f"only asymmetric JWS algorithms may verify access tokens, not {sorted(unsafe)}"
            )
        self.issuer = issuer
        self.audience = audience
        self.algorithms = frozenset(algorithms)
        self.leeway = leeway
        self.clock = clock or wall_clock
        self.keys = keys or JwksCache(issuer, jwks_uri=jwks_uri, fetch=fetch, clock=self.clock)
        self.keys.on_keys_removed = self._forget_kids
        self.cache_size = cache_size
        self.max_token_length = max_token_length
        # strict_check_header off: providers may add private header parameters; "crit" is still
        # enforced (RFC 7515 §4.1.11), so an extension we do not understand is still refused.
        self._registry = JWSRegistry(algorithms=sorted(self.algorithms), strict_check_header=False)
        self._cache: dict[bytes, tuple[Mapping[str, Any], float, str | None]] = {}

    def _forget_kids(self, kids: set[str]) -> None:
        # A key the provider withdrew no longer vouches for tokens we cached under it.
        for digest, (_, _, kid) in list(self._cache.items()):
            if kid in kids:
                self._cache.pop(digest, None)

    def validate(self, token: str) -> Mapping[str, Any]:
        """Verified claims of ``token``, or :class:`InvalidToken` saying what is wrong."""
        if len(token) > self.max_token_length:
            raise InvalidToken("the access token is too long")
        now = self.clock()
        digest = hashlib.sha256(token.encode()).digest() if self.cache_size else b""
        if self.cache_size:
            hit = self._cache.get(digest)
            if hit is not None:
                if now < hit[1] + self.leeway:
                    return hit[0]
                del self._cache[digest]
        claims, kid = self._verify(token, now)
        if self.cache_size:
            nbf = claims.get("nbf")
            if not isinstance(nbf, int | float) or nbf <= now:
                self._remember(digest, claims, float(claims["exp"]), kid)
        return claims

    def _remember(
        self, digest: bytes, claims: Mapping[str, Any], exp: float, kid: str | None
    ) -> None:
        if len(self._cache) >= self.cache_size:
            now = self.clock()
            for d, (_, e, _) in list(self._cache.items()):
                if now >= e + self.leeway:
                    self._cache.pop(d, None)
            while len(self._cache) >= self.cache_size:  # still full: drop the oldest entries
                self._cache.pop(next(iter(self._cache)), None)
        self._cache[digest] = (claims, exp, kid)

    def _verify(self, token: str, now: float) -> tuple[Mapping[str, Any], str | None]:
        parts = token.split(".")
        if len(parts) == 5:
            raise InvalidToken("encrypted (JWE) access tokens are not accepted")
        if len(parts) != 3:
            raise InvalidToken("the access token is not a JWT")
        header = _b64json(parts[0])
        if not isinstance(header, dict):
            raise InvalidToken("the access token is malformed")
        alg = header.get("alg")
        # RFC 9068 §4: "The resource server MUST reject any JWT in which the value of 'alg' is
        # 'none'." We go further and accept only the configured asymmetric algorithms.
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken(f"the access token's signing algorithm {alg!r} is not accepted")
        # RFC 9068 §4: "Resource servers MUST verify that the typ header value is 'at+jwt' or
        # 'application/at+jwt' and reject tokens carrying any other value." An ID token is not an
        # access token.
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ("at+jwt", "application/at+jwt"):
            raise InvalidToken("the token is not a JWT access token (typ must be at+jwt)")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("the access token's kid is not a string")

        # RFC 9068 §4: "The resource server MUST validate the signature of all incoming JWT access
        # tokens according to [RFC7515] using the algorithm specified in the JWT 'alg' Header
        # Parameter ... using the keys provided by the authorization server."
        candidates = self.keys.keys_for(kid)
        if not candidates:
            raise InvalidToken("the access token is signed with a key this server does not know")
        verified = None
        for key, key_alg in candidates:
            if key_alg is not None and key_alg != alg:
                continue
            try:
                verified = jws.deserialize_compact(token, key, registry=self._registry)
                break
            except (JoseError, ValueError, TypeError):
                continue
        if verified is None:
            raise InvalidToken("the access token's signature is not valid")
        try:
            claims = json.loads(verified.payload)
        except ValueError as exc:
            raise InvalidToken("the access token's payload is not JSON") from exc
        if not isinstance(claims, dict):
            raise InvalidToken("the access token's payload is not a JSON object")
        self._check_claims(claims, now)
        return claims, kid

    def _check_claims(self, claims: Mapping[str, Any], now: float) -> None:
        # RFC 9068 §4: "The issuer identifier for the authorization server ... MUST exactly match
        # the value of the iss claim."
        if claims.get("iss") != self.issuer:
            raise InvalidToken("the access token was issued by another issuer")
        # RFC 9068 §4: "The resource server MUST validate that the aud claim contains a resource
        # indicator value corresponding to an identifier the resource server expects for itself."
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.audience not in audiences:
            raise InvalidToken("the access token is not meant for this API (aud)")
        check_times(claims, now, self.leeway, required=("exp", "iat"))
        # RFC 9068 §2.2: sub, client_id and jti are REQUIRED.
        for name in ("sub", "client_id", "jti"):
            value = claims.get(name)
            if not isinstance(value, str) or not value:
                raise InvalidToken(f"the access token has no {name} claim")
