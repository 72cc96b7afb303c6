"""Client authentication (RFC 6749 §2.3): one :func:`authenticate` for every endpoint a client
authenticates at — token, introspection, revocation and CIBA's backchannel endpoint.

Two rules Authlib's client authentication does not keep, kept here:

- RFC 6749 §2.3.1: for HTTP Basic, "the client identifier is encoded using the
  ``application/x-www-form-urlencoded`` encoding algorithm [...] and the encoded value is used as
  the username; the client password is encoded using the same algorithm and used as the password."
  Authlib percent-decodes without turning ``+`` back into a space, so a secret with a space never
  matches. Here both parts are form-decoded (``+`` is a space, ``%XX`` are UTF-8 octets). Many
  client libraries put the raw values in the header instead; when the form-decoded pair does not
  authenticate, the raw pair is tried too. Either way the client must know its secret exactly: the
  two readings are two interpretations of one presented credential, not a second guess.
- RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each request."
  Basic together with a ``client_secret`` in the body, or with a body ``client_id`` that is not
  Basic's, is answered ``invalid_request`` (§5.2: "utilizes more than one mechanism for
  authenticating the client") instead of silently picking one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError

if TYPE_CHECKING:
    from .clients import ClientAdapter

__all__ = [
    "authenticate",
    "basic_client",
    "basic_credentials",
    "basic_scheme",
    "several_methods",
]

Credentials = tuple[str, str]


def basic_scheme(authorization: str | None) -> str | None:
    """The credentials of an ``Authorization: Basic`` header (``""`` if none follow); ``None``
    when the header is absent or another scheme."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    return value.strip() if scheme.lower() == "basic" else None


def basic_credentials(token68: str) -> list[Credentials]:
    """The readings of a Basic credential, best first: form-decoded (RFC 6749 §2.3.1), then raw
    when that differs. Empty when the value is malformed (not base64, not UTF-8, no colon, or an
    empty part): that is "no credentials", answered ``invalid_client``."""
    try:
        decoded = base64.b64decode(token68, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return []
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        return []
    readings: list[Credentials] = []
    # Percent-escapes that are not UTF-8 leave only the raw reading.
    with contextlib.suppress(UnicodeDecodeError):
        readings.append(
            (
                unquote_plus(raw_id, encoding="utf-8", errors="strict"),
                unquote_plus(raw_secret, encoding="utf-8", errors="strict"),
            )
        )
    if (raw_id, raw_secret) not in readings:
        readings.append((raw_id, raw_secret))
    return [(i, s) for i, s in readings if i and s]


def basic_client(query_client: Callable[[str], Any], token68: str) -> Any:
    """The client the Basic credentials ``token68`` authenticate, with RFC 6749 §2.3.1 decoding.
    ``None`` (not authenticated) for a malformed value, an unknown client or a wrong secret
    alike."""
    for client_id, secret in basic_credentials(token68) if token68 else []:
        client = query_client(client_id)
        if client is not None and client.check_client_secret(secret):
            return client
    return None


def authenticate(
    query_client: Callable[[str], ClientAdapter | None],
    params: Mapping[str, str],
    authorization: str | None,
    methods: Sequence[str],
) -> ClientAdapter:
    """The client of a request, authenticated by one of ``methods`` (RFC 6749 §2.3), or
    ``invalid_client``. A confidential client must prove its secret (§3.2.1); a public one
    (registered without a secret) may only name itself, with ``none``."""
    basic = basic_scheme(authorization)
    if basic is not None and "client_secret_basic" in methods:
        authenticated: ClientAdapter | None = basic_client(query_client, basic)
        if authenticated is not None and authenticated.is_confidential:
            return authenticated
    client_id, secret = params.get("client_id"), params.get("client_secret")
    if client_id and secret and "client_secret_post" in methods:
        client = query_client(client_id)
        if client is not None and client.is_confidential and client.check_client_secret(secret):
            return client
    if client_id and not secret and "none" in methods:
        client = query_client(client_id)
        if client is not None and not client.is_confidential:
            return client
    raise InvalidClientError()


def several_methods(
    authorization: str | None, form: Mapping[str, str]
) -> InvalidRequestError | None:
    """RFC 6749 §2.3: more than one client authentication method in one request."""
    token68 = basic_scheme(authorization)
    if token68 is None:
        return None
    if form.get("client_secret"):
        return InvalidRequestError(
            "Authenticate the client one way only: HTTP Basic or client_secret in the body."
        )
    posted_id = form.get("client_id")
    if posted_id and posted_id not in {i for i, _ in basic_credentials(token68)}:
        return InvalidRequestError("The client_id in the body is not the one in HTTP Basic.")
    return None
