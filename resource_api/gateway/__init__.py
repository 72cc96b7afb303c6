"""Step-up in front of any HTTP API: a reverse proxy (:class:`GatewayApp`, ``stepup gateway``) and a
decision service for existing gateways (:class:`SidebandApp`, ``stepup sideband``), both ASGI
apps over one :class:`Enforcer`. docs/gateway.md says when to pick which.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..resource_metadata import publish
from ..settings import BankConfig
from ..validation import JwtAccessTokenValidator, TokenValidator, http_fetch, wall_clock
from .enforcer import Deny, Enforcer, Outcome, PolicyResult, RequestInfo, RequestPolicy
from .identity import IDENTITY_HEADERS, identity_headers, is_identity_header
from .proxy import GatewayApp
from .rule_policy import RulePolicy
from .sideband import SidebandApp

__all__ = [
    "IDENTITY_HEADERS",
    "Deny",
    "Enforcer",
    "GatewayApp",
    "Outcome",
    "PolicyResult",
    "RequestInfo",
    "RequestPolicy",
    "RulePolicy",
    "SidebandApp",
    "build_enforcer",
    "identity_headers",
    "is_identity_header",
]


def build_enforcer(
    config: BankConfig,
    *,
    validator: TokenValidator | None = None,
    clock: Callable[[], float] | None = None,
    public_paths: Sequence[str] = (),
) -> Enforcer:
    """The enforcer for ``config``'s ``[api]``: its issuer, audience, levels, and its routes and
    rules through the policy engine (:class:`RulePolicy`)."""
    from ..bank.app import acr_order_from_config

    now = clock or wall_clock
    order = acr_order_from_config(config)
    validator = validator or JwtAccessTokenValidator(
        config.api_issuer, config.api.audience, fetch=http_fetch(timeout=5.0), clock=now
    )
    policy = RulePolicy.from_settings(config.api.routes, config.api.rules, order)
    return Enforcer(
        validator=validator,
        policy=policy,
        order=order,
        issuer=config.api_issuer,
        clock=now,
        public_paths=public_paths,
        published=publish(policy.policy.rules),
    )
