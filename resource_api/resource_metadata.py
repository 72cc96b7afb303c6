"""OAuth 2.0 Protected Resource Metadata (RFC 9728): the document and where it lives.

- §3 — the metadata of a resource whose identifier is ``https://host`` is published at
  ``https://host/.well-known/oauth-protected-resource`` ("the well-known URI string ... is inserted
  ... between the host component and the path and/or query components"); our resources are
  origins, so the path is that suffix alone (DESIGN.md contract 12).
- §2 — ``resource`` is REQUIRED; ``authorization_servers`` lists the issuers whose tokens the
  resource accepts; ``bearer_methods_supported`` the ways a token may be sent (we accept only the
  ``Authorization`` header, RFC 6750 §2.1).
- §3.3 — "The resource value returned MUST be identical to the protected resource's resource
  identifier value into which the well-known URI path suffix was inserted to create the URL used to
  retrieve the metadata": :func:`metadata_document` takes the same origin :func:`metadata_url`
  was built from.
- §5.1 — challenges carry ``resource_metadata="<that URL>"`` (:func:`resource_api.challenges.
  bearer_challenge`).

Pure: no web framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["WELL_KNOWN_PATH", "metadata_document", "metadata_url", "origin_of"]

WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"


def origin_of(scheme: str, host: str) -> str:
    """``scheme://host`` for a request's scheme and ``Host`` (which may carry a port)."""
    return f"{scheme.lower()}://{host}"


def metadata_url(resource: str) -> str:
    """Where the metadata of the resource identified by ``resource`` (an origin) is published."""
    return resource.rstrip("/") + WELL_KNOWN_PATH


def metadata_document(
    resource: str,
    authorization_servers: Sequence[str],
    *,
    scopes_supported: Sequence[str] = (),
    resource_name: str | None = None,
    dpop_algorithms: Sequence[str] = (),
) -> dict[str, Any]:
    """The RFC 9728 §2 JSON object for ``resource``. ``dpop_algorithms``: §2
    ``dpop_signing_alg_values_supported``, the DPoP proof algorithms accepted (RFC 9449)."""
    doc: dict[str, Any] = {
        "resource": resource.rstrip("/"),
        "authorization_servers": list(authorization_servers),
        "bearer_methods_supported": ["header"],
    }
    if scopes_supported:
        doc["scopes_supported"] = list(scopes_supported)
    if resource_name is not None:
        doc["resource_name"] = resource_name
    if dpop_algorithms:
        doc["dpop_signing_alg_values_supported"] = list(dpop_algorithms)
    return doc
