"""OAuth 2.0 Protected Resource Metadata (RFC 9728), as a client reads it. Pure: no I/O.

- §2: the document is a JSON object; ``resource`` is REQUIRED; ``authorization_servers`` lists
  the issuer identifiers (RFC 8414) of the authorization servers whose tokens the resource takes.
- §3.3: "If the protected resource metadata was retrieved from a URL returned by the protected
  resource via the WWW-Authenticate resource_metadata parameter, then the resource value returned
  MUST be identical to the URL that the client used to make the request to the resource server.
  If these values are not identical, the data contained in the response MUST NOT be used."
  Read to the letter, an API could only publish one document per URL it serves; we apply the
  rule as draft-mcguinness-oauth-rfc9728bis and the MCP SDKs do: the ``resource`` must have the
  request's origin (scheme, host, port), and its path must be a prefix, by whole segments, of the
  request's path. So ``https://api.example`` answers for ``https://api.example/transfers``, and
  ``https://api.example/v1`` for ``https://api.example/v1/x`` but not ``…/v10``.
- §5.1: a challenge's ``resource_metadata`` names the document's URL.

What the SDK does with it is in :class:`client_sdk.oidc.OIDCClient`: without a configured issuer
it takes the first of ``authorization_servers``; with one, an issuer the list lacks is refused.
The rest of the document (``scopes_supported`` and the route requirements, an extension of this
stack's APIs) is kept for the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from client_sdk.errors import ResourceMetadataError

__all__ = ["ProtectedResourceMetadata", "parse_resource_metadata", "resource_matches"]


@dataclass(frozen=True)
class ProtectedResourceMetadata:
    """The parts of an RFC 9728 §2 document the SDK uses; ``document`` is all of it."""

    url: str
    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] = ()
    document: Mapping[str, Any] = field(default_factory=dict, hash=False)


def _strings(document: Mapping[str, Any], name: str, url: str) -> tuple[str, ...]:
    value = document.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ResourceMetadataError(
            f"the protected resource metadata at {url} has a {name} that is not a list of strings",
            url=url,
        )
    return tuple(value)


def parse_resource_metadata(document: Any, url: str) -> ProtectedResourceMetadata:
    """Check the RFC 9728 §2 document fetched from ``url``; it must name an authorization server
    (the SDK has no other use for it)."""
    if not isinstance(document, Mapping):
        raise ResourceMetadataError(
            f"the protected resource metadata at {url} is not a JSON object", url=url
        )
    resource = document.get("resource")
    if not isinstance(resource, str) or not resource:
        raise ResourceMetadataError(
            f"the protected resource metadata at {url} has no resource (RFC 9728 §2)", url=url
        )
    servers = _strings(document, "authorization_servers", url)
    if not servers:
        raise ResourceMetadataError(
            f"the protected resource metadata at {url} lists no authorization_servers", url=url
        )
    return ProtectedResourceMetadata(
        url=url,
        resource=resource,
        authorization_servers=servers,
        scopes_supported=_strings(document, "scopes_supported", url),
        document=dict(document),
    )


def resource_matches(resource: str, origin: str, path: str) -> bool:
    """§3.3 as read above: ``resource`` has the request's ``origin`` and a path that is a prefix
    of the request's ``path`` by whole segments. ``origin`` is ``scheme://host[:port]``,
    lower-case (:class:`client_sdk.flow.Route`)."""
    parts = urlsplit(resource)
    if parts.query or parts.fragment:
        return False
    if f"{parts.scheme}://{parts.netloc}".lower() != origin:
        return False
    prefix = parts.path.rstrip("/")
    return prefix == "" or path == prefix or path.startswith(prefix + "/")
