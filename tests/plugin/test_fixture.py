"""The ``stepup_sandbox`` fixture, as a user's test suite sees it (contract 11): our own suite
asks for it like anyone else, through the installed ``pytest11`` entry point."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from client_sdk import Event, FactorsRequested, TokensIssued
from stepup.inprocess import Sandbox, SandboxError

pytestmark = pytest.mark.e2e

LOA1, LOA2 = "urn:stepup:loa:1", "urn:stepup:loa:2"


def claims(sandbox: Sandbox, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(requests.get(f"{sandbox.issuer}/jwks", timeout=10).json())
    return dict(jwt.decode(token, keys).claims)


def transfer(sandbox: Sandbox, http: Any, token: str | None = None, amount: str = "5.00") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    accounts = http.get(f"{sandbox.api_url}/accounts", headers=headers, timeout=30)
    assert accounts.status_code == 200
    a, b = accounts.json()["accounts"][:2]
    body = {"from_account": a["id"], "to_account": b["id"], "amount": amount}
    return http.post(f"{sandbox.api_url}/transfers", json=body, headers=headers, timeout=30)


def test_the_fixture_serves_the_provider_and_the_api(stepup_sandbox: Sandbox) -> None:
    assert stepup_sandbox.issuer.startswith("http://127.0.0.1:")
    assert stepup_sandbox.users == ("alice", "bob")
    discovery = requests.get(
        f"{stepup_sandbox.issuer}/.well-known/openid-configuration", timeout=10
    )
    assert discovery.json()["issuer"] == stepup_sandbox.issuer
    assert requests.get(f"{stepup_sandbox.api_url}/accounts", timeout=10).status_code == 401


def test_minted_tokens_carry_the_chosen_claims(stepup_sandbox: Sandbox) -> None:
    now = stepup_sandbox.now()
    token = stepup_sandbox.mint_token(
        "alice", acr=LOA2, amr=["pwd", "otp"], auth_time=-600, scope="openid accounts:read"
    )
    got = claims(stepup_sandbox, token)
    assert (got["acr"], got["amr"], got["scope"]) == (
        LOA2,
        ["pwd", "otp", "mfa"],
        "openid accounts:read",
    )
    assert now - 600 <= got["auth_time"] <= now - 599
    assert got["aud"] == "https://bank.example/api"


def test_a_weak_minted_token_gets_the_rfc9470_challenge(stepup_sandbox: Sandbox) -> None:
    response = transfer(stepup_sandbox, requests, stepup_sandbox.mint_token("alice", acr=LOA1))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer error="insufficient_user_authentication"'
    )
    assert 'acr_values="urn:stepup:loa:2", max_age=3600' in response.headers["WWW-Authenticate"]
    assert (
        transfer(stepup_sandbox, requests, stepup_sandbox.mint_token("alice", acr=LOA2)).status_code
        == 201
    )


def test_advance_clock_expires_max_age_at_the_api(stepup_sandbox: Sandbox) -> None:
    token = stepup_sandbox.mint_token("alice", acr=LOA2, auth_time=-3500)
    assert transfer(stepup_sandbox, requests, token).status_code == 201
    before = stepup_sandbox.now()
    assert stepup_sandbox.advance_clock(200) - before in (200, 201)
    response = transfer(stepup_sandbox, requests, token)
    assert response.status_code == 401
    assert 'error="insufficient_user_authentication"' in response.headers["WWW-Authenticate"]


def test_mint_errors_name_the_problem(stepup_sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match=r"^/sandbox/token: no user 'carol'$"):
        stepup_sandbox.mint_token("carol")
    with pytest.raises(SandboxError, match=r"unknown acr 'urn:x'"):
        stepup_sandbox.mint_token("alice", acr="urn:x")


def test_the_session_steps_up_through_the_login_pages(stepup_session: requests.Session,
                                                      stepup_sandbox: Sandbox) -> None:  # fmt: skip
    response = transfer(stepup_sandbox, stepup_session)
    assert response.status_code == 201
    assert response.json()["authorized_with"] == {"acr": LOA2, "amr": ["pwd", "otp", "mfa"]}


def test_the_session_logs_in_again_when_the_clock_passes_max_age(stepup_sandbox: Sandbox) -> None:
    events: list[Event] = []
    http = stepup_sandbox.session("alice", hooks=[events.append])
    assert transfer(stepup_sandbox, http).status_code == 201
    first = [e for e in events if isinstance(e, TokensIssued)][-1].id_token_claims
    events.clear()
    stepup_sandbox.advance_clock(3601)  # past the transfer's max_age=3600
    assert transfer(stepup_sandbox, http).status_code == 201
    # The provider asked for every factor again, and auth_time moved with the clock.
    assert [e.factors for e in events if isinstance(e, FactorsRequested)] == [("pwd",), ("otp",)]
    second = [e for e in events if isinstance(e, TokensIssued)][-1].id_token_claims
    assert (first["acr"], second["acr"]) == (LOA2, LOA2)
    assert second["auth_time"] - first["auth_time"] >= 3600


def test_the_plugin_imports_nothing_heavy() -> None:
    # pytest imports it in every run of every project that installs us.
    code = (
        "import sys, stepup.pytest_plugin\n"
        "heavy = {'flask', 'provider', 'client_sdk', 'resource_api', 'requests', 'sqlalchemy'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"
