"""The requirements of ``[[api.routes]]`` as a :class:`~.enforcer.RequestPolicy`: what the demo API
enforces through :class:`resource_api.StepUp`, for requests that reach no Flask app.

A route's ``path`` is a Flask rule (``/accounts/<account_id>``) or a literal path; every route that
matches the method (HEAD counts as GET) and the path applies, combined into the strictest
requirement (:func:`resource_api.step_up.combine`), then :func:`resource_api.step_up.decide`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Protocol

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, MapAdapter, RequestRedirect, Rule

from ..step_up import AcrOrder, AuthContext, Requirement, combine, decide
from .enforcer import PolicyResult, RequestInfo

__all__ = ["RoutePolicy"]


class RouteSpec(Protocol):
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


def _describe(route: RouteSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"route": f"{route.method.upper()} {route.path}"}
    if route.acr_values:
        out["acr_values"] = list(route.acr_values)
    if route.max_age is not None:
        out["max_age"] = route.max_age
    return out


class RoutePolicy:
    def __init__(self, routes: Iterable[RouteSpec], order: AcrOrder) -> None:
        self.order = order
        self._routes: list[tuple[RouteSpec, MapAdapter, Requirement]] = []
        for route in routes:
            adapter = Map([Rule(route.path, methods=[route.method.upper()], endpoint="r")],
                          strict_slashes=False).bind("gateway")  # fmt: skip
            requirement = Requirement(tuple(route.acr_values), route.max_age, tuple(route.scope))
            self._routes.append((route, adapter, requirement))
        # Matching a path against werkzeug rules costs ~30 us a route; a request repeats a path
        # already seen far more often than not. Bounded, so unique paths cannot grow it.
        self._plan = lru_cache(maxsize=4096)(self._compute_plan)

    def needs_body(self, method: str, path: str) -> bool:
        return False  # routes never read the body

    def _matching(self, method: str, path: str) -> list[tuple[RouteSpec, Requirement]]:
        method = "GET" if method == "HEAD" else method
        found = []
        for route, adapter, requirement in self._routes:
            try:
                adapter.match(path, method=method)
            except RequestRedirect:
                pass  # the path with or without a trailing slash: the route still applies
            except HTTPException:
                continue
            found.append((route, requirement))
        return found

    def _compute_plan(self, method: str, path: str) -> tuple[Requirement, list[dict[str, Any]]]:
        matched = self._matching(method, path)
        requirement = combine((r for _, r in matched), self.order)
        return requirement, [_describe(route) for route, _ in matched]

    def evaluate(self, request: RequestInfo, context: AuthContext) -> PolicyResult:
        requirement, rules = self._plan(request.method, request.path)
        decision = decide(context, requirement, self.order)
        return PolicyResult(decision, {"rules": rules})
