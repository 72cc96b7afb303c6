"""The attributes a policy condition reads: a plain request description, the token's claims, and
the time.

The names follow PingAuthorize's generated request attributes (``authentication_time``,
``authentication_age``, ``authentication_policy``) and the HTTP request as a gateway sees it
(``request.method``, ``request.path``, ``request.query``, ``request.headers``, ``request.body``).
``docs/policies.md`` lists them with their types and what each is when the token lacks a claim.

Each attribute is computed only when a condition of the request names it (see
:attr:`resource_api.policy.cel.Condition.needs`): a request whose rules read no body has its body
neither read nor parsed.

Pure: no Flask. Any framework (the Flask extension, a gateway, a sideband service) describes its
request with :class:`HttpRequest` or its own object following :class:`RequestFacts`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..step_up import AuthContext

__all__ = [
    "FROM_CLAIMS",
    "GETTERS",
    "UNAVAILABLE",
    "AttributePlan",
    "HttpRequest",
    "NotKeyable",
    "RequestFacts",
    "attribute_values",
    "cel_json",
    "parse_json_body",
]

_INT64 = (-(2**63), 2**63 - 1)


class _Unavailable:
    def __repr__(self) -> str:
        return "UNAVAILABLE"


#: What a request description gives for a part it does not have — a sideband whose gateway does
#: not pass the body on (nginx ``auth_request``), a truncated body. Unlike ``None`` (no body), a
#: condition that reads it fails closed: a rule must not pass because its input was withheld.
UNAVAILABLE: Any = _Unavailable()


class RequestFacts(Protocol):
    """What a policy may know about an HTTP request. An adapter may compute ``query``,
    ``headers`` and ``body`` when they are read: they are read only when a condition names them."""

    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def query(self) -> Mapping[str, str]:
        """Query parameters, the first value of each name."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Header fields by lower-case name; repeated fields joined with ``", "``."""
        ...

    @property
    def body(self) -> Any:
        """The parsed JSON body (numbers as floats, see :func:`parse_json_body`), ``None`` when
        there is none, :data:`UNAVAILABLE` when the carrier did not pass it on."""
        ...


