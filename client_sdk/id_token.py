"""ID token validation: OpenID Connect Core 1.0 §3.1.3.7, plus what a step-up needs.

Pure: the caller passes the JWKS document (a dict), the expected values and ``now``. On top of
§3.1.3.7 the step-up checks are: ``acr`` is one of the values requested (RFC 9470 §5 leaves the
check to the client; §3.1.3.7 item 12), ``auth_time`` is within ``max_age`` plus a small leeway
(§3.1.3.7 item 13, §3.1.2.1), and ``sub`` is the user who held the token being replaced.
Refreshed ID tokens follow §12.2 instead (no nonce, the same ``sub``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection, Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from client_sdk.errors import InvalidIDToken, LevelNotReached, SubjectMismatch
from client_sdk.protocol import Requirement
from client_sdk.wire import numeric_date

__all__ = ["DEFAULT_LEEWAY", "UnknownKeyId", "validate_id_token"]

DEFAULT_LEEWAY = 60
"""Seconds of clock skew tolerated on ``exp``, ``iat`` and ``auth_time`` + ``max_age``."""


class UnknownKeyId(InvalidIDToken):
    """The token's ``kid`` is not in the JWKS: the caller refetches the JWKS once and retries."""


def validate_id_token(
    id_token: str,
    *,
    jwks: Mapping[str, Any],
    issuer: str,
    client_id: str,
    now: float,
    nonce: str | None,
    requirement: Requirement | None = None,
    previous_sub: str | None = None,
    access_token: str | None = None,
    algorithms: Collection[str] = ("RS256",),
    leeway: int = DEFAULT_LEEWAY,
    refreshed: bool = False,
) -> dict[str, Any]:
    """Return the ID token's claims after every check; raise :class:`InvalidIDToken` otherwise.

    ``nonce`` is the value sent in the authorization request (``None`` for a refreshed token, which
    OIDC Core §12.2 says should carry none — and if it does, it is not checked against a request).
    """
    # §3.1.3.7 item 6: "the Client MUST validate the signature of all other ID Tokens according to
    # JWS using the algorithm specified in the JWT alg Header Parameter. The Client MUST use the
    # keys provided by the Issuer." Item 7: the alg "SHOULD be the default of RS256"; "none" and
    # the HMAC algorithms are never accepted.
    allowed = [a for a in algorithms if a != "none" and not a.startswith("HS")]
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        token = jwt.decode(id_token, keys, algorithms=allowed)
    except InvalidKeyIdError as exc:
        raise UnknownKeyId(f"the ID token's kid is not in the JWKS: {exc}", claim="kid") from exc
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidIDToken(f"the ID token's signature does not verify: {exc}") from exc
    claims: dict[str, Any] = dict(token.claims)

    # Item 2: "The Issuer Identifier for the OpenID Provider ... MUST exactly match the value of
    # the iss (issuer) Claim."
    if claims.get("iss") != issuer:
        raise InvalidIDToken(f"iss is {claims.get('iss')!r}, expected {issuer!r}", claim="iss")

    # Item 3: "The Client MUST validate that the aud (audience) Claim contains its client_id value
    # ... The ID Token MUST be rejected if the ID Token does not list the Client as a valid
    # audience, or if it contains additional audiences not trusted by the Client."
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:
        raise InvalidIDToken(f"aud {aud!r} does not contain {client_id!r}", claim="aud")
    if any(a != client_id for a in audiences):
        raise InvalidIDToken(f"aud {aud!r} names audiences this client does not trust", claim="aud")
    azp = claims.get("azp")
    if azp is not None and azp != client_id:
        raise InvalidIDToken(f"azp {azp!r} is not {client_id!r}", claim="azp")

    # Item 9: "The current time MUST be before the time represented by the exp Claim (possibly
    # allowing for some small leeway to account for clock skew)."
    exp = _number(claims, "exp")
    if now >= exp + leeway:
        raise InvalidIDToken("the ID token has expired", claim="exp")
    # Item 10: "The iat Claim can be used to reject tokens that were issued too far away from the
    # current time": one issued in the future is refused.
    iat = _number(claims, "iat")
    if iat > now + leeway:
        raise InvalidIDToken("the ID token was issued in the future (iat)", claim="iat")
    # OIDC Core §2 auth_time: "Time when the End-User authentication occurred" — a NumericDate,
    # and not one in the future: NaN or a future time would pass any max_age check below.
    if "auth_time" in claims:
        auth_time = numeric_date(claims["auth_time"])
        if auth_time is None:
            raise InvalidIDToken("the ID token's auth_time is not a valid time", claim="auth_time")
        if auth_time > now + leeway:
            raise InvalidIDToken(
                "the ID token says the user authenticated in the future", claim="auth_time"
            )

    # Item 11: "If a nonce value was sent in the Authentication Request, a nonce Claim MUST be
    # present and its value checked to verify that it is the same value as the one that was sent".
    # §12.2 for a refreshed token: "it SHOULD NOT have a nonce Claim Value ... however, if it is
    # present, its value MUST be the same as in the ID Token issued at the time of the original
    # authentication".
    nonce_required = nonce is not None and not (refreshed and "nonce" not in claims)
    if nonce_required and claims.get("nonce") != nonce:
        raise InvalidIDToken("the ID token's nonce does not match the request", claim="nonce")

    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise InvalidIDToken("the ID token has no sub", claim="sub")
    # §12.2 (refresh): "its sub Claim Value MUST be the same as in the ID Token issued when the
    # original authentication occurred". A step-up must likewise elevate the same user.
    if previous_sub is not None and sub != previous_sub:
        raise SubjectMismatch(
            "the step-up authenticated a different user than the one holding the token",
            claim="sub",
        )

    if access_token is not None and "at_hash" in claims:
        _check_at_hash(claims["at_hash"], access_token, token.header.get("alg", "RS256"))

    if not refreshed:
        _check_level(claims, requirement or Requirement(), now, leeway)
    return claims


