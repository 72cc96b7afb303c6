"""Registered clients, as the OAuth machinery asks about them, and redirect-URI matching.

RFC 6749 §2 (client types and authentication), §3.1.2 (redirection endpoint); RFC 9700 §4.1.3
(exact matching); RFC 8252 §7.3 (any port for a loopback redirect URI).
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import select

from client_sdk.wire import ascii_int

from . import store
from .models import Client

__all__ = ["ClientAdapter", "find_client", "redirect_target", "redirect_uri_matches"]


class ClientAdapter(ClientMixin):  # type: ignore[misc]
    """A registered client, as Authlib asks about it."""

    def __init__(self, row: Client) -> None:
        self.row = row

    @property
    def client_id(self) -> str:
        return self.row.client_id

    @property
    def is_confidential(self) -> bool:
        return self.row.secret_hash is not None

    @property
    def require_pkce(self) -> bool:
        """False only for a confidential client registered with ``require_pkce = false``."""
        return self.row.require_pkce or not self.is_confidential

    @property
    def dpop_required(self) -> bool:
        """RFC 9449 §5.2 ``dpop_bound_access_tokens``: its token requests need a DPoP proof."""
        return bool(self.row.dpop_bound_access_tokens)

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OIDC Core §3.1.2.1: redirect_uri is REQUIRED, so there is no default.
        return None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.row.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return self.redirect_target(redirect_uri) is not None

    def redirect_target(self, redirect_uri: str) -> str | None:
        """Where to send the user for this presented ``redirect_uri``, built from the registered
        URI it matches (:func:`redirect_target`); ``None`` if it matches none."""
        if not redirect_uri:
            return None
        for registered in self.row.redirect_uris:
            target = redirect_target(registered, redirect_uri)
            if target is not None:
                return target
        return None

    def check_client_secret(self, client_secret: str) -> bool:
        return store.secret_matches(self.row.secret_hash, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.is_confidential:
            return method in ("client_secret_basic", "client_secret_post")
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.row.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types


# RFC 8252 §7.3 names the loopback IP literals; "localhost" is not one (§8.3: NOT RECOMMENDED).
_LOOPBACK = re.compile(r"http://(?P<host>127\.0\.0\.1|\[::1\])(?::(?P<port>[0-9]+))?")


def _loopback_parts(uri: str) -> tuple[str, str | None, str] | None:
    """``(host, port text, rest)`` of a loopback URI taken apart character by character, or
    ``None``. No normalisation at all: ``urlsplit`` lower-cases the scheme, drops an empty ``?``
    or ``#`` and silently removes tabs, CR and LF, each of which would let a near miss match."""
    m = _LOOPBACK.match(uri)
    if m is None:
        return None
    rest = uri[m.end() :]
    if rest and rest[0] not in "/?#":
        return None  # "http://127.0.0.1:8765@evil.example/" is not a loopback URI
    return m["host"], m["port"], rest


def redirect_target(registered: str, presented: str) -> str | None:
    """The URI to redirect to when ``presented`` matches ``registered``, built from the
    registered one; ``None`` when it does not match.

    Exact string match (RFC 9700 §4.1.3), except the port of a loopback URI. RFC 8252 §7.3: "The
    authorization server MUST allow any port to be specified at the time of the request for
    loopback IP redirect URIs, to accommodate clients that obtain an available ephemeral port
    from the operating system at the time of the request." Every other character — scheme case,
    an empty query or fragment, a space, a tab, CR, LF or any control character — must be the
    registered one. The port is 1 to 65535 in ASCII digits without leading zeros, so the result is
    the presented string itself, and the authorization code is bound to exactly what was sent.
    """
    if hmac.compare_digest(registered.encode(), presented.encode()):
        return registered
    r, p = _loopback_parts(registered), _loopback_parts(presented)
    if r is None or p is None or r[0] != p[0] or r[2] != p[2]:
        return None
    host, port_text, rest = r[0], p[1], r[2]
    if port_text is None:
        return f"http://{host}{rest}"
    port = ascii_int(port_text, maximum=65535)
    if port is None or port == 0 or str(port) != port_text:
        return None
    return f"http://{host}:{port}{rest}"


def redirect_uri_matches(registered: str, presented: str) -> bool:
    """Whether ``presented`` may be used for ``registered``: see :func:`redirect_target`."""
    return redirect_target(registered, presented) is not None


def find_client(session: Any, client_id: str | None) -> ClientAdapter | None:
    # PostgreSQL text cannot hold NUL: such an id would fail the query instead of matching nothing.
    if not client_id or "\x00" in client_id:
        return None
    row = session.scalar(select(Client).where(Client.client_id == client_id))
    return ClientAdapter(row) if row else None
