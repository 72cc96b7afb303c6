"""Registered clients, as the OAuth machinery asks about them, and redirect-URI matching.

RFC 6749 §2 (client types and authentication), §3.1.2 (redirection endpoint); RFC 9700 §4.1.3
(exact matching); RFC 8252 §7.3 (any port for a loopback redirect URI).
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import select

from . import store
from .models import Client

__all__ = ["ClientAdapter", "find_client", "redirect_uri_matches"]

LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")


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

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OIDC Core §3.1.2.1: redirect_uri is REQUIRED, so there is no default.
        return None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.row.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(redirect_uri_matches(r, redirect_uri) for r in self.row.redirect_uris)

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


def redirect_uri_matches(registered: str, presented: str) -> bool:
    """Exact string match (RFC 9700 §4.1.3), except the port of a loopback URI.

    RFC 8252 §7.3: "The authorization server MUST allow any port to be specified at the time of
    the request for loopback IP redirect URIs, to accommodate clients that obtain an available
    ephemeral port from the operating system at the time of the request."
    """
    if hmac.compare_digest(registered.encode(), presented.encode()):
        return True
    r, p = urlsplit(registered), urlsplit(presented)
    if r.scheme != "http" or p.scheme != "http":
        return False
    r_host = r.netloc.rsplit(":", 1)[0] if not r.netloc.endswith("]") else r.netloc
    p_host = p.netloc.rsplit(":", 1)[0] if not p.netloc.endswith("]") else p.netloc
    if r_host not in LOOPBACK_HOSTS or r_host != p_host:
        return False
    try:
        port = p.port  # validates the port is a number in range
    except ValueError:
        return False
    if p.netloc not in (p_host, f"{p_host}:{port}"):
        return False
    return (r.path, r.query, r.fragment) == (p.path, p.query, p.fragment)


def find_client(session: Any, client_id: str | None) -> ClientAdapter | None:
    # PostgreSQL text cannot hold NUL: such an id would fail the query instead of matching nothing.
    if not client_id or "\x00" in client_id:
        return None
    row = session.scalar(select(Client).where(Client.client_id == client_id))
    return ClientAdapter(row) if row else None
