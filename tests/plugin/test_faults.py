"""Negative paths on demand, as a user's test suite meets them: ``stepup_sandbox.inject(...)``
arms a fault, and the client SDK (``stepup_sandbox.session()``: StepUpAuth with a
HeadlessAuthenticator through the real login pages) raises its typed error."""

from __future__ import annotations

import pytest
import requests

from client_sdk import (
    AuthorizationError,
    LoginFailed,
    ProviderError,
    UnmetAuthenticationRequirements,
)
from stepup.inprocess import Sandbox, SandboxError

pytestmark = pytest.mark.e2e


def accounts(sandbox: Sandbox, http: requests.Session) -> requests.Response:
    return http.get(f"{sandbox.api_url}/accounts", timeout=30)


def test_a_cancelled_login_is_an_access_denied_authorization_error(
    stepup_sandbox: Sandbox,
) -> None:
    stepup_sandbox.inject("cancel", "alice")
    http = stepup_sandbox.session("alice")
    with pytest.raises(AuthorizationError) as caught:
        accounts(stepup_sandbox, http)
    assert type(caught.value) is AuthorizationError
    assert caught.value.error == "access_denied"
    # One login only: the app's retry goes through.
    assert accounts(stepup_sandbox, http).status_code == 200


def test_an_unreachable_level_is_unmet_authentication_requirements(
    stepup_sandbox: Sandbox,
) -> None:
    stepup_sandbox.inject("unmet", "alice")
    with pytest.raises(UnmetAuthenticationRequirements) as caught:
        accounts(stepup_sandbox, stepup_sandbox.session("alice"))
    assert caught.value.error == "unmet_authentication_requirements"


def test_a_refused_factor_is_login_failed(stepup_sandbox: Sandbox) -> None:
    stepup_sandbox.inject("refuse", "alice", count=2)
    assert stepup_sandbox.faults()["faults"] == [{"user": "alice", "fault": "refuse", "count": 2}]
    for _ in range(2):
        with pytest.raises(LoginFailed) as caught:
            accounts(stepup_sandbox, stepup_sandbox.session("alice"))
        assert caught.value.alert == "The username or password is incorrect."
    assert accounts(stepup_sandbox, stepup_sandbox.session("alice")).status_code == 200


def test_a_provider_down_is_a_provider_error_until_the_clock_moves(
    stepup_sandbox: Sandbox,
) -> None:
    stepup_sandbox.inject("down", seconds=30)
    discovery = f"{stepup_sandbox.issuer}/.well-known/openid-configuration"
    answer = requests.get(discovery, timeout=10)
    assert answer.status_code == 503
    assert 1 <= int(answer.headers["Retry-After"]) <= 30
    http = stepup_sandbox.session("alice")
    with pytest.raises(ProviderError) as caught:
        accounts(stepup_sandbox, http)
    assert caught.value.status_code == 503
    stepup_sandbox.advance_clock(30)
    assert accounts(stepup_sandbox, http).status_code == 200


def test_clear_faults_and_bad_arguments(stepup_sandbox: Sandbox) -> None:
    stepup_sandbox.inject("cancel", "bob", count=3)
    assert stepup_sandbox.clear_faults() == {"faults": [], "down": None}
    with pytest.raises(SandboxError, match="no user 'mallory'"):
        stepup_sandbox.inject("cancel", "mallory")
    with pytest.raises(SandboxError, match="seconds"):
        stepup_sandbox.inject("down")
