"""The step-up decision: access-token claims + a requirement + the time → allow or challenge.

Pure: no Flask, no HTTP, no clock of its own, so any framework can use it. It implements the
resource-server side of RFC 9470 (OAuth 2.0 Step Up Authentication Challenge Protocol):

- §3 — when "the authentication event associated with the access token presented with the request
  does not meet the authentication requirements of the protected resource", the server answers
  with ``error="insufficient_user_authentication"`` and the ``acr_values`` (space-separated, "in
  order of preference") and/or ``max_age`` the new token must meet. :class:`Challenge` carries them.
- §6.1 — the server learns the authentication level and time from the token's ``acr`` and
  ``auth_time`` claims (RFC 9068 §2.2.1 for JWTs, RFC 7662 for introspection).

Our semantics (DESIGN.md): levels are ordered weakest first and a stronger level satisfies a
request for a weaker one; values of one level (a level and its aliases) are equivalent. A token
without ``acr`` or ``auth_time`` meets no requirement that names them and is challenged — never
passed silently. Scope (RFC 6750 §3.1, ``insufficient_scope``) is checked first, because stepping up
cannot add a missing scope.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from .authorization_details import covers

__all__ = [
    "AcrOrder",
    "Allow",
    "AuthContext",
    "Challenge",
    "Decision",
    "InsufficientScope",
    "Requirement",
    "combine",
    "decide",
    "lasting",
]

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ); acr values are space-separated in
# the challenge (RFC 9470 §3), so neither may contain a space, a quote or a backslash.
_TOKEN_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def _check_tokens(what: str, values: Sequence[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(f"{what} must be a sequence of strings, not one string")
    out = tuple(values)
    for v in out:
        if not isinstance(v, str) or not _TOKEN_RE.fullmatch(v):
            raise ValueError(f"{what}: {v!r} is not a valid value (no spaces, quotes or backslash)")
    return out


@dataclass(frozen=True)
class AcrOrder:
    """Authentication levels ordered weakest first; each level is a set of equivalent values."""

    levels: tuple[frozenset[str], ...] = ()
    _rank: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rank: dict[str, int] = {}
        for i, level in enumerate(self.levels):
            for value in level:
                if value in rank:
                    raise ValueError(f"acr value {value!r} appears in two levels")
                rank[value] = i
        object.__setattr__(self, "_rank", rank)

    @classmethod
    def from_levels(cls, levels: Iterable[Iterable[str]]) -> AcrOrder:
        """Levels weakest first, each an iterable of equivalent values (a value and its aliases)."""
        return cls(tuple(frozenset(level) for level in levels))

    @classmethod
    def from_values(cls, values: Iterable[str]) -> AcrOrder:
        """One value per level, weakest first."""
        return cls(tuple(frozenset((v,)) for v in values))

    def rank(self, acr: str) -> int | None:
        """The position of ``acr`` (0 = weakest), or ``None`` for a value not in the order."""
        return self._rank.get(acr)

    def satisfies(self, acr: str | None, acceptable: Sequence[str]) -> bool:
        """Whether a token's ``acr`` meets a request for any of ``acceptable``."""
        if acr is None:
            return False
        if acr in acceptable:
            return True
        have = self._rank.get(acr)
        if have is None:
            return False
        return any((want := self._rank.get(v)) is not None and have >= want for v in acceptable)

    def strength(self, acceptable: Sequence[str]) -> int | None:
        """The weakest known level among ``acceptable`` (what it takes to satisfy the list)."""
        ranks = [r for v in acceptable if (r := self._rank.get(v)) is not None]
        return min(ranks) if ranks else None


@dataclass(frozen=True)
class Requirement:
    """What a call needs: any of ``acr_values`` (preferred first), an authentication no older than
    ``max_age`` seconds, every scope in ``scope``, and a grant covering every RFC 9396 entry of
    ``authorization_details`` (canonical JSON texts, :mod:`resource_api.authorization_details`).
    Empty fields require nothing."""

    acr_values: tuple[str, ...] = ()
    max_age: int | None = None
    scope: tuple[str, ...] = ()
    authorization_details: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "acr_values", _check_tokens("acr_values", self.acr_values))
        object.__setattr__(self, "scope", _check_tokens("scope", self.scope))
        if self.max_age is not None and (
            isinstance(self.max_age, bool) or not isinstance(self.max_age, int) or self.max_age < 0
        ):
            raise ValueError(f"max_age must be an integer >= 0, not {self.max_age!r}")
        details = self.authorization_details
        if isinstance(details, str) or not all(isinstance(d, str) for d in details):
            raise TypeError("authorization_details must be a sequence of canonical JSON texts")
        object.__setattr__(self, "authorization_details", tuple(details))

    @property
    def is_step_up(self) -> bool:
        return bool(self.acr_values) or self.max_age is not None or bool(self.authorization_details)


