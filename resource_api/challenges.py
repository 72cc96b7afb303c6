"""``WWW-Authenticate: Bearer ...`` values, formatted to the letter.

Grammar (RFC 9110 §11.2, §5.6.4)::

    challenge     = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param    = token BWS "=" BWS ( token / quoted-string )
    quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
    qdtext        = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
    quoted-pair   = "\\" ( HTAB / SP / VCHAR / obs-text )

RFC 6750 §3 restricts the Bearer attributes further: ``error`` and ``error_description`` "MUST NOT
include characters outside the set %x20-21 / %x23-5B / %x5D-7E", and ``scope`` is a space-separated
list of scope-tokens (RFC 6749 §3.3). RFC 9470 §3 adds ``acr_values`` ("a space-separated string
listing the authentication context class reference values in order of preference") and ``max_age``
(a non-negative integer, seconds). RFC 9728 §5.1 adds ``resource_metadata``: the URL of the
protected resource's metadata document (:mod:`resource_api.resource_metadata`). Our extension,
``authorization_details``, carries the RFC 9396 entries the user must approve for this request,
base64url of their JSON array (:mod:`resource_api.authorization_details`). Every value we send
is ASCII; nothing the token or the request carries can put a CR, LF or a bare quote into the
header.

Pure: no Flask.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .authorization_details import challenge_value

__all__ = ["bearer_challenge", "quote", "sanitize_description"]

_NOT_QDTEXT = re.compile(r"[^\t\x20-\x7e]")
_NOT_RFC6750 = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def quote(value: str) -> str:
    """A quoted-string for ``value``: ``\\`` and ``"`` escaped, control and non-ASCII characters
    replaced by ``?`` (a header must never carry CR or LF)."""
    cleaned = _NOT_QDTEXT.sub("?", value)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sanitize_description(text: str) -> str:
    """Bring human text into the RFC 6750 §3 set for ``error`` / ``error_description``."""
    # "Values for the "error_description" attribute MUST NOT include characters outside the set
    # %x20-21 / %x23-5B / %x5D-7E." — so no double quote and no backslash, even escaped.
    return _NOT_RFC6750.sub("?", text.replace('"', "'").replace("\\", "/"))


def bearer_challenge(
    *,
    scheme: str = "Bearer",
    realm: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
    scope: Sequence[str] = (),
    acr_values: Sequence[str] = (),
    max_age: int | None = None,
    resource_metadata: str | None = None,
    algs: Sequence[str] = (),
    authorization_details: Sequence[str] = (),
) -> str:
    """One ``Bearer`` challenge. With no argument: ``Bearer`` alone, the RFC 6750 §3 answer to a
    request that carried no credentials ("the resource server SHOULD NOT include an error code").

    ``scheme="DPoP"``: the same challenge on the RFC 9449 §7.1 scheme, whose parameters are
    RFC 6750's plus ``algs``, "a space-delimited list of the JWS alg (Algorithm) Header values the
    resource server supports" — RFC 9470 §3 defines its error for both schemes."""
    params: list[str] = []
    if realm is not None:
        params.append(f"realm={quote(realm)}")
    if error is not None:
        params.append(f"error={quote(sanitize_description(error))}")
    if error_description is not None:
        params.append(f"error_description={quote(sanitize_description(error_description))}")
    if scope:
        params.append(f"scope={quote(' '.join(scope))}")
    if acr_values:
        params.append(f"acr_values={quote(' '.join(acr_values))}")
    if max_age is not None:
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise ValueError(f"max_age must be an integer >= 0, not {max_age!r}")
        # A token (digits), as in RFC 9470 §3's example: max_age=5.
        params.append(f"max_age={max_age}")
    if authorization_details:
        params.append(f"authorization_details={quote(challenge_value(authorization_details))}")
    if resource_metadata is not None:
        # RFC 9728 §5.1: "resource_metadata: The URL of the protected resource metadata."
        params.append(f"resource_metadata={quote(resource_metadata)}")
    if algs:
        params.append(f"algs={quote(' '.join(algs))}")
    return f"{scheme} " + ", ".join(params) if params else scheme
