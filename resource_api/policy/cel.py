"""CEL conditions: compiled once against the declared attributes, evaluated per request.

The Common Expression Language (https://github.com/google/cel-spec) is evaluated by
``cel-expr-python``, the Python binding of Google's C++ runtime (cel-cpp). ``docs/policies.md``
says why this library and not another (conformance, cost, type checking).

What this module guarantees:

- **Checked at start.** Every attribute is declared with its CEL type, so the checker rejects an
  unknown name (``request.bdy``), a misspelt function, or an operator on the wrong types while the
  configuration loads, with the line and column in the expression (:class:`ConditionSyntaxError`).
  A condition whose type is known and is not ``bool`` is rejected too.
- **Fails closed.** A condition that errors at run time (a missing map key, ``double("abc")``) or
  yields something other than ``true``/``false`` raises :class:`ConditionFailed`; it never counts
  as ``false``.
- **Standard library plus two standard extensions**: optional values
  (``request.headers[?'x-risk'].orValue('')``) and the strings extension (``lowerAscii()``,
  ``split()``...), as cel-go's ``OptionalTypes`` and ``ext.Strings``.
- **Reads only what it names.** :attr:`Condition.needs` is the set of attributes the expression
  references, found by the library's own checker (the expression is compiled once more without
  each attribute; where that fails, the attribute is needed). The caller then builds only those —
  no body is parsed for a condition that never reads ``request.body``.

Pure: no Flask, no clock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings

from ..errors import ConfigurationError

__all__ = [
    "ATTRIBUTES",
    "Batch",
    "Condition",
    "ConditionFailed",
    "ConditionSyntaxError",
    "Expression",
]

_T = cel.Type
_STRING_MAP = _T.Map(_T.STRING, _T.STRING)

#: Every attribute a condition may read, with its CEL type. ``dyn`` where the value may be null
#: (a token without the claim) or is JSON of any shape. The request's parts are separate
#: variables with qualified names, so ``request.bdy`` is an undeclared name, not a missing key.
ATTRIBUTES: Mapping[str, Any] = {
    "request.method": _T.STRING,
    "request.path": _T.STRING,
    "request.query": _STRING_MAP,
    "request.headers": _STRING_MAP,
    "request.body": _T.DYN,
    "token": _T.Map(_T.STRING, _T.DYN),
    "authentication_time": _T.DYN,
    "authentication_age": _T.DYN,
    "authentication_policy": _T.DYN,
    "amr": _T.List(_T.STRING),
    "sub": _T.DYN,
    "scope": _T.List(_T.STRING),
    "client_id": _T.DYN,
}

# "ERROR: <input>:2:7: undeclared reference to 'foo' (in container '')" — cel-cpp's checker and
# parser report positions this way, one line per problem, then the source line and a caret.
_POSITION = re.compile(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)")
_STATUS_PREFIX = re.compile(r"^[A-Z_]+: ")
_NOT_GIVEN = re.compile(r'No value with name "([^"]+)" found in Activation')
_STATUS_SUFFIX = re.compile(r" \[[A-Z_]+\]$")


class ConditionSyntaxError(ConfigurationError):
    """An expression that does not compile: not CEL, an unknown attribute, wrong types."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(f"{where}{message}")