def _check_level(
    claims: Mapping[str, Any], requirement: Requirement, now: float, leeway: int
) -> None:
    # Item 12: "If the acr Claim was requested, the Client SHOULD check that the asserted Claim
    # Value is appropriate." The provider returns the level reached, which is one of the values
    # requested when one was achievable: anything else means the level was not reached.
    if requirement.acr_values and claims.get("acr") not in requirement.acr_values:
        raise LevelNotReached(
            f"the provider authenticated the user at acr {claims.get('acr')!r}, not at one of "
            f"{list(requirement.acr_values)}",
            claim="acr",
        )
    if requirement.max_age is not None:
        # §3.1.2.1 max_age: "When max_age is used, the ID Token returned MUST include an
        # auth_time Claim Value." Item 13: the client "SHOULD check the auth_time Claim value and
        # request re-authentication if it determines too much time has elapsed".
        if not isinstance(claims.get("auth_time"), int | float):
            raise LevelNotReached(
                "max_age was requested but the ID token has no auth_time", claim="auth_time"
            )
        if now - claims["auth_time"] > requirement.max_age + leeway:
            raise LevelNotReached(
                f"the user last authenticated {int(now - claims['auth_time'])} s ago, more than "
                f"max_age={requirement.max_age}",
                claim="auth_time",
            )


def _number(claims: Mapping[str, Any], name: str) -> float:
    """A required time claim: an RFC 7519 NumericDate (:func:`client_sdk.wire.numeric_date`)."""
    if name not in claims:
        raise InvalidIDToken(f"the ID token has no numeric {name}", claim=name)
    value = numeric_date(claims[name])
    if value is None:
        raise InvalidIDToken(f"the ID token's {name} is not a valid time", claim=name)
    return value


def _check_at_hash(at_hash: Any, access_token: str, alg: str) -> None:
    # §3.1.3.8: the left-most half of the hash of the access token, base64url-encoded, with the
    # hash of the JWS alg (SHA-256 for RS256/PS256/ES256).
    bits = alg[2:] if alg[:2] in ("RS", "PS", "ES") else "256"
    name = {"256": "sha256", "384": "sha384", "512": "sha512"}.get(bits, "sha256")
    digest = hashlib.new(name, access_token.encode("ascii")).digest()
    expected = base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")
    if at_hash != expected:
        raise InvalidIDToken("at_hash does not match the access token", claim="at_hash")
