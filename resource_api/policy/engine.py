"""The policy decision: rules + a request + the token's claims + the time → allow, challenge, deny.

One engine for every place that enforces — the Flask extension, a gateway, a sideband decision
service — so it takes plain data and knows no framework. Its semantics (``docs/policies.md``):

1. A rule **applies** when its match holds (method, path) and its condition is true.
2. Every applying rule contributes its effect. A ``deny`` wins: ``403 access_denied``.
3. A condition that errors, or gives anything but ``true``/``false``, **fails closed**: the request
   is refused (``403 access_denied``), the reason logged — never passed, never a ``500``.
4. The step-up requirements combine into the strictest one: the ``acr`` values that satisfy every
   requirement (so the highest level asked for), the smallest ``max_age``, all scopes. Requirements
   that no single level can satisfy (values the level order cannot compare) fail closed too.
5. A token that meets the combined requirement passes; otherwise the one RFC 9470 challenge
   (:func:`resource_api.step_up.decide`) names the whole combined requirement.

Every decision is a :class:`PolicyDecision` record that explains itself: which rules applied,
which did not and why, and why the token did or did not meet the requirement
(:mod:`resource_api.policy.explain` renders it).

Rules compile once (:class:`Policy`); for each route a :class:`RuleSet` keeps only the rules that
can match it, so a request evaluates only rules whose match holds, and reads only the attributes
their conditions name.

Pure: no Flask, no clock of its own — ``now`` is epoch seconds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from ..step_up import AcrOrder, AuthContext, Requirement, decide, lasting
from . import cel
from .attributes import AttributePlan, NotKeyable, RequestFacts, attribute_values
from .combine import combine_outcomes, strictest
from .decision import Denied, Outcome, PolicyDecision, Refused, RuleOutcome
from .rules import PathPattern, PolicyError, Rule, RuleConfig, match_method

if TYPE_CHECKING:
    from ..settings import RouteSpec

__all__ = [
    "Denied",
    "Outcome",
    "Policy",
    "PolicyDecision",
    "Refused",
    "RuleOutcome",
    "RuleSet",
    "Verdict",
    "strictest",
]

logger = logging.getLogger("resource_api.policy")


_NO_REQUIREMENT = Requirement()

#: What a request was decided, before it is made a :class:`PolicyDecision` record (which only
#: those who read it pay for: :meth:`RuleSet.record`): the outcome, the combined requirement, and
#: how each rule fared.
Verdict: TypeAlias = tuple[Outcome, Requirement, tuple[RuleOutcome, ...]]

_Found: TypeAlias = tuple[tuple[RuleOutcome, ...], Requirement | Refused | Denied]
#: A remembered decision for one token: its claims (held, so that their id stays theirs), the
#: verdict, and the window it holds in (``now - auth_time < limit``, see step_up.lasting).
_Settled: TypeAlias = tuple[Mapping[str, Any], Verdict, float, float]


class RuleSet:
    """The rules that can match one route (method + route pattern), ready to evaluate requests.

    Rules whose match holds for every request of the route are marked so; the others (a literal
    path under a pattern route, a different pattern) are matched per request. The conditions of the
    rules that always match are evaluated together, by one CEL program. When no rule has a
    condition and all always match, the combined requirement is computed here, once.
    """

    _CACHE_SIZE = 256
    _MEMO_SIZE = 4096

    def __init__(
        self, policy: Policy, method: str, route: str | None, extra: Sequence[Rule] = ()
    ) -> None:
        self.policy = policy
        self.method = method
        candidates: list[tuple[Rule, bool]] = []
        for rule in policy.rules:
            fit = _fits(rule, match_method(method), route)
            if fit is not None:
                candidates.append((rule, fit))
        candidates.extend((rule, True) for rule in extra)
        self.candidates = tuple(candidates)
        self.sequence = (*policy.rules, *extra)
        # A rule with Python code (or an authorization_details expression) is evaluated alone:
        # its effect is computed after its condition holds.
        batched = tuple(
            i
            for i, (r, always) in enumerate(candidates)
            if always and r.condition is not None and r.compute is None
        )
        self._batched = frozenset(batched) if len(batched) > 1 else frozenset()
        self._batch_order = tuple(sorted(self._batched))
        self._batch = (
            cel.Batch.of(tuple(_condition(candidates[i][0]) for i in batched))
            if self._batched
            else None
        )
        self._needs = self._batch.needs if self._batch is not None else frozenset()
        # The common case — every rule of the route always matches and has a CEL condition: one
        # evaluation, and what it gives (which rules hold) decides the rest, remembered per key.
        self._fast = (
            self._batch is not None
            and len(batched) == len(candidates)
            and not any(r.compute is not None for r, _ in candidates)
        )
        self._plan = AttributePlan(
            self._needs, self._batch.headers_read if self._batch is not None else None
        )
        self._aging: _Split | None = None
        if self._fast and self._plan.keyable and "authentication_age" in self._needs:
            conditions = [_condition(rule) for rule, _ in candidates]
            aging = [i for i, c in enumerate(conditions) if "authentication_age" in c.needs]
            if len(aging) < len(conditions):
                self._aging = _Split(self._plan, conditions, aging)
        self._by_values: dict[tuple[bool, ...], _Found] = {}
        # CEL is pure (no clock, no randomness): the same attribute values give the same results,
        # and the step-up check's answer lasts as long as step_up.lasting says. Remembered per
        # token (the claims by identity) and the request's values, except when a condition reads
        # the body.
        self._memo: dict[tuple[Any, ...], _Settled] = {}
        self._cacheable = not any(r.compute is not None for r, _ in candidates)
        self._combined: dict[tuple[int, ...], Requirement | Refused] = {}
        self._static: _Found | None = None
        self._by_claims: dict[int, _Settled] = {}
        if not any(
            r.condition is not None or r.compute is not None or not always
            for r, always in candidates
        ):
            outcomes = tuple(RuleOutcome(r, "applied", r.effect) for r, _ in candidates)
            self._static = (outcomes, combine_outcomes(outcomes, policy.order))

    @property
    def empty(self) -> bool:
        return not self.candidates

    @property
    def always_applies(self) -> bool:
        """Whether some rule's match holds for every request of the route."""
        return any(always for _, always in self.candidates)

    def may_apply(self, path: str) -> bool:
        """Whether some rule's match holds for a request to ``path``."""
        return any(
            always or rule.path is None or rule.path.matches(path)
            for rule, always in self.candidates
        )

    def evaluate(
        self, request: RequestFacts, claims: Mapping[str, Any], now: float
    ) -> PolicyDecision:
        """Decide on ``request`` made with a token carrying ``claims`` at ``now``."""
        return self.record(
            request.method, request.path, self.verdict(request, claims, now),
            AuthContext(claims, now),
        )  # fmt: skip

    def record(
        self, method: str, path: str, verdict: Verdict, context: AuthContext
    ) -> PolicyDecision:
        """The :class:`PolicyDecision` of a :meth:`verdict` on a ``method path`` request, made
        by the token and at the time of ``context``."""
        outcome, requirement, outcomes = verdict
        return PolicyDecision(
            method, path, outcome, requirement, outcomes, context, self.policy.order,
            self.sequence,
        )  # fmt: skip

    def verdict(self, request: RequestFacts, claims: Mapping[str, Any], now: float) -> Verdict:
        """Decide on ``request`` made with a token carrying ``claims`` at ``now``, without the
        record (:meth:`record` makes it; :meth:`evaluate` does both). A refusal is logged (a
        warning), and the record at debug level when that is on."""
        verdict: Verdict | None = None
        if self._static is not None:
            settled = self._by_claims.get(id(claims))
            if settled is not None and settled[0] is claims and now - settled[2] < settled[3]:
                verdict = settled[1]
            else:
                settled = self._settle(claims, now, *self._static)
                if len(self._by_claims) >= self._MEMO_SIZE:
                    self._by_claims.clear()
                self._by_claims[id(claims)] = settled
                verdict = settled[1]
        elif self._fast:
            verdict = self._verdict_fast(request, claims, now)
        if verdict is None:
            context = AuthContext(claims, now)
            outcomes, key = self._evaluate(request, context)
            verdict = self._decide(context, outcomes, self._combine(outcomes, key))
        if isinstance(verdict[0], Refused):
            logger.warning(
                "policy refused %s %s: %s", request.method, request.path, verdict[0].reason
            )
        if logger.isEnabledFor(logging.DEBUG):
            from .explain import explain

            decision = self.record(request.method, request.path, verdict,
                                   AuthContext(claims, now))  # fmt: skip
            logger.debug("policy decision\n%s", explain(decision))
        return verdict

    def _decide(
        self,
        context: AuthContext,
        outcomes: tuple[RuleOutcome, ...],
        combined: Requirement | Refused | Denied,
    ) -> Verdict:
        if isinstance(combined, Requirement):
            return decide(context, combined, self.policy.order), combined, outcomes
        return combined, _NO_REQUIREMENT, outcomes

    def _settle(
        self,
        claims: Mapping[str, Any],
        now: float,
        outcomes: tuple[RuleOutcome, ...],
        combined: Requirement | Refused | Denied,
    ) -> _Settled:
        """The verdict for a token at ``now``, and how long it lasts for that token."""
        if not isinstance(combined, Requirement):
            return claims, (combined, _NO_REQUIREMENT, outcomes), 0.0, math.inf
        context = AuthContext(claims, now)
        outcome = decide(context, combined, self.policy.order)
        auth_time, limit = lasting(context, combined)
        return claims, (outcome, combined, outcomes), auth_time, limit

    def _verdict_fast(
        self, request: RequestFacts, claims: Mapping[str, Any], now: float
    ) -> Verdict | None:
        plan = self._plan
        memo_key: tuple[Any, ...] | None = None
        if plan.keyable:
            try:
                memo_key = plan.key(request, claims, now)
            except NotKeyable:
                memo_key = None
        if memo_key is not None:
            settled = self._memo.get(memo_key)
            if settled is not None and settled[0] is claims:
                if now - settled[2] < settled[3]:
                    return settled[1]
                # The same conditions' results, a step-up answer to decide again.
                verdict = settled[1]
                combined = self._combined_of(verdict)
                return self._decide(AuthContext(claims, now), verdict[2], combined)
        assert self._batch is not None
        context = AuthContext(claims, now)
        if memo_key is not None and self._aging is not None:
            results = self._aging.evaluate(memo_key, request, context)
        else:
            results = self._batch.evaluate(data=plan.attributes(memo_key, request, context))
        if results is None:
            return None  # one failed: the general path finds out which, and why
        values = tuple(results)
        found = self._by_values.get(values)
        if found is None:
            outcomes = tuple(
                RuleOutcome(rule, "applied", rule.effect) if holds else RuleOutcome(rule, "false")
                for (rule, _), holds in zip(self.candidates, values, strict=True)
            )
            found = (outcomes, combine_outcomes(outcomes, self.policy.order))
            if len(self._by_values) >= self._CACHE_SIZE:
                self._by_values.clear()
            self._by_values[values] = found
        settled = self._settle(claims, now, *found)
        if memo_key is not None:
            if len(self._memo) >= self._MEMO_SIZE:
                self._memo.clear()
            self._memo[memo_key] = settled
        return settled[1]

    @staticmethod
    def _combined_of(verdict: Verdict) -> Requirement | Refused | Denied:
        outcome = verdict[0]
        return outcome if isinstance(outcome, Refused | Denied) else verdict[1]

    def _combine(
        self, outcomes: tuple[RuleOutcome, ...], key: tuple[int, ...] | None
    ) -> Requirement | Denied | Refused:
        # The same rules apply to most requests of a route: remember what their requirements
        # combine to, keyed by which rules applied (not when one failed or computed its effect).
        if key is None:
            return combine_outcomes(outcomes, self.policy.order)
        found = self._combined.get(key)
        if found is None:
            combined = combine_outcomes(outcomes, self.policy.order)
            if isinstance(combined, Denied):
                return combined
            if len(self._combined) >= self._CACHE_SIZE:
                self._combined.clear()
            found = self._combined[key] = combined
        return found

    def _evaluate(
        self, request: RequestFacts, context: AuthContext
    ) -> tuple[tuple[RuleOutcome, ...], tuple[int, ...] | None]:
        """Each candidate's outcome, and which applied (``None`` when the combination of this
        request must not be remembered)."""
        path = request.path
        candidates = self.candidates
        batched = self._batched
        results: list[RuleOutcome | None] = []
        single: list[int] = []
        needs = self._needs
        for i, (rule, always) in enumerate(candidates):
            if not always and rule.path is not None and not rule.path.matches(path):
                results.append(
                    RuleOutcome(rule, "not_matched", error=rule.mismatch(request.method, path))
                )
                continue
            results.append(None)
            if i not in batched:
                single.append(i)
                if rule.condition is not None:
                    needs = needs | rule.condition.needs
        activation = None
        if self._batch is not None or any(candidates[i][0].condition is not None for i in single):
            activation = cel.activation(attribute_values(needs, request, context))
        if self._batch is not None:
            values = self._batch.evaluate(activation)
            if values is None:  # one failed: find out which, and why
                single = sorted((*single, *batched))
            else:
                for i, holds in zip(self._batch_order, values, strict=True):
                    rule = candidates[i][0]
                    results[i] = (
                        RuleOutcome(rule, "applied", rule.effect)
                        if holds
                        else RuleOutcome(rule, "false")
                    )
        for i in single:
            results[i] = self._one(candidates[i][0], request, activation)
        cacheable = self._cacheable
        applied: list[int] = []
        for i, r in enumerate(results):
            if r is not None and r.status != "false" and r.status != "not_matched":
                if r.status == "failed":
                    cacheable = False
                applied.append(i)
        return (
            tuple(r for r in results if r is not None),
            tuple(applied) if cacheable else None,
        )

    @staticmethod
    def _one(rule: Rule, request: RequestFacts, activation: Any) -> RuleOutcome:
        if rule.condition is not None:
            try:
                holds = rule.condition.evaluate(activation)
            except cel.ConditionFailed as exc:
                return RuleOutcome(rule, "failed", error=exc.message)
            if not holds:
                return RuleOutcome(rule, "false")
        if rule.compute is None:
            return RuleOutcome(rule, "applied", rule.effect)
        try:
            effect = rule.compute(request)
        except ValueError as exc:
            if rule.details is None:
                logger.exception("policy rule %r raised", rule.name)
                return RuleOutcome(
                    rule, "failed", error=f"its Python code raised {type(exc).__name__}: {exc}"
                )
            # The authorization_details expression gave no valid entry for this request.
            return RuleOutcome(rule, "failed", error=str(exc))
        except Exception as exc:  # fail closed on any error of the user's code
            logger.exception("policy rule %r raised", rule.name)
            return RuleOutcome(
                rule, "failed", error=f"its Python code raised {type(exc).__name__}: {exc}"
            )
        return RuleOutcome(rule, "applied", effect)


