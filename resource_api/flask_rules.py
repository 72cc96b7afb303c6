"""The Flask side of the policy engine: the Flask request as the engine reads it, the rules a
view's ``@require`` decorators add, and whether a rule's path names a view of the app.

Kept apart from :mod:`.flask_ext` (the enforcement glue) so that each stays small.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Request, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from .policy import PathPattern, Rule, parse_json_body
from .step_up import Requirement

__all__ = ["DynamicRequirement", "FlaskRequest", "decorator_rules", "serves"]

#: A requirement computed from the request itself (e.g. the amount of a transfer). Return ``None``
#: to add nothing. It runs after the token is validated; read the body leniently
#: (``request.get_json(silent=True)``) and leave rejecting a bad body to the view.
DynamicRequirement = Callable[[Request], Requirement | None]

_CGI_HEADERS = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}
#: The header name of each environ key seen so far, and the environ keys that are not headers
#: (the server's own: REQUEST_METHOD, wsgi.input...), so that a request's headers are found by
#: one set difference in C and a loop over the headers alone. Bounded: a client inventing header
#: names cannot grow them past the limit; keys beyond it are worked out each time.
_HEADER_NAMES: dict[str, str] = {}
_NOT_HEADERS: set[str] = set()
_KNOWN_SIZE = 1024


def _header_name(key: str) -> str | None:
    name = key[5:].replace("_", "-").lower() if key.startswith("HTTP_") else _CGI_HEADERS.get(key)
    if len(_HEADER_NAMES) + len(_NOT_HEADERS) < _KNOWN_SIZE:
        if name is None:
            _NOT_HEADERS.add(key)
        else:
            _HEADER_NAMES[key] = name
    return name


_ENVIRON_KEYS: dict[str, str] = {}


def _environ_key(name: str) -> str:
    # PEP 3333: HTTP_ and the name upper-cased, dashes as underscores. Bounded like the above.
    key = "HTTP_" + name.upper().replace("-", "_")
    if len(_ENVIRON_KEYS) < _KNOWN_SIZE:
        _ENVIRON_KEYS[name] = key
    return key


#: The environ keys of each tuple of header names a route's conditions read (bounded as above).
_KEYS_OF: dict[tuple[str, ...], tuple[str, ...]] = {}


class FlaskRequest:
    """The Flask request as the policy engine reads it; each part is computed when a condition
    names it (the body is read and parsed only then)."""

    __slots__ = ("environ", "method", "path", "query_string", "request")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.environ: dict[str, Any] = request.environ
        self.method: str = request.method  # plain attributes of werkzeug's request
        self.path: str = request.path
        #: The raw query (what :attr:`query` is parsed from): a cheaper key for remembered
        #: results than the parsed query.
        self.query_string: str = self.environ.get("QUERY_STRING", "")

    @property
    def query(self) -> dict[str, str]:
        if not self.query_string:
            return {}
        return self.request.args.to_dict(flat=True)

    @property
    def headers(self) -> dict[str, str]:
        # From the WSGI environ directly: iterating werkzeug's Headers view costs ~10x more.
        # PEP 3333: HTTP_* variables (the server joins repeated fields with ","), plus the two
        # fields CGI keeps without the prefix. Each environ key's header name is worked out once.
        environ = self.request.environ
        out: dict[str, str] = {}
        for key in environ.keys() - _NOT_HEADERS:
            name = _HEADER_NAMES.get(key) or _header_name(key)
            if name is not None:
                value = environ[key]
                if value or key not in _CGI_HEADERS:
                    out[name] = value
        return out

    def headers_among(self, names: tuple[str, ...]) -> tuple[str | None, ...]:
        """The values of :attr:`headers` under ``names`` (lower-case: letters, digits and dashes,
        not the two CGI fields), in that order, ``None`` for an absent one, without building
        the rest."""
        keys = _KEYS_OF.get(names)
        if keys is None:
            keys = tuple(_ENVIRON_KEYS.get(name) or _environ_key(name) for name in names)
            if len(_KEYS_OF) < _KNOWN_SIZE:
                _KEYS_OF[names] = keys
        environ = self.environ
        if len(keys) == 1:  # the common case, without the cost of tuple(map(...))
            return (environ.get(keys[0]),)
        return tuple([environ.get(key) for key in keys])

    @property
    def body(self) -> Any:
        # get_data() enforces MAX_CONTENT_LENGTH (413) and caches, so the view reads it again.
        return parse_json_body(self.request.get_data(cache=True), self.request.content_type)


def decorator_rules(
    endpoint: str, marks: list[tuple[Requirement, DynamicRequirement | None]]
) -> list[Rule]:
    """The rules a view's ``@require`` decorators add (in the order they were applied)."""
    rules: list[Rule] = []
    for i, (static, when) in enumerate(marks):
        suffix = f" #{i + 1}" if len(marks) > 1 else ""
        if static != Requirement():
            rules.append(Rule.fixed(f"@require on {endpoint}{suffix}", static))
        if when is not None:
            name = getattr(when, "__name__", type(when).__name__)
            rules.append(Rule.computed(f"@require(when={name}) on {endpoint}{suffix}",
                                       _computed(when)))  # fmt: skip
    return rules


def _computed(when: DynamicRequirement) -> Callable[[Any], Requirement | None]:
    def compute(facts: Any) -> Requirement | None:
        return when(facts.request if isinstance(facts, FlaskRequest) else request)

    return compute


_SAMPLES = {"string": "x", "int": "1", "float": "1.0", "path": "x/y",
            "uuid": "00000000-0000-0000-0000-000000000000"}  # fmt: skip


def serves(
    adapter: Any, views: list[tuple[str, frozenset[str]]], pattern: PathPattern,
    methods: frozenset[str] | None,
) -> bool:  # fmt: skip
    """Whether some view of the app answers a path the rule's ``pattern`` matches."""
    for route, route_methods in views:
        if methods is not None and not methods & route_methods:
            continue
        template = PathPattern.template_of(route)
        if template == pattern.template:
            return True
        sample = re.sub(r"<([a-z]+)>", lambda m: _SAMPLES.get(m.group(1), "x"), template)
        if not pattern.literal and pattern.matches(sample):
            return True
    if pattern.literal:
        for method in sorted(methods) if methods else ["GET"]:
            try:
                adapter.match(pattern.source, method=method)
            except RequestRedirect:
                return True
            except HTTPException as exc:
                if exc.code == 405 and methods is None:
                    return True
                continue
            return True
    return False
