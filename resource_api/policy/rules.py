"""Policy rules as settings (:class:`RuleConfig`, ``[[api.rules]]``) and their compiled form
(:class:`Rule`): a name, an optional method and path match, an optional CEL condition, and an
effect — a step-up requirement or a refusal.

Compiling checks everything that can be checked before a request arrives: the methods are HTTP
tokens, the path is a route pattern we know, the condition is valid CEL over the declared
attributes, the effect is one of the two kinds. A bad rule is a :class:`PolicyError` naming the rule
(and, for a condition, the line and column in the expression).

Pure: no Flask.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..authorization_details import InvalidAuthorizationDetails, required_entries
from ..errors import ConfigurationError
from ..settings import RuleConfig  # defined there: reading settings needs no CEL engine
from ..step_up import AuthContext, Requirement
from .attributes import attribute_values
from .cel import Condition, ConditionFailed, ConditionSyntaxError, Expression, activation

if TYPE_CHECKING:
    from .attributes import RequestFacts

__all__ = [
    "ComputedEffect",
    "Deny",
    "PathPattern",
    "PolicyError",
    "Rule",
    "RuleConfig",
    "describe_requirement",
    "match_method",
]

# RFC 9110 §9.1: method = token
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Z-]+")
# The route syntax of [[api.routes]] and Flask: <name> or <converter:name> in a path segment.
_PLACEHOLDER = re.compile(r"<(?:([a-z]+):)?([A-Za-z_][A-Za-z0-9_]*)>")
_CONVERTERS = {
    "string": r"[^/]+",
    "int": r"\d+",
    "float": r"\d+\.\d+",
    "path": r"[^/].*?",
    "uuid": r"[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}",
}


class PolicyError(ConfigurationError):
    """A rule that cannot be compiled. ``rule`` names it; ``line``/``column`` locate a problem in
    its condition; ``field`` is the setting at fault (``when``, ``path``...)."""

    def __init__(
        self, rule: str, field: str, message: str, *, line: int | None = None,
        column: int | None = None,
    ) -> None:  # fmt: skip
        self.rule = rule
        self.field = field
        self.message = message
        self.line = line
        self.column = column
        super().__init__(f"rule {rule!r}: {self.detail}")

    @property
    def detail(self) -> str:
        """The problem without the rule's name: ``when: line 1, column 8: ...``."""
        where = f"line {self.line}, column {self.column}: " if self.line is not None else ""
        return f"{self.field}: {where}{self.message}"


@dataclass(frozen=True)
class Deny:
    """The effect of a ``deny`` rule: ``403 access_denied`` with ``reason``."""

    reason: str


#: The effect of a rule written in Python (``require(when=callable)``): a requirement computed from
#: the request, or ``None`` for none.
ComputedEffect = Callable[["RequestFacts"], Requirement | None]


@dataclass(frozen=True)
class PathPattern:
    """A rule's path: a literal (``/accounts/acc_1``) or a route with placeholders
    (``/accounts/<account_id>/transactions``); ``template`` is the route with the placeholder
    names dropped, so two spellings of one route compare equal."""

    source: str
    template: str
    literal: bool
    _regex: re.Pattern[str] | None

    @classmethod
    def parse(cls, source: str) -> PathPattern:
        """:class:`ValueError` for a path that does not start with ``/`` or uses a converter we do
        not know."""
        if not source.startswith("/"):
            raise ValueError("must start with '/'")
        rest = _PLACEHOLDER.sub("", source)
        if "<" in rest or ">" in rest:
            raise ValueError("a placeholder must read <name> or <converter:name>")
        parts: list[str] = []
        template: list[str] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(source):
            converter = m.group(1) or "string"
            if converter not in _CONVERTERS:
                raise ValueError(
                    f"unknown converter {converter!r} (known: {', '.join(_CONVERTERS)})"
                )
            parts.append(re.escape(source[pos : m.start()]) + f"(?:{_CONVERTERS[converter]})")
            template.append(source[pos : m.start()] + f"<{converter}>")
            pos = m.end()
        if not parts:
            return cls(source, source, True, None)
        parts.append(re.escape(source[pos:].rstrip("/")))
        template.append(source[pos:])
        # With or without a trailing slash, like the route (Flask and most servers treat them
        # alike, or redirect one to the other): a rule must not be dodged by adding a "/".
        return cls(source, "".join(template), False, re.compile("".join(parts) + "/?"))

    @staticmethod
    def template_of(route: str) -> str:
        """``route`` (a Flask rule) with placeholder names dropped, to compare with
        :attr:`template`."""
        return _PLACEHOLDER.sub(lambda m: f"<{m.group(1) or 'string'}>", route)

    def matches(self, path: str) -> bool:
        """Whether ``path`` (percent-decoded) is this rule's; a trailing ``/`` does not matter."""
        if self._regex is None:
            return path == self.source or _strip_slash(path) == _strip_slash(self.source)
        return self._regex.fullmatch(path) is not None