class _Split:
    """A route's conditions split in two: those that read ``authentication_age`` (which changes
    every second, so a remembered result keyed by it lasts a second at most) and the others,
    whose results are remembered without the age. When the second ticks, only the first are
    evaluated again — with only the attributes they read (not the token's map, unless they
    read it)."""

    def __init__(
        self, plan: AttributePlan, conditions: Sequence[cel.Condition], aging: Sequence[int]
    ) -> None:
        steady = [i for i in range(len(conditions)) if i not in aging]
        self.aging_at, self.steady_at = tuple(aging), tuple(steady)
        self.aging = cel.Batch.of(tuple(conditions[i] for i in aging))
        self.steady = cel.Batch.of(tuple(conditions[i] for i in steady))
        self.aging_plan = AttributePlan(self.aging.needs, self.aging.headers_read)
        self.steady_plan = AttributePlan(self.steady.needs, self.steady.headers_read)
        # Where the age is in the route's key: without it, the key still holds every value the
        # steady conditions read (and perhaps more: fewer hits, never a wrong one).
        self.age_at = 1 + plan.request_names.index("authentication_age")
        self.memo: dict[tuple[Any, ...], tuple[Mapping[str, Any], list[bool]]] = {}

    def evaluate(
        self, key: tuple[Any, ...], request: RequestFacts, context: AuthContext
    ) -> list[bool] | None:
        """Every condition's result in order, for the request whose route key is ``key``, or
        ``None`` when one of them failed."""
        claims, now = context.claims, context.now
        steady_key = key[: self.age_at] + key[self.age_at + 1 :]
        remembered = self.memo.get(steady_key)
        if remembered is not None and remembered[0] is claims:
            steady = remembered[1]
        else:
            plan = self.steady_plan
            found = self.steady.evaluate(
                data=plan.attributes(plan.key(request, claims, now), request, context)
            )
            if found is None:
                return None
            if len(self.memo) >= RuleSet._MEMO_SIZE:
                self.memo.clear()
            self.memo[steady_key] = (claims, found)
            steady = found
        plan = self.aging_plan
        aging = self.aging.evaluate(
            data=plan.attributes(plan.key(request, claims, now), request, context)
        )
        if aging is None:
            return None
        results = [False] * (len(aging) + len(steady))
        for i, holds in zip(self.steady_at, steady, strict=True):
            results[i] = holds
        for i, holds in zip(self.aging_at, aging, strict=True):
            results[i] = holds
        return results


