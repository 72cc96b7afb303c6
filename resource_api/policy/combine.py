"""Combining what the rules that apply ask for: a deny wins, a failure fails closed, and step-up
requirements combine into the strictest one a single token can meet.

Pure: no Flask.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..step_up import AcrOrder, Requirement
from .decision import Denied, Refused, RuleOutcome
from .rules import Deny, describe_requirement

__all__ = ["combine_outcomes", "strictest"]


def strictest(requirements: Sequence[Requirement], order: AcrOrder) -> Requirement | None:
    """The one requirement a token must meet to meet all of ``requirements``; ``None`` when no
    ``acr`` value satisfies them all (values the order cannot compare).

    ``acr_values``: the values named by any requirement that satisfy every requirement (a stronger
    level satisfies a weaker one), the strongest requirement's values first. ``max_age``: the
    smallest. ``scope`` and ``authorization_details``: the union.
    """
    lists = [r.acr_values for r in requirements if r.acr_values]
    acr: tuple[str, ...] = ()
    if len(lists) == 1:
        acr = lists[0]
    elif lists:
        # Strongest first: sort by the weakest level each list accepts (unknown values last).
        def strength(values: tuple[str, ...]) -> int:
            known = order.strength(values)
            return -1 if known is None else known

        ranked = sorted(lists, key=strength, reverse=True)
        candidates = dict.fromkeys(v for values in ranked for v in values)
        acr = tuple(v for v in candidates if all(order.satisfies(v, values) for values in lists))
        if not acr:
            return None
    ages = [r.max_age for r in requirements if r.max_age is not None]
    scope = dict.fromkeys(s for r in requirements for s in r.scope)
    details = dict.fromkeys(d for r in requirements for d in r.authorization_details)
    return Requirement(acr, min(ages) if ages else None, tuple(scope), tuple(details))


def combine_outcomes(
    outcomes: Iterable[RuleOutcome], order: AcrOrder
) -> Requirement | Denied | Refused:
    """What the rules that applied add up to: the first ``deny``; else, when a rule failed, a
    refusal naming the first; else the strictest requirement (a refusal if none exists)."""
    requirements: list[Requirement] = []
    failed: RuleOutcome | None = None
    for o in outcomes:
        if o.status == "applied" and isinstance(o.effect, Deny):
            return Denied(o.rule.name, o.effect.reason)
        if o.status == "failed" and failed is None:
            failed = o
        if o.status == "applied" and isinstance(o.effect, Requirement):
            requirements.append(o.effect)
    if failed is not None:
        return Refused(
            failed.rule.name,
            f"rule {failed.rule.name!r} could not be evaluated: {failed.error}",
            f"the API's policy could not be evaluated for this request (rule "
            f"'{failed.rule.name}': {failed.error}), so it is refused",
        )
    combined = strictest(requirements, order)
    if combined is None:
        asked = "; ".join(describe_requirement(r) for r in requirements if r.acr_values)
        return Refused(
            None,
            f"no authentication level satisfies every rule that applies ({asked})",
            "the API's policy asks for authentication levels that no single level meets, "
            "so the request is refused",
        )
    return combined
