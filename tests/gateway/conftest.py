"""Fixtures for the gateway and sideband tests: the fake issuer and clock of the resource API
tests, the sandbox config's ``[[api.routes]]`` (the demo bank's rules), and an enforcer over
them."""

from __future__ import annotations

from typing import Any

import pytest

from resource_api import JwtAccessTokenValidator
from resource_api.gateway import Enforcer, PolicyResult, RequestInfo, RulePolicy, build_enforcer
from resource_api.step_up import AuthContext

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
    """The sandbox config's routes and rules, as the enforcer applies them, recording the bodies
    its body rule (transfers over 1,000.00 need a login in the last 5 minutes) was given — to
    prove the body reaches the decision through each carrier."""

    def __init__(self, rules: RulePolicy) -> None:
        self.rules = rules
        self.bodies: list[Any] = []

    def needs_body(self, method: str, path: str) -> bool:
        return self.rules.needs_body(method, path)

    def evaluate(self, request: RequestInfo, context: AuthContext) -> PolicyResult:
        if self.needs_body(request.method, request.path):
            self.bodies.append(request.body)
        return self.rules.evaluate(request, context)


@pytest.fixture
def enforcer(validator: JwtAccessTokenValidator, clock: Clock) -> Enforcer:
    """The sandbox config's routes: POST /transfers and PUT /profile/email need loa2."""
    return build_enforcer(sandbox_config(), validator=validator, clock=clock,
                          public_paths=["/health"])  # fmt: skip


@pytest.fixture
def bank_policy(enforcer: Enforcer) -> BankPolicy:
    assert isinstance(enforcer.policy, RulePolicy)
    policy = BankPolicy(enforcer.policy)
    enforcer.policy = policy
    return policy


@pytest.fixture
def config_issuer() -> str:
    return ISSUER
