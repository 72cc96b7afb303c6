"""``/sandbox/timeline``: a step-up, as a learner reads it, recorded by the provider and the demo
API of one sandbox (the plugin's fixture runs both in one process)."""

from __future__ import annotations

import calendar
import re
import time

import pytest
import requests

from client_sdk import Event, TokensIssued, UnmetAuthenticationRequirements
from stepup.inprocess import Sandbox

from .test_fixture import transfer

pytestmark = pytest.mark.e2e

LOA1, LOA2 = "urn:stepup:loa:1", "urn:stepup:loa:2"


def test_a_step_up_reads_in_order(stepup_sandbox: Sandbox) -> None:
    events: list[Event] = []
    assert transfer(stepup_sandbox, stepup_sandbox.session("alice", hooks=[events.append])).ok
    t1, t2 = [e.id_token_claims["auth_time"] for e in events if isinstance(e, TokensIssued)]
    answer = requests.get(
        f"{stepup_sandbox.issuer}/sandbox/timeline",
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    lines = [f"{s['from']} -> {s['to']}: {s['text']}" for s in answer.json()["steps"]]
    assert lines == [
        "App -> Provider: GET /authorize client_id=bank-cli",
        f"Provider -> App: asks the user for pwd (level {LOA1}, because login_required)",
        "Provider -> App: redirect with an authorization code",
        "App -> Provider: POST /token grant_type=authorization_code",
        f"Provider -> App: tokens: acr={LOA1} amr=pwd auth_time={t1}",
        "App -> API: GET /accounts",
        "API -> App: 200",
        "App -> API: POST /transfers",
        "API -> App: 401 challenge: error=insufficient_user_authentication "
        f"acr_values={LOA2} max_age=3600",
        # The challenge names the API's RFC 9728 document: the SDK checks that it lists the
        # issuer it is about to ask before sending the user there.
        "App -> API: GET /.well-known/oauth-protected-resource",
        "API -> App: 200",
        f"App -> Provider: GET /authorize client_id=bank-cli acr_values={LOA2} max_age=3600",
        f"Provider -> App: asks the user for otp (level {LOA2}, because step_up)",
        "Provider -> App: redirect with an authorization code",
        "App -> Provider: POST /token grant_type=authorization_code",
        f"Provider -> App: tokens: acr={LOA2} amr=pwd,otp,mfa auth_time={t2}",
        "App -> API: POST /transfers (retry with the new token)",
        "API -> App: 201",
    ]
    mmd = requests.get(f"{stepup_sandbox.issuer}/sandbox/timeline.mmd", timeout=10)
    assert mmd.status_code == 200
    assert mmd.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert mmd.text.startswith("sequenceDiagram\n    participant App as Client app\n")
    assert (
        "    API-->>App: 401 challenge: error=insufficient_user_authentication "
        f"acr_values={LOA2} max_age=3600\n"
    ) in mmd.text
    assert "    App->>API: POST /transfers (retry with the new token)\n" in mmd.text
    html = requests.get(f"{stepup_sandbox.issuer}/sandbox/timeline", timeout=10).text
    # The provider asked for the code after the first sign-in and before the second one ended.
    asked = re.search(
        r'<tr data-kind="asked"><td class="when"><time datetime="([0-9T:-]+Z)">.*?</time></td>'
        r'<td class="from">Provider</td><td class="to">App</td>'
        r'<td class="what">asks the user for otp '
        rf"\(level {re.escape(LOA2)}, because step_up\)</td></tr>",
        html,
    )
    assert asked is not None
    at = calendar.timegm(time.strptime(asked.group(1), "%Y-%m-%dT%H:%M:%SZ"))
    assert t1 <= at <= t2


def test_refusals_and_errors_show_too(stepup_sandbox: Sandbox) -> None:
    stepup_sandbox.inject("unmet", "alice")
    with pytest.raises(UnmetAuthenticationRequirements):
        transfer(stepup_sandbox, stepup_sandbox.session("alice"))
    texts = [s["text"] for s in _steps(stepup_sandbox)]
    assert texts[-1] == "redirect: error=unmet_authentication_requirements"
    cleared = requests.delete(
        f"{stepup_sandbox.issuer}/sandbox/timeline",
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert (cleared.status_code, cleared.json()) == (200, {"steps": []})


def _steps(sandbox: Sandbox) -> list[dict[str, object]]:
    answer = requests.get(
        f"{sandbox.issuer}/sandbox/timeline", headers={"Accept": "application/json"}, timeout=10
    )
    steps: list[dict[str, object]] = answer.json()["steps"]
    return steps