def combine(requirements: Iterable[Requirement | None], order: AcrOrder) -> Requirement:
    """One requirement that holds when all of ``requirements`` hold.

    ``max_age`` is the smallest; scopes and ``authorization_details``, the union. For
    ``acr_values`` the list that asks for the stronger level wins (a token meeting it meets the
    other, since stronger satisfies weaker); when the order cannot tell (values it does not know),
    the later requirement — the more specific one — wins.
    """
    acr: tuple[str, ...] = ()
    max_age: int | None = None
    scope: list[str] = []
    details: list[str] = []
    for req in requirements:
        if req is None:
            continue
        details.extend(d for d in req.authorization_details if d not in details)
        if req.acr_values:
            if not acr:
                acr = req.acr_values
            else:
                mine, theirs = order.strength(acr), order.strength(req.acr_values)
                if mine is None or theirs is None or theirs >= mine:
                    acr = req.acr_values
        if req.max_age is not None:
            max_age = req.max_age if max_age is None else min(max_age, req.max_age)
        scope.extend(s for s in req.scope if s not in scope)
    return Requirement(acr, max_age, tuple(scope), tuple(details))


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class AuthContext:
    """The authentication behind a call, as handlers read it, over the token's verified claims.

    ``authentication_policy`` is the token's ``acr``; ``authentication_time`` its ``auth_time``;
    both ``None`` when the token lacks them (or carries a value of the wrong type). Each attribute
    is read from the claims when asked for: building a context costs nothing per request.
    """

    claims: Mapping[str, Any]
    now: float

    def __init__(self, claims: Mapping[str, Any], now: float) -> None:
        # One is made per request: filled through __dict__, half the cost of the generated
        # frozen __init__ (object.__setattr__ per field); still frozen for everyone else.
        fields = self.__dict__
        fields["claims"] = claims
        fields["now"] = now

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], now: float) -> AuthContext:
        return cls(claims, now)

    @property
    def sub(self) -> str:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else ""

    @property
    def scope(self) -> frozenset[str]:
        scope = self.claims.get("scope")
        if isinstance(scope, str):
            return frozenset(scope.split())
        if isinstance(scope, list):
            return frozenset(s for s in scope if isinstance(s, str))
        return frozenset()

    @property
    def authentication_policy(self) -> str | None:
        acr = self.claims.get("acr")
        return acr if isinstance(acr, str) and acr else None

    @property
    def authentication_time(self) -> float | None:
        return _numeric(self.claims.get("auth_time"))

    @property
    def authentication_age(self) -> float | None:
        """Seconds since the user last authenticated (``now - auth_time``), or ``None``."""
        auth_time = self.authentication_time
        return None if auth_time is None else self.now - auth_time

    @property
    def amr(self) -> tuple[str, ...]:
        amr = self.claims.get("amr")
        return tuple(a for a in amr if isinstance(a, str)) if isinstance(amr, list) else ()

    @property
    def client_id(self) -> str | None:
        client_id = self.claims.get("client_id")
        return client_id if isinstance(client_id, str) else None


@dataclass(frozen=True)
class Allow:
    """The call may proceed."""


@dataclass(frozen=True)
class InsufficientScope:
    """RFC 6750 §3.1 ``insufficient_scope`` (403): the token lacks ``scope``."""

    scope: tuple[str, ...]
    description: str
    error: ClassVar[str] = "insufficient_scope"
    status_code: ClassVar[int] = 403


@dataclass(frozen=True)
class Challenge:
    """RFC 9470 §3 ``insufficient_user_authentication`` (401): authenticate again, meeting these.

    ``authorization_details``: the RFC 9396 entries the user must approve for this request (our
    extension of the challenge, docs/transactional.md); empty for a plain step-up."""

    acr_values: tuple[str, ...]
    max_age: int | None
    description: str
    authorization_details: tuple[str, ...] = ()
    error: ClassVar[str] = "insufficient_user_authentication"
    status_code: ClassVar[int] = 401