class ConditionFailed(Exception):
    """A condition that could not be evaluated to ``true`` or ``false`` for this request."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_envs: dict[str | None, Any] = {}
_envs_lock = threading.Lock()


def _env(without: str | None = None) -> Any:
    """The CEL environment with every attribute declared (or every one but ``without``)."""
    env = _envs.get(without)
    if env is None:
        with _envs_lock:
            env = _envs.get(without)
            if env is None:
                declared = {k: v for k, v in ATTRIBUTES.items() if k != without}
                env = _envs[without] = cel.NewEnv(
                    variables=declared,
                    # CEL's standard extensions, as cel-go names them: optional values
                    # (request.headers[?'x-risk'].orValue('')) and string functions
                    # (lowerAscii, split, ...).
                    extensions=[ext_optional.ExtOptional(), ext_strings.ExtStrings()],
                )
    return env


def _attributes_needed(source: str) -> frozenset[str]:
    """The attributes ``source`` reads: those without which it no longer compiles (so that only
    they are computed for each request)."""
    needs = set()
    for name in ATTRIBUTES:
        try:
            _env(without=name).compile(source)
        except RuntimeError:
            needs.add(name)
    return frozenset(needs)


# ``request.headers['x-risk']`` and ``request.headers[?'x-risk']``: a header read by a literal,
# lower-case name (letters, digits, dashes). When every reference to ``request.headers`` in an
# expression has this form, the expression can read no other header, so the caller hands CEL
# only those (a request carries a dozen; building them all costs more than the CEL call).
_LITERAL_HEADER = re.compile(r"""request\.headers(?=\[\??(['"])([a-z0-9-]+)\1\])""")
_STAND_IN = "stepup_named_fields"  # without the word: see _headers_read
_by_literal_env: list[Any] = []


def _headers_read(source: str, needs: frozenset[str]) -> frozenset[str] | None:
    """The header names ``source`` reads, when it reads each by a literal name (see
    :data:`_LITERAL_HEADER`); ``None`` when it may read any (``size(request.headers)``, a key
    computed at run time, ``'x' in request.headers``...). Proved by the checker: with every
    literal read renamed to a stand-in variable, the expression must compile without
    ``request.headers`` declared, and without the word ``headers`` left anywhere in it (a
    comprehension variable named ``request`` must not pass for the attribute) — so no other
    reference is left."""
    if "request.headers" not in needs:
        return frozenset()
    names = frozenset(m.group(2) for m in _LITERAL_HEADER.finditer(source))
    if not names or names & {"content-type", "content-length"}:
        return None  # the two CGI fields: the full headers' rules for them apply
    if not _by_literal_env:
        with _envs_lock:
            if not _by_literal_env:
                declared = {k: v for k, v in ATTRIBUTES.items() if k != "request.headers"}
                _by_literal_env.append(cel.NewEnv(
                    variables={**declared, _STAND_IN: _STRING_MAP},
                    extensions=[ext_optional.ExtOptional(), ext_strings.ExtStrings()],
                ))  # fmt: skip
    renamed = _LITERAL_HEADER.sub(_STAND_IN, source)
    if "headers" in renamed:
        return None  # the word anywhere else (even in a string): take no chances with scoping
    try:
        _by_literal_env[0].compile(renamed)
    except RuntimeError:
        return None
    return names


def _compile(source: str, env: Any) -> Any:
    try:
        return env.compile(source)
    except RuntimeError as exc:
        text = str(exc)
        found = _POSITION.search(text)
        if found is None:
            raise ConditionSyntaxError(_STATUS_PREFIX.sub("", text.splitlines()[0])) from None
        message = _STATUS_SUFFIX.sub("", found.group(3).replace(" (in container '')", ""))
        raise ConditionSyntaxError(message, int(found.group(1)), int(found.group(2))) from None


@dataclass(frozen=True, eq=False)
class Condition:
    """One compiled CEL expression. Build it with :meth:`compile`."""

    source: str
    needs: frozenset[str]
    _program: Any
    headers_read: frozenset[str] | None = None
    """The header names the condition reads, when it reads only named ones (``None``: any)."""

    @classmethod
    def compile(cls, source: str) -> Condition:
        """Compile and type-check ``source``; :class:`ConditionSyntaxError` if it is not a valid
        condition over :data:`ATTRIBUTES`."""
        if not source.strip():
            raise ConditionSyntaxError("the condition is empty")
        program = _compile(source, _env())
        kind = program.return_type().name()
        if kind not in ("BOOL", "DYN"):
            raise ConditionSyntaxError(
                f"a condition must be true or false, but this expression gives a {kind.lower()}"
            )
        needs = _attributes_needed(source)
        return cls(source, needs, program, _headers_read(source, needs))

    def evaluate(self, activation: Any) -> bool:
        """``True`` or ``False`` for the attributes in ``activation`` (see :func:`activation`);
        :class:`ConditionFailed` for anything else."""
        value = self._program.eval(activation)
        result = value.value()
        if result is True or result is False:
            return result
        kind = value.type().name()
        if kind == "ERROR":
            message = _STATUS_PREFIX.sub("", str(result))
            missing = _NOT_GIVEN.search(message)
            if missing is not None:
                message = (
                    f"{missing.group(1)} is not available here (the request was passed on "
                    "without it)"
                )
            raise ConditionFailed(message)
        raise ConditionFailed(f"the condition gave a {kind.lower()}, not true or false")


@dataclass(frozen=True, eq=False)
class Expression:
    """A compiled CEL expression that computes a value (a rule's ``authorization_details``: a map
    or a list of maps) rather than deciding. Checked like a condition; :meth:`evaluate` gives the
    plain Python value, or raises :class:`ConditionFailed`."""

    source: str
    needs: frozenset[str]
    _program: Any

    @classmethod
    def compile(cls, source: str) -> Expression:
        if not source.strip():
            raise ConditionSyntaxError("the expression is empty")
        program = _compile(source, _env())
        kind = program.return_type().name()
        if kind.split("<", 1)[0].upper() not in ("MAP", "LIST", "DYN"):
            raise ConditionSyntaxError(
                f"the expression must give a map or a list of maps, not a {kind.lower()}"
            )
        return cls(source, _attributes_needed(source), program)

    def evaluate(self, activation: Any) -> Any:
        value = self._program.eval(activation)
        if value.type().name() == "ERROR":
            message = _STATUS_PREFIX.sub("", str(value.value()))
            if _NOT_GIVEN.search(message) is not None:
                message = "a part of the request it reads is not available here"
            raise ConditionFailed(message)
        return value.plain_value()


@dataclass(frozen=True, eq=False)
class Batch:
    """Several conditions evaluated by one CEL program (a list of them): one call into the runtime
    per request instead of one per rule. When any of them fails, :meth:`evaluate` says so and the
    caller evaluates them one by one to learn which and why."""

    conditions: tuple[Condition, ...]
    needs: frozenset[str]
    _program: Any
    headers_read: frozenset[str] | None = None
    """The header names the conditions read, when they read only named ones (``None``: any)."""

    @classmethod
    def of(cls, conditions: tuple[Condition, ...]) -> Batch:
        # Each source is already checked on its own; in parentheses, a list of them is valid CEL.
        source = "[" + ",\n".join(f"({c.source}\n)" for c in conditions) + "]"
        needs = frozenset().union(*(c.needs for c in conditions))
        read: frozenset[str] | None = frozenset()
        for c in conditions:
            read = None if read is None or c.headers_read is None else read | c.headers_read
        return cls(conditions, needs, _compile(source, _env()), read)

    def evaluate(
        self, activation: Any = None, *, data: Mapping[str, Any] | None = None
    ) -> list[bool] | None:
        """Each condition's value, or ``None`` when one of them did not give ``true``/``false``.
        Give an ``activation``, or the attribute values as ``data`` (cheaper for one call)."""
        value = self._program.eval(activation) if data is None else self._program.eval(data=data)
        # An error's plain value is its message (a str), never a list: one check covers both,
        # without asking the value's type (which costs as much as the rest of this).
        results = value.plain_value()
        if type(results) is not list:
            return None
        for r in results:
            if r is not True and r is not False:
                return None
        return results


def activation(values: Mapping[str, Any]) -> Any:
    """The attribute values of one request, for :meth:`Condition.evaluate` (built once, read by
    every condition of the request; each value is converted to CEL only when a condition reads it).
    """
    return _env().Activation(values)
