"""A policy decision as plain data: the outcome, how each rule fared, and what explains it.

Pure: no Flask. :mod:`.engine` makes these; :mod:`.explain` puts them in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple, TypeAlias

from ..step_up import AcrOrder, Allow, AuthContext, Challenge, InsufficientScope, Requirement
from .rules import Deny, Rule

__all__ = ["Denied", "Outcome", "PolicyDecision", "Refused", "RuleOutcome", "Status"]


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

    def all_outcomes(self) -> list[RuleOutcome]:
        """How every rule fared, in order; a rule left out for this route says why its match
        does not hold."""
        evaluated = {id(o.rule): o for o in self.rules}
        return [
            evaluated.get(id(r))
            or RuleOutcome(r, "not_matched", error=r.mismatch(self.method, self.path))
            for r in self.sequence or tuple(o.rule for o in self.rules)
        ]
