"""The authorization request's authentication parameters, parsed (pure: no Flask, no I/O).

OIDC Core 1.0 §3.1.2.1: ``prompt``, ``max_age``, ``acr_values``, ``login_hint``; §5.5 and
§5.5.1.1: the ``claims`` parameter, of which only an essential ``acr`` for the ID token changes
how the user must authenticate; §6.1 and §6.2: ``request`` and ``request_uri``, refused. The
result is the :class:`~provider.authn_policy.AuthnRequest` the policy decides on; a malformed
value is a :class:`BadRequest` that goes back to the client.
"""

from __future__ import annotations

import json
import re

from client_sdk.wire import ascii_int

from .authn_policy import AuthnRequest

__all__ = [
    "MAX_AGE_LIMIT",
    "BadRequest",
    "check_dpop_jkt",
    "parse_authn_request",
    "refuse_request_objects",
]

#: The largest ``max_age`` accepted: ten digits, some 317 years.
MAX_AGE_LIMIT = 9_999_999_999
# RFC 7638 SHA-256 thumbprint: 32 octets, base64url without padding.
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")


class BadRequest(Exception):
    """An authorization request parameter is invalid (sent back to the client)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def parse_authn_request(params: dict[str, str], *, started_at: int) -> AuthnRequest:
    """OIDC Core §3.1.2.1 ``prompt``, ``max_age``, ``acr_values``, ``login_hint`` and §5.5
    ``claims`` (only the essential ``acr`` of the ID token matters here)."""
    max_age: int | None = None
    if "max_age" in params:
        # OIDC Core §3.1.2.1: max_age is a number of seconds; ASCII decimal digits only.
        max_age = ascii_int(params["max_age"], maximum=MAX_AGE_LIMIT)
        if max_age is None:
            raise BadRequest(
                "invalid_request", "max_age must be a non-negative integer in ASCII digits"
            )
    prompt = frozenset(params.get("prompt", "").split())
    essential = _essential_acr(params.get("claims"))
    return AuthnRequest(
        acr_values=tuple(params.get("acr_values", "").split()),
        essential_acr=essential,
        max_age=max_age,
        prompt=prompt,
        interaction_started_at=started_at,
        login_hint=params.get("login_hint") or None,
        # RFC 9396: checked and normalised at /authorize (provider.authorization_details).
        transaction=bool(params.get("authorization_details")),
    )


def _essential_acr(raw: str | None) -> tuple[str, ...] | None:
    """OIDC Core §5.5.1.1: ``{"id_token": {"acr": {"essential": true, "values": [...]}}}``."""
    if not raw:
        return None
    try:
        claims = json.loads(raw)
    except ValueError:
        raise BadRequest("invalid_request", "claims is not valid JSON") from None
    if not isinstance(claims, dict):
        raise BadRequest("invalid_request", "claims must be a JSON object")
    id_token = claims.get("id_token")
    if id_token is None:
        return None
    if not isinstance(id_token, dict):
        raise BadRequest("invalid_request", "claims.id_token must be a JSON object")
    acr = id_token.get("acr")
    if not isinstance(acr, dict) or acr.get("essential") is not True:
        return None
    if "values" in acr:
        values = acr["values"]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise BadRequest("invalid_request", "claims.id_token.acr.values must be strings")
        return tuple(values)
    if isinstance(acr.get("value"), str):
        return (acr["value"],)
    raise BadRequest("invalid_request", "an essential acr claim needs value or values")


def refuse_request_objects(params: dict[str, str]) -> None:
    """OIDC Core §6.1 and §6.2: request objects are not supported, and say so.

    ``request_not_supported``: "The OP does not support use of the request parameter";
    ``request_uri_not_supported``: "The OP does not support use of the request_uri parameter".
    Ignoring them instead would be dangerous here: an RP that puts ``acr_values``, ``max_age`` or
    ``claims`` only inside the request object would get a code for a weaker login than it asked
    for, without a word. Discovery says ``request_parameter_supported: false`` and
    ``request_uri_parameter_supported: false``. (RFC 6749 §3.1: an empty value is as omitted.)
    """
    if params.get("request"):
        raise BadRequest(
            "request_not_supported",
            "Request objects are not supported: send the parameters in the query or the form",
        )
    if params.get("request_uri"):
        raise BadRequest(
            "request_uri_not_supported",
            "request_uri is not supported: send the parameters in the query or the form",
        )


def check_dpop_jkt(params: dict[str, str]) -> None:
    """RFC 9449 §10: ``dpop_jkt`` is "the JWK Thumbprint [RFC7638] of the proof-of-possession
    public key using the SHA-256 hash function"; the code it gets can only be redeemed with a
    proof signed by that key (:mod:`provider.dpop`). Anything else is ``invalid_request``."""
    value = params.get("dpop_jkt")
    if value is not None and not _JKT.fullmatch(value):
        raise BadRequest(
            "invalid_request",
            "dpop_jkt must be a JWK SHA-256 thumbprint: 43 base64url characters",
        )
