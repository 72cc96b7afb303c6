"""A policy decision as plain data: the outcome, how each rule fared, and what explains it.

Pure: no Flask. :mod:`.engine` makes these; :mod:`.explain` puts them in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple, TypeAlias

from ..step_up import AcrOrder, Allow, AuthContext, Challenge, InsufficientScope, Requirement
from .rules import Deny, Rule

__all__ = [
    "KEYED_ATTRIBUTES",
    "Denied",
    "Outcome",
    "PolicyDecision",
    "Refused",
    "RuleOutcome",
    "Status",
]


@dataclass(frozen=True)
class Denied:
    """A ``deny`` rule applied: ``403 access_denied`` with the rule's reason."""

    rule: str
    description: str
    error: ClassVar[str] = "access_denied"
    status_code: ClassVar[int] = 403


@dataclass(frozen=True)
class Refused:
    """The policy could not decide — a condition failed, or requirements conflict — so the request
    is refused (fail closed): ``403 access_denied``. ``reason`` is the whole story (logged);
    ``description`` is what the client reads."""

    rule: str | None
    reason: str
    description: str
    error: ClassVar[str] = "access_denied"
    status_code: ClassVar[int] = 403


Outcome: TypeAlias = Allow | InsufficientScope | Challenge | Denied | Refused

#: The attributes that depend on nothing but the token and the request's method, path and query:
#: a condition reading only these gives the same result for the same token on the same request
#: target, at any time.
KEYED_ATTRIBUTES = frozenset({
    "request.method", "request.path", "request.query", "token", "authentication_time",
    "authentication_policy", "amr", "sub", "scope", "client_id",
})  # fmt: skip

#: How one rule fared: its match did not hold, its condition was false, it applied, or it failed.
Status = Literal["not_matched", "false", "applied", "failed"]


class RuleOutcome(NamedTuple):
    """How one rule fared. ``effect``: what it contributed (``applied``). ``error``: for
    ``failed``, what went wrong; for ``not_matched``, why the match does not hold."""

    rule: Rule
    status: Status
    effect: Requirement | Deny | None = None
    error: str | None = None


@dataclass(slots=True)
class PolicyDecision:
    """The decision on one request, with everything needed to explain it. Read-only by
    convention (not frozen: one is made per request, and freezing costs)."""

    method: str
    path: str
    outcome: Outcome
    requirement: Requirement
    rules: tuple[RuleOutcome, ...]
    context: AuthContext
    order: AcrOrder
    sequence: tuple[Rule, ...] = ()
    """Every rule of the policy, and those the route added, in order (to explain them all)."""

    @property
    def allowed(self) -> bool:
        return isinstance(self.outcome, Allow)

    @property
    def applied(self) -> tuple[Rule, ...]:
        return tuple(o.rule for o in self.rules if o.status == "applied")

    def stable_until(self) -> float | None:
        """Until when (epoch seconds, exclusive) the same token on the same method, path and
        query gets this same decision; ``None`` when nothing can be promised: a rule whose match
        held is Python code or has a condition reading anything but :data:`KEYED_ATTRIBUTES` (the
        headers, the body, ``authentication_age``), a rule failed, or the token has no usable
        ``exp``. Never later than the token's ``exp``; for an allowed request with a ``max_age``,
        never later than ``auth_time + max_age`` (the check is on whole seconds, so the decision
        holds a little longer than that, never shorter). For those who cache decisions."""
        for o in self.rules:
            if o.status == "not_matched":
                continue  # its match reads the method and the path only
            rule = o.rule
            if o.status == "failed" or rule.compute is not None:
                return None
            if rule.condition is not None and not rule.condition.needs <= KEYED_ATTRIBUTES:
                return None
        until = _finite(self.context.claims.get("exp"))
        if until is None:
            return None
        max_age = self.requirement.max_age
        if max_age is not None and isinstance(self.outcome, Allow):
            auth_time = self.context.authentication_time
            if auth_time is None:
                return None
            until = min(until, auth_time + max_age)
        return until

    def all_outcomes(self) -> list[RuleOutcome]:
        """How every rule fared, in order; a rule left out for this route says why its match
        does not hold."""
        evaluated = {id(o.rule): o for o in self.rules}
        return [
            evaluated.get(id(r))
            or RuleOutcome(r, "not_matched", error=r.mismatch(self.method, self.path))
            for r in self.sequence or tuple(o.rule for o in self.rules)
        ]


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
