"""Sandbox mode: any client with a loopback redirect URI, without a ``[[clients]]`` entry.

``[provider] sandbox_loopback_clients = true`` (sandbox mode only; on in the built-in sandbox
config) serves an unknown ``client_id`` as a **public** client — PKCE (S256) required, no secret,
the default grant types and scopes — provided its ``redirect_uri`` is a loopback URI:
``http://127.0.0.1``, ``http://[::1]`` or ``http://localhost``, any port, any path. So an app
under development works against ``stepup sandbox`` at once, as it would against a mock
authorization server, and the codes and tokens can only ever reach the developer's own machine.

What stays strict, and why:

- A **registered** ``client_id`` keeps its registered redirect URIs exactly (RFC 9700 §4.1.3,
  RFC 8252 §7.3 for the port): its registration is what is being tested.
- **Non-loopback** redirect URIs are never accepted for an unregistered client: that would make
  the sandbox an open redirector that hands authorization codes to any site.
- **Confidential** clients still need a ``[[clients]]`` entry: a secret nobody registered proves
  nothing.
- ``localhost`` is accepted here although RFC 8252 §8.3 prefers the IP literal, because web
  development servers (``http://localhost:3000``) use it; registered clients still get no port
  freedom on ``localhost``.

Nothing is written to the database: the client exists for as long as its requests do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from client_sdk.wire import ascii_int

from .clients import ClientAdapter
from .models import Client

__all__ = [
    "LOOPBACK_FORMS",
    "ErrorDetails",
    "SandboxLoopbackClient",
    "is_loopback_uri",
    "sandbox_client",
    "unknown_client",
    "unregistered_redirect_uri",
]

#: How the error pages describe what is accepted.
LOOPBACK_FORMS = ("http://127.0.0.1:PORT/…", "http://[::1]:PORT/…", "http://localhost:PORT/…")
_LOOPBACK = re.compile(r"http://(127\.0\.0\.1|\[::1\]|localhost)(?::([0-9]{1,5}))?(?=[/?#]|$)")
# A client_id is shown on pages and stored with codes and grants: printable ASCII, bounded.
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,255}")
_SCOPE = "openid profile email offline_access"


def is_loopback_uri(uri: str) -> bool:
    """Whether ``uri`` is an ``http`` URI on a loopback host, read character by character (no
    normalisation: ``http://127.0.0.1:80@evil.example/`` and ``HTTP://…`` are not)."""
    m = _LOOPBACK.match(uri)
    if m is None:
        return False
    if m[2] is not None:
        port = ascii_int(m[2], maximum=65535)
        if port is None or port == 0 or str(port) != m[2]:
            return False
    # No control characters or spaces anywhere: they would not survive a redirect unchanged.
    return all("\x21" <= c <= "\x7e" for c in uri)


class SandboxLoopbackClient(ClientAdapter):
    """An unregistered public client whose redirect URI may be any loopback URI."""

    def redirect_target(self, redirect_uri: str) -> str | None:
        return redirect_uri if redirect_uri and is_loopback_uri(redirect_uri) else None


def sandbox_client(client_id: str) -> SandboxLoopbackClient | None:
    """The sandbox's stand-in for an unregistered ``client_id``; ``None`` for an id it refuses."""
    if not _CLIENT_ID.fullmatch(client_id):
        return None
    row = Client(
        client_id=client_id,
        secret_hash=None,
        name=None,
        redirect_uris=[],
        post_logout_redirect_uris=[],
        grant_types=["authorization_code", "refresh_token"],
        scope=_SCOPE,
        require_pkce=True,
        dpop_bound_access_tokens=False,
    )
    return SandboxLoopbackClient(row)


# --- what the authorization endpoint's error page says in sandbox mode ---------------------------


@dataclass(frozen=True)
class ErrorDetails:
    """The values behind an authorization error page, shown in sandbox mode only.

    Outside sandbox mode the page names neither what was received nor what is registered: a
    client's registration is nobody else's business. Either way the values go into the page as
    text (escaped by the template), never into a ``Location`` header or an ``error_description``.
    """

    summary: str
    items: tuple[tuple[str, tuple[str, ...]], ...]
    hint: str = ""


_SHOWN = 200


def _shown(value: str | None) -> str:
    if not value:
        return "(none)"
    return value if len(value) <= _SHOWN else value[: _SHOWN - 1] + "…"


def _registered_uri(uri: str) -> str:
    loopback_ip = uri.startswith(("http://127.0.0.1", "http://[::1]"))
    return f"{uri} (any port)" if loopback_ip else uri


def unknown_client(
    client_id: str | None, registered: Sequence[str], *, loopback_clients: bool
) -> ErrorDetails:
    received = _shown(client_id)
    if loopback_clients:
        hint = (
            "Any client_id of printable ASCII characters (no spaces, at most 255) is accepted "
            "with a loopback redirect_uri; other clients need a [[clients]] entry."
        )
    else:
        hint = (
            "Register it in [[clients]], or set [provider] sandbox_loopback_clients = true to "
            "accept any client_id with a loopback redirect_uri."
        )
    return ErrorDetails(
        f"client_id {received} is not registered; registered: {', '.join(registered) or 'none'}.",
        (("client_id received", (received,)), ("registered clients", tuple(registered))),
        hint,
    )


def unregistered_redirect_uri(client: ClientAdapter, redirect_uri: str | None) -> ErrorDetails:
    received = _shown(redirect_uri)
    if isinstance(client, SandboxLoopbackClient):
        return ErrorDetails(
            f"redirect_uri {received} is not a loopback URI, and client {client.client_id} is "
            "not registered: the sandbox accepts an unregistered client with a loopback "
            "redirect_uri only.",
            (("redirect_uri received", (received,)), ("accepted", LOOPBACK_FORMS)),
            "Use a loopback redirect_uri, or register the client in [[clients]].",
        )
    registered = tuple(_registered_uri(u) for u in client.row.redirect_uris)
    return ErrorDetails(
        f"redirect_uri {received} is not registered for client {client.client_id}; "
        f"registered: {', '.join(registered) or 'none'}.",
        (
            ("redirect_uri received", (received,)),
            (f"registered for {client.client_id}", registered),
        ),
        "A loopback redirect URI (127.0.0.1 or [::1]) matches on any port; every other "
        "character must match exactly.",
    )