@dataclass(frozen=True, eq=False)
class Rule:
    """A compiled rule. Build it with :meth:`compile` (a :class:`RuleConfig`) or :meth:`computed`
    (Python code)."""

    name: str
    methods: frozenset[str] | None
    path: PathPattern | None
    condition: Condition | None
    effect: Requirement | Deny | None
    compute: ComputedEffect | None = None
    origin: str = "config"
    details: Expression | None = None
    """The ``authorization_details`` expression; its rule's :attr:`compute` adds what it gives to
    :attr:`effect`."""

    @classmethod
    def compile(cls, config: RuleConfig, *, origin: str = "config") -> Rule:
        name = config.name
        if not isinstance(name, str) or not name.strip():
            raise PolicyError(repr(name), "name", "every rule needs a non-empty name")
        methods = None
        if config.methods:
            if isinstance(config.methods, str):
                raise PolicyError(name, "methods", "must be a list of methods, not one string")
            upper = frozenset(m.upper() for m in config.methods)
            for m in sorted(upper):
                if not _METHOD.fullmatch(m):
                    raise PolicyError(name, "methods", f"{m!r} is not an HTTP method")
            methods = upper
        path = None
        if config.path is not None:
            try:
                path = PathPattern.parse(config.path)
            except ValueError as exc:
                raise PolicyError(name, "path", str(exc)) from None
        condition = None
        if config.when is not None:
            try:
                condition = Condition.compile(config.when)
            except ConditionSyntaxError as exc:
                raise PolicyError(
                    name, "when", exc.message, line=exc.line, column=exc.column
                ) from None
        effect: Requirement | Deny
        details = None
        if config.authorization_details is not None:
            details = _details_expression(name, config.authorization_details)
        wants = (
            bool(config.acr_values)
            or config.max_age is not None
            or bool(config.scope)
            or details is not None
        )
        if config.deny is not None:
            if wants:
                raise PolicyError(
                    name, "deny", "a rule either denies or requires a step-up, not both"
                )
            if not config.deny.strip():
                raise PolicyError(name, "deny", "give the reason the client will read")
            effect = Deny(config.deny)
        elif not wants:
            raise PolicyError(
                name, "effect", 'give acr_values and/or max_age (a step-up), or deny = "why"'
            )
        else:
            try:
                effect = Requirement(tuple(config.acr_values), config.max_age, tuple(config.scope))
            except (TypeError, ValueError) as exc:
                raise PolicyError(name, "effect", str(exc)) from None
        compute = None
        if details is not None:
            if not isinstance(effect, Requirement):
                raise PolicyError(
                    name, "deny", "a rule either denies or requires an approval, not both"
                )
            compute = _with_details(effect, details)
        return cls(name, methods, path, condition, effect, compute, origin, details)

    @classmethod
    def computed(cls, name: str, compute: ComputedEffect) -> Rule:
        """A rule whose requirement Python computes from the request (no match: the caller
        attaches it where it applies)."""
        return cls(name, None, None, None, None, compute, "code")

    @classmethod
    def fixed(cls, name: str, requirement: Requirement, *, origin: str = "code") -> Rule:
        """An unconditional requirement (a decorator's, a route's), attached by the caller."""
        return cls(name, None, None, None, requirement, None, origin)

    def mismatch(self, method: str, path: str) -> str | None:
        """Why this rule's match does not hold for ``method path``, or ``None`` when it does."""
        if self.methods is not None and match_method(method) not in self.methods:
            return f"method {method} is not {' or '.join(sorted(self.methods))}"
        if self.path is not None and not self.path.matches(path):
            return f"path {path} does not match {self.path.source}"
        return None

    def describe_effect(self) -> str:
        """``requires acr urn:stepup:loa:2, max_age 300`` or ``denies: why``."""
        if isinstance(self.effect, Deny):
            return f"denies: {self.effect.reason}"
        if isinstance(self.effect, Requirement):
            text = "requires " + describe_requirement(self.effect)
            if self.details is not None:
                text += ", approval of the transaction (authorization_details)"
            return text
        return "requires what its Python code computes"


def _details_expression(name: str, source: str) -> Expression:
    try:
        expression = Expression.compile(source)
    except ConditionSyntaxError as exc:
        raise PolicyError(
            name, "authorization_details", exc.message, line=exc.line, column=exc.column
        ) from None
    other = sorted(n for n in expression.needs if not n.startswith("request."))
    if other:
        # What must be approved is a property of the request; what the token says is checked
        # against it, never fed into it.
        raise PolicyError(
            name, "authorization_details", f"may read only request.*, not {', '.join(other)}"
        )
    return expression


_NO_TOKEN = AuthContext({}, 0.0)


def _with_details(effect: Requirement, expression: Expression) -> ComputedEffect:
    """The effect of a rule with ``authorization_details``: its static requirement plus the entries
    the expression computes from the request. A value that is not a valid entry fails the rule
    (closed), with the reason."""

    def compute(request: RequestFacts) -> Requirement:
        values = attribute_values(expression.needs, request, _NO_TOKEN)
        try:
            entries = required_entries(expression.evaluate(activation(values)))
        except ConditionFailed as exc:
            raise ValueError(f"authorization_details: {exc.message}") from None
        except InvalidAuthorizationDetails as exc:
            raise ValueError(f"authorization_details: {exc}") from None
        return Requirement(effect.acr_values, effect.max_age, effect.scope, entries)

    return compute


def _strip_slash(path: str) -> str:
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


def match_method(method: str) -> str:
    """The method rules are matched on. HEAD is GET without the body (RFC 9110 §9.3.2): a rule on
    GET covers it."""
    return "GET" if method == "HEAD" else method


def describe_requirement(req: Requirement) -> str:
    parts = []
    if req.acr_values:
        parts.append("acr " + " or ".join(req.acr_values))
    if req.max_age is not None:
        parts.append(f"max_age {req.max_age}")
    if req.scope:
        parts.append("scope " + " ".join(req.scope))
    if req.authorization_details:
        parts.append("authorization_details " + "[" + ",".join(req.authorization_details) + "]")
    return ", ".join(parts) if parts else "nothing"
