"""The identity headers a gateway sets on allowed requests (DESIGN.md contract 10).

A legacy application behind the gateway (or behind nginx, Envoy or Traefik asking the sideband)
reads who the caller is from plain request headers, as Okta's Access Gateway does for header-based
apps:

=======================  ===========================================================
``X-Stepup-Subject``      the token's ``sub``
``X-Stepup-Acr``          the token's ``acr`` (the level the user reached)
``X-Stepup-Amr``          the token's ``amr`` values, space-separated (RFC 8176 names)
``X-Stepup-Auth-Time``    the token's ``auth_time``, whole seconds since the epoch
``X-Stepup-Client-Id``    the token's ``client_id``
=======================  ===========================================================

A header whose claim is absent (or not a value a header can carry) is not sent. Whatever the
client sent under any of these names is removed first, in any letter case — and also with
underscores for hyphens (``X_Stepup_Subject``): CGI-style servers (WSGI's ``environ``, PHP's
``$_SERVER``) read both spellings as the same variable, so an underscore copy would be a spoof.

Pure: no web framework.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from client_sdk.wire import numeric_date

__all__ = [
    "IDENTITY_HEADERS",
    "identity_headers",
    "is_identity_header",
    "without_identity_headers",
]

IDENTITY_HEADERS: tuple[str, ...] = (
    "X-Stepup-Subject",
    "X-Stepup-Acr",
    "X-Stepup-Amr",
    "X-Stepup-Auth-Time",
    "X-Stepup-Client-Id",
)
_NAMES = frozenset(h.lower() for h in IDENTITY_HEADERS)

# A header value must not carry CR, LF or NUL (RFC 9110 §5.5); we send visible ASCII and spaces
# only, so a claim with anything else is left out rather than mangled.
_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def is_identity_header(name: str) -> bool:
    """Whether ``name`` (any case, ``_`` or ``-``) is one of the identity headers."""
    return name.lower().replace("_", "-") in _NAMES


def without_identity_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` less every copy of an identity header the client may have sent."""
    return [(k, v) for k, v in headers if not is_identity_header(k)]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and _VALUE.fullmatch(value) else None


def identity_headers(claims: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The identity headers for a token's verified ``claims``, in the order of the contract."""
    out: list[tuple[str, str]] = []
    sub = _text(claims.get("sub"))
    if sub is not None:
        out.append(("X-Stepup-Subject", sub))
    acr = _text(claims.get("acr"))
    if acr is not None:
        out.append(("X-Stepup-Acr", acr))
    amr = claims.get("amr")
    if isinstance(amr, list):
        values = [v for v in amr if isinstance(v, str) and _VALUE.fullmatch(v) and " " not in v]
        if values:
            out.append(("X-Stepup-Amr", " ".join(values)))
    auth_time = numeric_date(claims.get("auth_time"))  # the one NumericDate rule, as at the API
    if auth_time is not None:
        out.append(("X-Stepup-Auth-Time", str(math.floor(auth_time))))
    client_id = _text(claims.get("client_id"))
    if client_id is not None:
        out.append(("X-Stepup-Client-Id", client_id))
    return out
