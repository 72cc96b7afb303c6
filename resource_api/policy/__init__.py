"""Step-up policies: rules over the request and the authentication, PingAuthorize-style.

A rule (``[[api.rules]]``, DESIGN contract 9) has a name, an optional match (methods, path), an
optional CEL condition over the request and token attributes, and an effect — a step-up requirement
(``acr_values``, ``max_age``) or ``deny``. :class:`Policy` compiles rules once; its
:meth:`Policy.evaluate` (or a route's :class:`RuleSet`) turns a request description, the token's
claims and the time into a :class:`PolicyDecision` that explains itself (:func:`explain`).

Modules: :mod:`.rules` (settings and compiled rules), :mod:`.cel` (conditions), :mod:`.attributes`
(what conditions read), :mod:`.engine` (evaluation), :mod:`.combine` (how effects add up),
:mod:`.decision` (the record), :mod:`.explain` (the decision in words).
``docs/policies.md`` has the semantics and worked examples.

Pure: no Flask — the Flask extension, a gateway and a sideband service share this engine.
"""

from __future__ import annotations

from .attributes import UNAVAILABLE, HttpRequest, RequestFacts, parse_json_body
from .cel import ATTRIBUTES, Condition, ConditionFailed, ConditionSyntaxError
from .engine import (
    Denied,
    Outcome,
    Policy,
    PolicyDecision,
    Refused,
    RuleOutcome,
    RuleSet,
    strictest,
)
from .explain import explain, explain_token
from .rules import ComputedEffect, Deny, PathPattern, PolicyError, Rule, RuleConfig

__all__ = [
    "ATTRIBUTES",
    "UNAVAILABLE",
    "ComputedEffect",
    "Condition",
    "ConditionFailed",
    "ConditionSyntaxError",
    "Denied",
    "Deny",
    "HttpRequest",
    "Outcome",
    "PathPattern",
    "Policy",
    "PolicyDecision",
    "PolicyError",
    "Refused",
    "RequestFacts",
    "Rule",
    "RuleConfig",
    "RuleOutcome",
    "RuleSet",
    "explain",
    "explain_token",
    "parse_json_body",
    "strictest",
]
