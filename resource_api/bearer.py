"""The access token of a request, from plain header values (RFC 6750 §2, RFC 9449 §7.1), for code
that is not a Flask view (the gateway, the sideband).

- §2.1 — ``Authorization: Bearer <b64token>``;
  ``b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="``.
- §2.3 — the URI query method "SHOULD NOT be used"; we refuse it (``invalid_request``), as we
  refuse a request that uses "more than one method for including an access token" (§3.1).
- §3 — a request without credentials we support gets a bare challenge, no error code:
  :func:`bearer_token` returns ``None`` then.
- RFC 9449 §7.1 — ``Authorization: DPoP <token>``, the same ``token68`` syntax:
  :func:`credentials` returns the scheme with the token.

Pure: no web framework.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .dpop import Credentials
from .errors import InvalidRequest

__all__ = ["bearer_token", "credentials", "is_b64token"]

_B64TOKEN_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
# RFC 9110 §11.4: credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
_CREDENTIALS = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?", re.DOTALL)
_QUERY_TOKEN = re.compile(r"(?:^|&)access_token(?:=|&|$)")


def is_b64token(value: str) -> bool:
    """Whether ``value`` is a ``b64token`` (RFC 6750 §2.1): one or more of ALPHA, DIGIT and
    ``-._~+/``, then any number of ``=``. (One C pass over the bytes: a regular expression costs
    twice as much on a JWT, and this runs on every request.)"""
    body = value.rstrip("=")
    return (
        bool(body) and body.isascii() and not body.encode("ascii").translate(None, _B64TOKEN_CHARS)
    )


def bearer_token(authorization: Sequence[str], query_string: str = "") -> str | None:
    """The bearer token of ``Authorization``: :func:`credentials` for the ``Bearer`` scheme only."""
    found = credentials(authorization, query_string)
    return found.token if found is not None and not found.is_dpop else None


def credentials(authorization: Sequence[str], query_string: str = "") -> Credentials | None:
    """The token of ``Authorization`` (every value the request carried under that name) with its
    scheme, ``bearer`` or ``dpop``; ``None`` without credentials we support;
    :class:`InvalidRequest` when malformed or sent twice."""
    in_query = bool(query_string) and _QUERY_TOKEN.search(query_string) is not None
    if len(authorization) > 1:
        raise InvalidRequest("the request carries more than one Authorization header")
    if in_query:
        if authorization:
            raise InvalidRequest(
                "the access token must be sent one way only, not in several places"
            )
        raise InvalidRequest(
            "send the access token in the Authorization header (Bearer); "
            "tokens in the URI are not accepted"
        )
    if not authorization:
        return None
    header = authorization[0].strip()
    match = _CREDENTIALS.fullmatch(header)
    if match is None:
        raise InvalidRequest("the Authorization header is malformed")
    scheme, rest = match.group(1), match.group(2)
    if "," in header:
        raise InvalidRequest("the request carries more than one set of credentials")
    name = scheme.lower()
    if name not in ("bearer", "dpop"):
        return None  # another scheme: no authentication information we support (§3)
    if rest is None or not is_b64token(rest.strip()):
        shown = "DPoP" if name == "dpop" else "Bearer"
        raise InvalidRequest(f"the Authorization header does not hold a valid {shown} token")
    return Credentials(name, rest.strip())
