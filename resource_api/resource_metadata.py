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
- §2 — "Additional protected resource metadata parameters MAY also be used": this stack adds
  ``stepup_route_requirements`` (:data:`ROUTE_REQUIREMENTS`), the step-up requirements that hold
  for every request to a route — each ``[[api.routes]]`` entry and each ``[[api.rules]]`` rule
  without a ``when`` condition and with a requirement as its effect — so a client can obtain a
  token that meets them before its first ``401``. A conditional rule is not listed: whether it
  applies depends on the request (its body, the token), and its condition is the operator's
  policy, not the client's business; its requirement reaches the client in the challenge of the
  request it applies to. ``deny`` rules are not listed either: no token answers them.
  ``scopes_supported`` lists the scope values of every rule (conditional ones too: a scope value
  is no secret, the challenge names it anyway).

Pure: no web framework.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .policy.rules import Rule
from .step_up import Requirement

__all__ = [
    "ROUTE_REQUIREMENTS",
    "WELL_KNOWN_PATH",
    "PublishedPolicy",
    "metadata_document",
    "metadata_url",
    "origin_of",
    "publish",
]

#: The extension member listing the route requirements (documented in docs/resource-api.md).
ROUTE_REQUIREMENTS = "stepup_route_requirements"


@dataclass(frozen=True)
class PublishedPolicy:
    """What the metadata tells clients of an API's policy: :func:`publish` makes it."""

    scopes_supported: tuple[str, ...] = ()
    route_requirements: tuple[Mapping[str, Any], ...] = ()


def _requirement_entry(rule: Rule, effect: Requirement) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if rule.methods:
        entry["methods"] = sorted(rule.methods)  # absent: every method
    if rule.path is not None:
        entry["path"] = rule.path.source  # absent: every path
    if effect.acr_values:
        entry["acr_values"] = list(effect.acr_values)  # in order of preference
    if effect.max_age is not None:
        entry["max_age"] = effect.max_age
    if effect.scope:
        entry["scope"] = list(effect.scope)
    return entry


def publish(rules: Iterable[Rule]) -> PublishedPolicy:
    """The unconditional step-up requirements of ``rules`` (compiled routes and rules, in their
    order) and every scope value they name. Computed once, at start."""
    scopes: list[str] = []
    entries: list[Mapping[str, Any]] = []
    for rule in rules:
        effect = rule.effect
        if not isinstance(effect, Requirement):
            continue  # a deny rule, or one computed in Python
        for value in effect.scope:
            if value not in scopes:
                scopes.append(value)
        if rule.condition is None and rule.compute is None:
            entries.append(_requirement_entry(rule, effect))
    return PublishedPolicy(tuple(scopes), tuple(entries))


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
    published: PublishedPolicy | None = None,
    dpop_algorithms: Sequence[str] = (),
) -> dict[str, Any]:
    """The RFC 9728 §2 JSON object for ``resource``; with ``published``, its scopes and the
    :data:`ROUTE_REQUIREMENTS` extension (an empty list: no route has a fixed requirement).
    ``dpop_algorithms``: §2 ``dpop_signing_alg_values_supported``, the DPoP proof algorithms
    accepted (RFC 9449)."""
    doc: dict[str, Any] = {
        "resource": resource.rstrip("/"),
        "authorization_servers": list(authorization_servers),
        "bearer_methods_supported": ["header"],
    }
    scopes = list(scopes_supported)
    if published is not None:
        scopes += [s for s in published.scopes_supported if s not in scopes]
    if scopes:
        doc["scopes_supported"] = scopes
    if resource_name is not None:
        doc["resource_name"] = resource_name
    if published is not None:
        doc[ROUTE_REQUIREMENTS] = [dict(entry) for entry in published.route_requirements]
    if dpop_algorithms:
        doc["dpop_signing_alg_values_supported"] = list(dpop_algorithms)
    return doc
