"""``[[api.routes]]`` and ``[[api.rules]]`` as the enforcer's :class:`~.enforcer.RequestPolicy`:
the policy engine of :mod:`resource_api.policy` (CEL conditions, ``deny``, fail closed), the one
the Flask library enforces through :class:`resource_api.StepUp` — so a request gets the same
decision from ``stepup api``, ``stepup gateway`` and ``stepup sideband`` (DESIGN contract 9).

:class:`RequestInfo` is the engine's request description as it is; :meth:`RulePolicy.needs_body`
tells the carriers which requests need their body (the enforcer refuses those a carrier cannot send
the body of, rather than judge them bodiless).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..authorization_details import decode
from ..policy import Denied, Policy, PolicyDecision, Refused, Rule, RuleConfig
from ..policy.rules import Deny as DenyEffect
from ..settings import RouteSpec
from ..step_up import AcrOrder, AuthContext, Requirement
from .enforcer import Deny, PolicyResult, RequestInfo

__all__ = ["RulePolicy"]


def _describe(rule: Rule, effect: Requirement | DenyEffect | None) -> dict[str, Any]:
    if rule.origin == "route" and rule.path is not None and rule.methods:
        out: dict[str, Any] = {"route": f"{' '.join(sorted(rule.methods))} {rule.path.source}"}
    else:
        out = {"rule": rule.name}
    if isinstance(effect, DenyEffect):
        out["deny"] = effect.reason
    elif isinstance(effect, Requirement):
        if effect.acr_values:
            out["acr_values"] = list(effect.acr_values)
        if effect.max_age is not None:
            out["max_age"] = effect.max_age
        if effect.scope:
            out["scope"] = list(effect.scope)
        if effect.authorization_details:
            out["authorization_details"] = decode(effect.authorization_details)
    return out


def _record(decision: PolicyDecision) -> dict[str, Any]:
    rules = []
    for o in decision.rules:
        if o.status == "applied":
            rules.append(_describe(o.rule, o.effect))
        elif o.status == "failed":
            rules.append({**_describe(o.rule, None), "failed": o.error})
    return {"rules": rules}


class RulePolicy:
    """The engine over a config's routes and rules, behind the enforcer's seam."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    @classmethod
    def from_settings(
        cls, routes: Iterable[RouteSpec], rules: Sequence[RuleConfig], order: AcrOrder
    ) -> RulePolicy:
        return cls(Policy.from_settings(routes, rules, order))

    def needs_body(self, method: str, path: str) -> bool:
        return self.policy.needs_body(method, path)

    def evaluate(self, request: RequestInfo, context: AuthContext) -> PolicyResult:
        decision = self.policy.evaluate(request, context.claims, context.now)
        outcome = decision.outcome
        if isinstance(outcome, Denied | Refused):
            return PolicyResult(Deny(outcome.description), _record(decision))
        return PolicyResult(outcome, _record(decision), decision.stable_until())
