"""Fixtures for the gateway and sideband tests: the fake issuer and clock of the resource API
tests, the sandbox config's ``[[api.routes]]`` (the demo bank's rules), and an enforcer over
them."""

from __future__ import annotations

from typing import Any

import pytest

from resource_api import JwtAccessTokenValidator
from resource_api.bank.rules import large_transfer_requirement
from resource_api.gateway import Enforcer, PolicyResult, RequestInfo, RoutePolicy, build_enforcer
from resource_api.step_up import AcrOrder, AuthContext, combine, decide

from ..resource_api.support import AUDIENCE, ISSUER, Clock, FakeIssuer, sandbox_config


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def issuer(clock: Clock) -> FakeIssuer:
    return FakeIssuer(clock)


@pytest.fixture
def validator(issuer: FakeIssuer, clock: Clock) -> JwtAccessTokenValidator:
    return JwtAccessTokenValidator(ISSUER, AUDIENCE, fetch=issuer.fetch, clock=clock)


class BankPolicy:
    """The demo bank's rules as a gateway sees them: the config's routes, and the bank's own
    body rule (transfers over 1,000.00 need a login in the last 5 minutes) — which reads the
    body, so it proves the body reaches the decision through each carrier."""

    def __init__(self, routes: RoutePolicy, order: AcrOrder) -> None:
        self.routes = routes
        self.order = order
        self.bodies: list[Any] = []

    def needs_body(self, method: str, path: str) -> bool:
        return method == "POST" and path == "/transfers"

    def evaluate(self, request: RequestInfo, context: AuthContext) -> PolicyResult:
        matched = self.routes._matching(request.method, request.path)
        requirements = [r for _, r in matched]
        if self.needs_body(request.method, request.path):
            self.bodies.append(request.body)
            requirements.append(large_transfer_requirement(request.body))
        decision = decide(context, combine(requirements, self.order), self.order)
        return PolicyResult(decision, {"rules": [f"{r.method} {r.path}" for r, _ in matched]})


@pytest.fixture
def enforcer(validator: JwtAccessTokenValidator, clock: Clock) -> Enforcer:
    """The sandbox config's routes: POST /transfers and PUT /profile/email need loa2."""
    return build_enforcer(sandbox_config(), validator=validator, clock=clock,
                          public_paths=["/health"])  # fmt: skip


@pytest.fixture
def bank_policy(enforcer: Enforcer) -> BankPolicy:
    assert isinstance(enforcer.policy, RoutePolicy)
    policy = BankPolicy(enforcer.policy, enforcer.order)
    enforcer.policy = policy
    return policy


@pytest.fixture
def config_issuer() -> str:
    return ISSUER
