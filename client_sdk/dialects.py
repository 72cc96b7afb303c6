"""The challenges the SDK answers with a new authorization request, one dialect per row.

Pure: strings in, frozen values out; no HTTP library is imported here.

====================== ========= ============================================ ==================
dialect                status    ``WWW-Authenticate`` (``Bearer``, ``DPoP``)  the new request
====================== ========= ============================================ ==================
RFC 9470 §3            401       ``error="insufficient_user_authentication"`` ``acr_values``,
                                 with ``acr_values``, ``max_age``             ``max_age`` (§4)
RFC 6750 §3.1          403 (401) ``error="insufficient_scope"``, ``scope``    ``scope``: the
                                                                              union of both
Entra claims challenge 401       ``error="insufficient_claims"``,             ``claims``: the
                                 ``claims="<base64url JSON>"``                decoded JSON
====================== ========= ============================================ ==================

Every dialect may carry RFC 9728 §5.1 ``resource_metadata``. RFC 6750 §3.1 gives
``insufficient_scope`` status 403; a 401 with it is read the same way (some servers send it so).
Other errors (``invalid_token``, ``invalid_request``) are not answered by a new authorization.

The Entra claims challenge (Microsoft identity platform, "Claims challenges, claims requests and
client capabilities"): the API answers ``401`` with ``error="insufficient_claims"`` and a
``claims`` value that is a base64-encoded JSON claims request; the client decodes it and sends it,
as JSON, in the ``claims`` parameter of a new authorization request. Microsoft's examples use the
standard base64 alphabet with padding; base64url (RFC 4648 §5), padded or not, is read too. A value
that is not base64 of a JSON object whose members are JSON objects (OIDC Core §5.5: ``userinfo``,
``id_token``; Entra adds ``access_token``) raises
:class:`~client_sdk.errors.InvalidClaimsChallenge`.

A new dialect is a row of :data:`DIALECTS`: the ``error`` it answers, the statuses it comes
with, and how to read its parameters into a :class:`StepUpChallenge`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from client_sdk.challenges import Challenge, StepUpChallenge, parse_www_authenticate
from client_sdk.errors import InvalidClaimsChallenge

__all__ = [
    "DIALECTS",
    "INSUFFICIENT_CLAIMS",
    "INSUFFICIENT_SCOPE",
    "INSUFFICIENT_USER_AUTHENTICATION",
    "Dialect",
    "authorization_challenge",
    "canonical_claims",
    "decode_claims",
    "find_authorization_challenge",
    "merge_claims",
    "resource_metadata_url",
]

INSUFFICIENT_USER_AUTHENTICATION = "insufficient_user_authentication"
INSUFFICIENT_SCOPE = "insufficient_scope"
INSUFFICIENT_CLAIMS = "insufficient_claims"

# RFC 9470 §3 and RFC 6750 §3 define their errors for these schemes (RFC 9449 §7.1 for DPoP).
_OAUTH_SCHEMES = ("bearer", "dpop")
# RFC 4648 §4 and §5 alphabets, then up to two "=" of padding.
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
# A claims request is a few hundred bytes; a longer value is refused before it is decoded.
_CLAIMS_LONGEST = 8192


@dataclass(frozen=True)
class Dialect:
    """One kind of challenge the SDK answers with a new authorization request."""

    error: str
    statuses: frozenset[int]
    read: Callable[[Challenge], StepUpChallenge | None]


def _read_step_up(ch: Challenge) -> StepUpChallenge | None:
    # RFC 9470 §3, with its max_age rule (StepUpChallenge.from_challenge).
    return StepUpChallenge.from_challenge(ch)


def _words(value: str | None) -> list[str]:
    return [w for w in (value or "").split(" ") if w]


def _read_scope(ch: Challenge) -> StepUpChallenge | None:
    # RFC 6750 §3: "scope ... a space-delimited list of case-sensitive scope values indicating the
    # required scope of the access token for accessing the requested resource". Without it there
    # is nothing to ask for: the 403 goes to the caller as it came.
    scope = _words(ch.params.get("scope"))
    if not scope:
        return None
    return StepUpChallenge(
        scheme=ch.scheme,
        error=INSUFFICIENT_SCOPE,
        scope=scope,
        error_description=ch.params.get("error_description"),
        realm=ch.params.get("realm"),
        resource_metadata=ch.params.get("resource_metadata"),
    )


def _read_claims(ch: Challenge) -> StepUpChallenge:
    raw = ch.params.get("claims")
    if raw is None:
        raise InvalidClaimsChallenge(
            "WWW-Authenticate: an insufficient_claims challenge without a claims parameter"
        )
    return StepUpChallenge(
        scheme=ch.scheme,
        error=INSUFFICIENT_CLAIMS,
        claims=decode_claims(raw),
        error_description=ch.params.get("error_description"),
        realm=ch.params.get("realm"),
        resource_metadata=ch.params.get("resource_metadata"),
    )


DIALECTS: tuple[Dialect, ...] = (
    Dialect(INSUFFICIENT_USER_AUTHENTICATION, frozenset({401}), _read_step_up),
    Dialect(INSUFFICIENT_SCOPE, frozenset({403, 401}), _read_scope),
    Dialect(INSUFFICIENT_CLAIMS, frozenset({401}), _read_claims),
)
_BY_ERROR = {d.error: d for d in DIALECTS}


def find_authorization_challenge(status: int, value: str | Sequence[str]) -> StepUpChallenge | None:
    """The first challenge of ``value`` that a new authorization request answers, or ``None``.

    ``status`` is the response's status code: each dialect comes with its own. Raises
    :class:`~client_sdk.errors.ChallengeParseError` when ``value`` is malformed, and its subclass
    :class:`~client_sdk.errors.InvalidClaimsChallenge` when an ``insufficient_claims`` challenge's
    ``claims`` cannot be decoded.
    """
    return authorization_challenge(status, parse_www_authenticate(value))


def authorization_challenge(status: int, challenges: Sequence[Challenge]) -> StepUpChallenge | None:
    """:func:`find_authorization_challenge` for challenges already parsed."""
    for ch in challenges:
        if ch.scheme not in _OAUTH_SCHEMES:
            continue
        dialect = _BY_ERROR.get(ch.params.get("error", ""))
        if dialect is None or status not in dialect.statuses:
            continue
        found = dialect.read(ch)
        if found is not None:
            return found
    return None


def resource_metadata_url(challenges: Sequence[Challenge]) -> str | None:
    """RFC 9728 §5.1: the ``resource_metadata`` of the first OAuth challenge that has one."""
    for ch in challenges:
        if ch.scheme in _OAUTH_SCHEMES and ch.params.get("resource_metadata"):
            return ch.params["resource_metadata"]
    return None


def decode_claims(value: str) -> dict[str, Any]:
    """The JSON claims request carried base64-encoded in an ``insufficient_claims`` challenge."""
    if len(value) > _CLAIMS_LONGEST:
        raise InvalidClaimsChallenge(
            f"WWW-Authenticate: the claims value is {len(value)} characters long; "
            f"at most {_CLAIMS_LONGEST} are read"
        )
    if not _BASE64.fullmatch(value) or len(value.rstrip("=")) % 4 == 1:
        raise InvalidClaimsChallenge("WWW-Authenticate: the claims value is not base64url")
    body = value.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        claims = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidClaimsChallenge(
            "WWW-Authenticate: the claims value does not decode to JSON"
        ) from None
    # OIDC Core §5.5: the claims parameter is a JSON object whose members (userinfo, id_token;
    # Entra's access_token) are JSON objects naming the claims requested.
    if not isinstance(claims, dict) or not claims:
        raise InvalidClaimsChallenge("WWW-Authenticate: the claims value is not a JSON object")
    for name, member in claims.items():
        if not isinstance(member, dict):
            raise InvalidClaimsChallenge(
                f"WWW-Authenticate: the claims request's {name[:40]!r} member is not a JSON object"
            )
    return claims


def merge_claims(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    """Both claims requests in one: members of both are merged, ``first`` wins where both name
    the same claim."""
    merged: dict[str, Any] = {
        k: dict(v) if isinstance(v, Mapping) else v for k, v in second.items()
    }
    for name, member in first.items():
        if isinstance(member, Mapping) and isinstance(merged.get(name), dict):
            merged[name].update(member)
        else:
            merged[name] = dict(member) if isinstance(member, Mapping) else member
    return merged


def canonical_claims(claims: Mapping[str, Any]) -> str:
    """One text for one claims request (sorted keys, no spaces): a cache key, and the value of
    the authorization request's ``claims`` parameter."""
    return json.dumps(claims, sort_keys=True, separators=(",", ":"))
