"""The factor API end to end over real sockets: the running sandbox (the pytest plugin's) as it
ships — its ``back-office`` admin client — and ``requests`` as the server-side app."""

from __future__ import annotations

import pytest
import requests

from provider.factors import totp
from stepup.inprocess import Sandbox
from tests.provider.flow import ALICE_SECRET

pytestmark = pytest.mark.e2e

BACK_OFFICE = ("back-office", "back-office-secret-for-the-local-sandbox")


def admin_token(sandbox: Sandbox) -> str:
    response = requests.post(
        f"{sandbox.issuer}/token",
        data={
            "grant_type": "client_credentials",
            "scope": "stepup:factors",
            "resource": f"{sandbox.issuer}/api/v1",
        },
        auth=BACK_OFFICE,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "stepup:factors"
    return str(response.json()["access_token"])


def test_the_sandbox_verifies_a_totp_once_and_refuses_its_replay(
    stepup_sandbox: Sandbox,
) -> None:
    sandbox = stepup_sandbox
    sandbox.advance_clock(totp.PERIOD)  # a step no other test has used
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {admin_token(sandbox)}"
    users = f"{sandbox.issuer}/api/v1/users"

    listed = http.get(f"{users}/alice/factors", timeout=10)
    assert listed.status_code == 200
    assert [f["id"] for f in listed.json()["factors"] if f["verify"]] == ["otp"]

    def verify(code: str) -> requests.Response:
        opened = http.post(f"{users}/alice/factors/otp/challenge", timeout=10)
        assert opened.status_code == 201
        body = {"transaction_id": opened.json()["transaction_id"], "passcode": code}
        return http.post(f"{users}/alice/factors/otp/verify", json=body, timeout=10)

    started = sandbox.now()
    code = totp.code_at(ALICE_SECRET, started)
    first = verify(code)
    assert (first.status_code, first.json()["status"]) == (200, "verified")
    replay = verify(code)
    assert (replay.status_code, replay.json()["error"]) == (422, "replayed_passcode")

    # The audit, newest first, one row a page: the replay, then the success (other tests may
    # have verified alice's codes before: only the first two pages are this test's).
    first_page = http.get(f"{users}/alice/factors/audit", params={"limit": "1"}, timeout=10)
    assert first_page.status_code == 200
    [newest] = first_page.json()["entries"]
    assert (newest["result"], newest["reason"]) == ("failure", "replayed")
    assert started <= newest["at"] <= sandbox.now()  # the sandbox's clock runs in real time
    assert first_page.links["next"]["url"].startswith(f"{users}/alice/factors/audit?limit=1&")
    second_page = http.get(first_page.links["next"]["url"], timeout=10)
    assert second_page.status_code == 200
    [before] = second_page.json()["entries"]
    assert (before["result"], before["reason"], before["client_id"]) == (
        "success",
        "verified",
        "back-office",
    )
    assert before["transaction_id"] != newest["transaction_id"]  # two challenges, two rows

    anonymous = requests.get(f"{users}/alice/factors", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith(
        'Bearer realm="stepup-factor-api", scope="stepup:factors"'
    )