@dataclass(frozen=True)
class HttpRequest:
    """A request described in plain values (tests, the CLI, a gateway). Header names are
    lower-cased here; ``body`` is parsed JSON or ``None`` (its numbers become floats, as
    :func:`parse_json_body` reads them)."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", {k.lower(): v for k, v in self.headers.items()})
        if self.body is not UNAVAILABLE:
            object.__setattr__(self, "body", cel_json(self.body, numbers_as_doubles=True))


def parse_json_body(raw: bytes | str, content_type: str | None) -> Any:
    """The JSON value of a request body, or ``None`` when it is not JSON (another media type,
    malformed, not UTF-8).

    Numbers become floats: CEL reads JSON numbers as ``double`` (its JSON mapping,
    ``google.protobuf.Value``), so ``request.body.amount > 1000.0`` holds for ``1500`` and
    ``1500.5`` alike, and a huge integer cannot overflow CEL's 64-bit ``int``.
    """
    if content_type is None:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        return None
    try:
        return json.loads(raw, parse_int=float)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def cel_json(value: Any, *, numbers_as_doubles: bool = False) -> Any:
    """``value`` (claims, JSON) as values CEL accepts: integers outside 64 bits (or all of them,
    with ``numbers_as_doubles``, as :func:`parse_json_body` reads a body) become floats, tuples
    become lists, map keys strings; anything else that JSON cannot hold becomes its string form."""
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        in_range = _INT64[0] <= value <= _INT64[1]
        return value if in_range and not numbers_as_doubles else float(value)
    if isinstance(value, Mapping):
        return {
            str(k): cel_json(v, numbers_as_doubles=numbers_as_doubles) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [cel_json(v, numbers_as_doubles=numbers_as_doubles) for v in value]
    return str(value)


def _auth_time(ctx: AuthContext) -> int | float | None:
    t = ctx.authentication_time
    if t is None:
        return None
    return int(t) if t.is_integer() else t


def _auth_age(ctx: AuthContext) -> int | None:
    # Whole seconds, floored: the same count the step-up check and the provider use for max_age.
    age = ctx.authentication_age
    return None if age is None or not math.isfinite(age) else math.floor(age)


def _age_now(request: RequestFacts, claims: Mapping[str, Any], now: float) -> int | None:
    # _auth_age with AuthContext.authentication_time inlined for the common claim types (this
    # runs on every request of a route whose conditions read it: it is never remembered).
    auth_time = claims.get("auth_time")
    if type(auth_time) is int or type(auth_time) is float:
        age = now - auth_time
        return math.floor(age) if math.isfinite(age) else None
    return _auth_age(AuthContext(claims, now))


def _auth_age_now(request: RequestFacts, ctx: AuthContext) -> int | None:
    return _age_now(request, ctx.claims, ctx.now)


def _scope(scope: Any) -> list[str]:
    # In the token's order (RFC 6749 §3.3: space-delimited; some issuers send a JSON array).
    if isinstance(scope, str):
        return scope.split()
    if isinstance(scope, list):
        return [s for s in scope if isinstance(s, str)]
    return []


def _plain(mapping: Mapping[str, str]) -> dict[str, str]:
    # A plain dict as is (the adapters build one per request; CEL only reads it), else a copy.
    return mapping if type(mapping) is dict else dict(mapping)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


Getter = Callable[[RequestFacts, AuthContext], Any]

#: How each attribute that depends on the request or the time is computed.
GETTERS: Mapping[str, Getter] = {
    "request.method": lambda r, c: r.method,
    "request.path": lambda r, c: r.path,
    "request.query": lambda r, c: _plain(r.query),
    "request.headers": lambda r, c: _plain(r.headers),
    "request.body": lambda r, c: r.body,
    "authentication_age": _auth_age_now,
}

#: How each attribute that depends on the claims alone is computed.
FROM_CLAIMS: Mapping[str, Callable[[AuthContext], Any]] = {
    "token": lambda c: cel_json(c.claims),
    "authentication_time": _auth_time,
    "authentication_policy": lambda c: c.authentication_policy,
    "amr": lambda c: list(c.amr),
    "sub": lambda c: _str_or_none(c.claims.get("sub")),
    "scope": lambda c: _scope(c.claims.get("scope")),
    "client_id": lambda c: c.client_id,
}

# A token comes back many times (the validator caches its claims, one object per token): its
# claim attributes are computed once. Keyed by identity; holding the claims keeps the id unique.
_by_claims: dict[int, tuple[Mapping[str, Any], dict[str, Any]]] = {}
_BY_CLAIMS_SIZE = 4096


def _claim_values(context: AuthContext) -> dict[str, Any]:
    claims = context.claims
    hit = _by_claims.get(id(claims))
    if hit is not None and hit[0] is claims:
        return hit[1]
    values = {name: get(context) for name, get in FROM_CLAIMS.items()}
    if len(_by_claims) >= _BY_CLAIMS_SIZE:
        _by_claims.clear()
    _by_claims[id(claims)] = (claims, values)
    return values


#: How a plan computes each attribute that depends on the request or the time, in a hashable
#: form that keys a remembered result as it is (:meth:`AttributePlan.key`), from the request, the
#: token's claims and the time: no :class:`AuthContext` is made for a request whose result is
#: remembered.
KeyGetter = Callable[[RequestFacts, Mapping[str, Any], float], Any]
#: How such a value becomes the attribute's value for CEL (on a miss only), given the request.
ToCel = Callable[[Any, RequestFacts], Any]


class NotKeyable(Exception):
    """A request value that must not key a remembered result (an adapter's method or path that
    is not a string)."""


def _method_key(request: RequestFacts, claims: Mapping[str, Any], now: float) -> Any:
    method = request.method
    if type(method) is not str:
        raise NotKeyable
    return method


def _path_key(request: RequestFacts, claims: Mapping[str, Any], now: float) -> Any:
    path = request.path
    if type(path) is not str:
        raise NotKeyable
    return path


def _query_key(request: RequestFacts, claims: Mapping[str, Any], now: float) -> Any:
    # The raw query string, when the adapter keeps one (it determines the parsed query), else the
    # query's pairs in the order given (the same fields in another order: a miss, never a wrong
    # hit).
    raw = getattr(request, "query_string", None)
    if type(raw) is str:
        return raw
    query = request.query
    if query is UNAVAILABLE:
        return query
    return tuple(query.items()) if query else ()


def _query_to_cel(value: Any, request: RequestFacts) -> Any:
    if type(value) is str:  # parsed on a miss only (werkzeug and the gateway cache it)
        query = request.query
        return query if query is UNAVAILABLE else _plain(query)
    return dict(value)


def _headers_key(request: RequestFacts, claims: Mapping[str, Any], now: float) -> Any:
    headers = request.headers
    return headers if headers is UNAVAILABLE else tuple(headers.items())


def _pairs_to_cel(value: Any, request: RequestFacts) -> Any:
    return dict(value)


def _named_headers(names: tuple[str, ...]) -> tuple[KeyGetter, ToCel]:
    """The request's headers among ``names`` (lower-case), as their values in that order
    (``None`` for an absent one): what a condition reading only these sees of the whole map. An
    adapter with ``headers_among`` finds them without building the whole map."""

    def get(request: RequestFacts, claims: Mapping[str, Any], now: float) -> Any:
        pick = getattr(request, "headers_among", None)
        if pick is not None:
            return pick(names)
        headers = request.headers
        if headers is UNAVAILABLE:
            return headers
        return tuple(map(headers.get, names))

    def to_cel(value: Any, request: RequestFacts) -> Any:
        return {n: v for n, v in zip(names, value, strict=True) if v is not None}

    return get, to_cel


def _keyer(getters: tuple[KeyGetter, ...]) -> Callable[..., tuple[Any, ...]]:
    # One tuple display per number of getters: a loop appending to a list costs more than the
    # getters themselves on a remembered request.
    if len(getters) == 1:
        (a,) = getters
        return lambda r, c, t: (id(c), a(r, c, t))
    if len(getters) == 2:
        a, b = getters
        return lambda r, c, t: (id(c), a(r, c, t), b(r, c, t))
    if len(getters) == 3:
        a, b, d = getters
        return lambda r, c, t: (id(c), a(r, c, t), b(r, c, t), d(r, c, t))
    if len(getters) == 4:
        a, b, d, e = getters
        return lambda r, c, t: (id(c), a(r, c, t), b(r, c, t), d(r, c, t), e(r, c, t))
    return lambda r, c, t: (id(c), *[get(r, c, t) for get in getters])


class AttributePlan:
    """The attributes a set of conditions names, split once into those computed from the request
    and the time and those cached per token. :attr:`key` computes the first, in a hashable form
    (maps as tuples), and makes them, with the token, the key of a remembered result;
    :meth:`attributes` turns a key into every attribute's value for CEL (on a miss).
    """

    __slots__ = ("_to_cel", "claim_names", "key", "keyable", "names", "request_names")

    def __init__(
        self, names: frozenset[str] | set[str], headers_read: frozenset[str] | None = None
    ) -> None:
        """``headers_read``: when the conditions read only these headers (by literal name), only
        they are handed to CEL — the others could not change a result."""
        getters: dict[str, tuple[KeyGetter, ToCel | None]] = {
            "request.method": (_method_key, None),
            "request.path": (_path_key, None),
            "request.query": (_query_key, _query_to_cel),
            "request.headers": (_headers_key, _pairs_to_cel),
            "authentication_age": (_age_now, None),
        }
        if headers_read is not None:
            getters["request.headers"] = _named_headers(tuple(sorted(headers_read)))
        self.names = frozenset(names)
        self.request_names = tuple(n for n in sorted(names) if n in GETTERS)
        self.claim_names = tuple(sorted(n for n in names if n not in GETTERS))
        #: Whether the values can key a remembered result (not the body: JSON of any shape).
        self.keyable = "request.body" not in self.request_names
        self._to_cel = tuple(getters[n][1] for n in self.request_names if self.keyable)
        #: ``key(request, claims, now)``: what the conditions' results depend on, hashable (only
        #: when :attr:`keyable`; :class:`NotKeyable` for a request whose values cannot be one):
        #: the token (by identity: its claims are one object per token; a memo holds them, so
        #: the id stays theirs), then the request's and the time's values in
        #: :attr:`request_names` order; a part the carrier did not pass on is
        #: :data:`UNAVAILABLE`. The query and headers are in the order given (the same fields
        #: in another order: a miss, never a wrong hit).
        self.key: Callable[[RequestFacts, Mapping[str, Any], float], tuple[Any, ...]] = _keyer(
            tuple(getters[n][0] for n in self.request_names) if self.keyable else ()
        )

    def attributes(
        self, key: tuple[Any, ...] | None, request: RequestFacts, context: AuthContext
    ) -> dict[str, Any]:
        """Every attribute by name, for CEL, from a :attr:`key` of the request (``None``: from
        the request itself); an :data:`UNAVAILABLE` one is left out, so that a condition reading
        it fails (closed)."""
        if key is None:
            return attribute_values(self.names, request, context)
        out: dict[str, Any] = {}
        for name, value, to_cel in zip(self.request_names, key[1:], self._to_cel, strict=True):
            if value is not UNAVAILABLE:
                if to_cel is not None:
                    value = to_cel(value, request)
                    if value is UNAVAILABLE:
                        continue
                out[name] = value
        if self.claim_names:
            claimed = _claim_values(context)
            for name in self.claim_names:
                out[name] = claimed[name]
        return out


def attribute_values(
    names: frozenset[str] | set[str], request: RequestFacts, context: AuthContext
) -> dict[str, Any]:
    """The values of ``names`` for this request and authentication; an :data:`UNAVAILABLE` part is
    left out, so that a condition reading it fails."""
    out: dict[str, Any] = {}
    claimed: dict[str, Any] | None = None
    for name in names:
        get = GETTERS.get(name)
        if get is not None:
            value = get(request, context)
            if value is not UNAVAILABLE:  # left out: a condition reading it fails (closed)
                out[name] = value
        else:
            if claimed is None:
                claimed = _claim_values(context)
            out[name] = claimed[name]
    return out
