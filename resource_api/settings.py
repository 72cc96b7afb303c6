"""The resource API's settings: plain frozen values, and the shape the demo bank takes.

Like the provider, this package reads no files: the ``stepup`` command parses ``[api]`` from TOML
and hands :func:`resource_api.create_app` an object with the attributes of :class:`BankConfig`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ApiConfig", "BankConfig", "LevelNames", "RouteConfig", "RouteSpec", "RuleConfig"]


# Defined here, not in resource_api.policy (which re-exports it): whoever only reads settings
# (``stepup provider``) does not import the CEL engine (issue 11).
@dataclass(frozen=True)
class RuleConfig:
    """One policy rule, ``[[api.rules]]`` (DESIGN contract 9). ``methods`` empty: every method;
    ``path`` ``None``: every path; ``when`` ``None``: always. The effect is a step-up requirement
    (``acr_values``, ``max_age``, ``scope``, ``authorization_details``) or ``deny`` (the reason
    given to the client). ``authorization_details``: a CEL expression over ``request.*`` giving the
    RFC 9396 entries (a map, or a list of maps) the token must have been approved for — this very
    transaction (docs/transactional.md)."""

    name: str
    methods: tuple[str, ...] = ()
    path: str | None = None
    when: str | None = None
    acr_values: tuple[str, ...] = ()
    max_age: int | None = None
    scope: tuple[str, ...] = ()
    deny: str | None = None
    authorization_details: str | None = None


@dataclass(frozen=True)
class RouteConfig:
    """A step-up requirement on one API route, ``[[api.routes]]``."""

    method: str
    path: str
    acr_values: tuple[str, ...] = ()
    max_age: int | None = None
    scope: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApiConfig:
    """The resource API, ``[api]``. ``issuer`` defaults to the top-level ``issuer``."""

    audience: str = "https://bank.example/api"
    issuer: str | None = None
    routes: tuple[RouteConfig, ...] = ()
    # Policy rules, [[api.rules]] (DESIGN contract 9), in their order. The stepup command compiles
    # them when it reads the file, so a bad rule stops the program at start.
    rules: tuple[RuleConfig, ...] = ()
    # Levels the API orders, weakest first, so that a higher one satisfies a lower one. Defaults to
    # the provider's own ``acr_levels`` (values and aliases) when empty.
    acr_order: tuple[str, ...] = ()


class RouteSpec(Protocol):
    """A requirement on one route, as ``[[api.routes]]`` gives it (:class:`RouteConfig` is one)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def acr_values(self) -> Sequence[str]: ...
    @property
    def max_age(self) -> int | None: ...
    @property
    def scope(self) -> Sequence[str]: ...


class LevelNames(Protocol):
    """An authentication level as the API needs it: its value and the aliases equal to it."""

    @property
    def value(self) -> str: ...

    @property
    def aliases(self) -> Sequence[str]: ...


class BankConfig(Protocol):
    """What :func:`resource_api.create_app` reads. ``stepup.config.StepupConfig`` is one."""

    @property
    def api(self) -> ApiConfig: ...

    @property
    def api_issuer(self) -> str:
        """The issuer whose tokens the API accepts."""
        ...

    @property
    def acr_levels(self) -> Sequence[LevelNames]:
        """The provider's levels, weakest first: the order used when ``api.acr_order`` is empty."""
        ...