Decision: TypeAlias = Allow | InsufficientScope | Challenge

_ALLOW = Allow()


def _levels(values: Sequence[str]) -> str:
    if len(values) == 1:
        return f"level {values[0]}"
    return "one of the levels " + ", ".join(values)


def _auth_time(claims: Mapping[str, Any]) -> float | None:
    # AuthContext.authentication_time, inlined (this runs on every request).
    auth_time = claims.get("auth_time")
    if type(auth_time) is float or type(auth_time) is int:
        return float(auth_time) if math.isfinite(auth_time) else None
    return _numeric(auth_time)


_FOREVER = (0.0, math.inf)
_NOW_ONLY = (0.0, -math.inf)


def lasting(context: AuthContext, requirement: Requirement) -> tuple[float, float]:
    """For how long :func:`decide`'s answer for ``context`` stays its answer for the same
    claims: ``(auth_time, limit)`` such that it is the same for every ``now`` with
    ``now - auth_time < limit`` (``-inf``: decide again each time). Only ``max_age`` makes the
    answer depend on the time, and only through the whole seconds ``floor(now - auth_time)``:
    while they stay within ``max_age``, only the claims decide (a challenge that names the age of
    the login is decided again each time: its description changes every second)."""
    max_age = requirement.max_age
    if max_age is None:
        return _FOREVER
    auth_time = _auth_time(context.claims)
    if auth_time is None:
        return _FOREVER
    if max_age >= 2**52 or math.floor(context.now - auth_time) > max_age:
        return _NOW_ONLY  # (past 2**52, max_age + 1 is not exact as a float)
    # floor(x) <= max_age exactly when x < max_age + 1; the same float subtraction as decide's.
    return auth_time, float(max_age + 1)


def decide(context: AuthContext, requirement: Requirement, order: AcrOrder) -> Decision:
    """Whether the call described by ``context`` meets ``requirement``; ``context.now`` is "now"."""
    if requirement.scope:
        granted = context.scope
        missing = [s for s in requirement.scope if s not in granted]
        if missing:
            return InsufficientScope(
                requirement.scope, f"this request needs the scope {' '.join(requirement.scope)}"
            )
    acr_values, max_age = requirement.acr_values, requirement.max_age
    details = requirement.authorization_details
    if not acr_values and max_age is None and not details:
        return _ALLOW

    problems: list[str] = []
    claims = context.claims
    if acr_values:
        acr = claims.get("acr")  # authentication_policy, inlined (this runs on every request)
        if not isinstance(acr, str) or not acr:
            acr = None
        if acr is None:
            problems.append(
                f"this request needs authentication at {_levels(acr_values)}; "
                "the token says nothing about how the user authenticated (no acr claim)"
            )
        elif acr not in acr_values and not order.satisfies(acr, acr_values):
            problems.append(
                f"this request needs authentication at {_levels(acr_values)}"
                f"{' or stronger' if order.strength(acr_values) is not None else ''}; "
                f"the token's level is {acr}"
            )
    if max_age is not None:
        auth_time = _auth_time(claims)
        if auth_time is None:
            problems.append(
                f"this request needs a login within the last {max_age} seconds; "
                "the token does not say when the user authenticated (no auth_time claim)"
            )
        # Whole seconds, as the provider counts them: auth_time is a NumericDate in seconds and
        # the provider decides "now - auth_time > max_age" on whole seconds. Comparing fractions
        # would refuse, at 300.5 s, a token the provider had just judged fresh at 300 s — and the
        # client's step-up would end in a second challenge instead of a transfer.
        elif math.floor(age := context.now - auth_time) > max_age:
            problems.append(
                f"this request needs a login within the last {max_age} seconds; "
                f"the user's last login was {int(age)} seconds ago"
            )
    if details and not covers(claims.get("authorization_details"), details):
        problems.append(
            "this request needs the user's approval of this very transaction; the token's "
            "authorization_details do not cover it"
        )
    if not problems:
        return _ALLOW
    # RFC 9470 §3: the challenge names what the new token must meet. We send the whole requirement
    # (both acr_values and max_age when the route has both), so that re-authenticating for a stale
    # login does not come back at a weaker level.
    return Challenge(requirement.acr_values, requirement.max_age, "; ".join(problems), details)