def _condition(rule: Rule) -> cel.Condition:
    assert rule.condition is not None
    return rule.condition


def _fits(rule: Rule, method: str, route: str | None) -> bool | None:
    """Whether ``rule`` can match requests to ``method route``: ``True`` — every one of them;
    ``False`` — some (match each request); ``None`` — none."""
    if rule.methods is not None and method not in rule.methods:
        return None
    pattern = rule.path
    if pattern is None:
        return True
    if route is None:
        return False
    if pattern.template == PathPattern.template_of(route):
        return True
    routed = PathPattern.parse(route) if route.startswith("/") else None
    if routed is None:
        return False
    if routed.literal:
        return True if pattern.matches(route) else None
    if pattern.literal:
        return False if routed.matches(pattern.source) else None
    return False


@dataclass(frozen=True)
class Policy:
    """Compiled rules and the ACR order they are judged by. Build once, at start."""

    rules: tuple[Rule, ...]
    order: AcrOrder
    _sets: dict[tuple[str, str | None], RuleSet] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def build(
        cls, rules: Iterable[Rule | RuleConfig], order: AcrOrder | Sequence[str] = ()
    ) -> Policy:
        """Compile ``rules`` (:class:`resource_api.policy.PolicyError` for a bad one)."""
        compiled = tuple(r if isinstance(r, Rule) else Rule.compile(r) for r in rules)
        names = [r.name for r in compiled]
        for name in names:
            if names.count(name) > 1:
                raise PolicyError(name, "name", "two rules have this name; names must be unique")
        acr_order = order if isinstance(order, AcrOrder) else AcrOrder.from_values(order)
        return cls(compiled, acr_order)

    @classmethod
    def from_settings(
        cls, routes: Iterable[RouteSpec], rules: Iterable[Rule | RuleConfig],
        order: AcrOrder | Sequence[str] = (),
    ) -> Policy:  # fmt: skip
        """The policy of an API's settings: each route (``[[api.routes]]``) is a rule without a
        condition, named ``route METHOD PATH`` (a route given twice asks for both), then the
        rules (``[[api.rules]]``) in their order."""
        acr_order = order if isinstance(order, AcrOrder) else AcrOrder.from_values(order)
        merged: dict[tuple[str, str], list[Requirement]] = {}
        for r in routes:
            req = Requirement(tuple(r.acr_values), r.max_age, tuple(r.scope))
            merged.setdefault((r.method.upper(), r.path), []).append(req)
        compiled: list[Rule | RuleConfig] = []
        for (method, path), reqs in merged.items():
            both = strictest(reqs, acr_order)
            if both is None:
                raise PolicyError(
                    f"route {method} {path}", "acr_values",
                    "given twice with levels no single level meets",
                )  # fmt: skip
            compiled.append(Rule.compile(
                RuleConfig(f"route {method} {path}", (method,), path, acr_values=both.acr_values,
                           max_age=both.max_age, scope=both.scope),
                origin="route",
            ))  # fmt: skip
        compiled.extend(rules)
        return cls.build(compiled, acr_order)

    def for_route(
        self, method: str, route: str | None = None, extra: Sequence[Rule] = ()
    ) -> RuleSet:
        """The rules for ``method`` on ``route`` (a route pattern such as
        ``/accounts/<account_id>``, or ``None`` when the caller has no routing and every path
        is matched per request), plus ``extra`` rules attached to that route."""
        if extra:
            return RuleSet(self, method, route, extra)
        key = (method, route)
        found = self._sets.get(key)
        if found is None:
            found = self._sets[key] = RuleSet(self, method, route)
        return found

    def needs_body(self, method: str, path: str) -> bool:
        """Whether a rule whose match holds for ``method path`` reads the request body (or is
        Python code, which may): a carrier that must fetch the body (a sideband's caller, a
        proxy that streams) asks first."""
        for rule in self.rules:
            if rule.mismatch(method, path) is not None:
                continue
            if rule.compute is not None or (
                rule.condition is not None and "request.body" in rule.condition.needs
            ):
                return True
        return False

    def evaluate(
        self, request: RequestFacts, claims: Mapping[str, Any], now: float
    ) -> PolicyDecision:
        """Decide on ``request`` with no routing knowledge: every rule is matched on the
        request's own method and path."""
        return self.for_route(request.method, None).evaluate(request, claims, now)
