"""CIBA end to end over real sockets: a running sandbox (the pytest plugin's), ``requests`` as
the client, ``stepup approve`` / ``stepup deny`` and the device page as the user's phone."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from provider.factors import totp
from stepup.inprocess import Sandbox
from tests.provider.flow import ALICE_SECRET, parse_page

from .ciba_support import ciba_sandbox, drain, run  # noqa: F401  (the "sandbox" fixture)

pytestmark = pytest.mark.e2e

PAYMENTS = ("bank-payments", "bank-payments-secret-for-the-local-sandbox")
GRANT = "urn:openid:params:grant-type:ciba"
LOA2 = "urn:stepup:loa:2"
PAYMENT = {"type": "payment", "amount": "1500.00", "currency": "EUR", "payee": "acc_bob"}


def start(sandbox: Sandbox, **params: Any) -> str:
    data = {"scope": "openid profile", "login_hint": "alice", **params}
    if "authorization_details" in data:
        data["authorization_details"] = json.dumps(data["authorization_details"])
    response = requests.post(f"{sandbox.issuer}/backchannel", data=data, auth=PAYMENTS, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["auth_req_id"])


def poll(sandbox: Sandbox, auth_req_id: str) -> requests.Response:
    return requests.post(
        f"{sandbox.issuer}/token",
        data={"grant_type": GRANT, "auth_req_id": auth_req_id},
        auth=PAYMENTS,
        timeout=10,
    )


def error(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


def decode(sandbox: Sandbox, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(requests.get(f"{sandbox.issuer}/jwks", timeout=10).json())
    return dict(jwt.decode(token, keys).claims)


def test_discovery_lists_the_backchannel_endpoint(sandbox: Sandbox) -> None:
    metadata = requests.get(f"{sandbox.issuer}/.well-known/openid-configuration", timeout=10).json()
    assert metadata["backchannel_authentication_endpoint"] == f"{sandbox.issuer}/backchannel"
    assert metadata["backchannel_token_delivery_modes_supported"] == ["poll"]
    assert GRANT in metadata["grant_types_supported"]


def test_approved_with_stepup_approve(sandbox: Sandbox) -> None:
    auth_req_id = start(
        sandbox, binding_message="W4SCT", acr_values=LOA2, authorization_details=[PAYMENT]
    )
    assert error(poll(sandbox, auth_req_id)) == (400, "authorization_pending")
    status, out = run("approve", "alice", "--issuer", sandbox.issuer)
    assert status == 0
    assert out.startswith("Approved request ")
    assert out.splitlines()[0].endswith(" of bank-payments for alice: 'W4SCT'")
    assert out.splitlines()[1] == (
        '  payment: {"amount": "1500.00", "currency": "EUR", "payee": "acc_bob", "type": "payment"}'
    )
    response = poll(sandbox, auth_req_id)
    assert response.status_code == 200, response.text
    body = response.json()
    access = decode(sandbox, body["access_token"])
    assert (access["acr"], access["amr"]) == (LOA2, ["pwd", "otp", "mfa"])
    assert abs(access["auth_time"] - sandbox.now()) <= 2
    assert access["authorization_details"] == [PAYMENT]
    assert decode(sandbox, body["id_token"])["acr"] == LOA2
    assert error(poll(sandbox, auth_req_id)) == (400, "invalid_grant")


def test_approved_on_the_device_page(sandbox: Sandbox) -> None:
    auth_req_id = start(sandbox, binding_message="PAGE-1", acr_values=LOA2)
    phone = requests.Session()
    page = phone.get(f"{sandbox.issuer}/sandbox/device/alice", timeout=10)
    assert page.status_code == 200
    assert "PAGE-1" in page.text
    form = parse_page(page.text).forms[0]
    code = totp.code_at(ALICE_SECRET, sandbox.now())
    data = {**form.hidden(), "action": "approve", "password": "wonderland", "code": code}
    approved = phone.post(f"{sandbox.issuer}{form.action}", data=data, timeout=10)
    assert approved.status_code == 200
    assert "Approved." in approved.text
    assert poll(sandbox, auth_req_id).status_code == 200


def test_denied_with_stepup_deny(sandbox: Sandbox) -> None:
    auth_req_id = start(sandbox, binding_message="NOPE")
    status, out = run("deny", "alice", "--issuer", sandbox.issuer)
    assert status == 0
    assert out.startswith("Denied request ")
    assert error(poll(sandbox, auth_req_id)) == (400, "access_denied")


def test_nothing_to_approve_says_so(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("approve", "alice", "--issuer", sandbox.issuer) == (1, "")
    assert capsys.readouterr().err == "stepup approve: alice has no pending request\n"


def test_expired_on_the_sandbox_clock(sandbox: Sandbox) -> None:
    auth_req_id = start(sandbox, requested_expiry="60")
    assert error(poll(sandbox, auth_req_id)) == (400, "authorization_pending")
    sandbox.advance_clock(60)
    assert error(poll(sandbox, auth_req_id)) == (400, "expired_token")
    assert run("approve", "alice", "--issuer", sandbox.issuer)[0] == 1


def test_polling_too_fast_is_slow_down(sandbox: Sandbox) -> None:
    auth_req_id = start(sandbox)
    assert error(poll(sandbox, auth_req_id)) == (400, "authorization_pending")
    assert error(poll(sandbox, auth_req_id)) == (400, "slow_down")
    sandbox.advance_clock(5)  # (a real second may pass too: still under 10)
    assert error(poll(sandbox, auth_req_id)) == (400, "slow_down")  # the interval is 10 s now
    sandbox.advance_clock(15)  # the interval is 15 s now
    assert error(poll(sandbox, auth_req_id)) == (400, "authorization_pending")


def parallel_polls(sandbox: Sandbox, auth_req_id: str, n: int) -> list[requests.Response]:
    barrier = threading.Barrier(n, timeout=30)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        response = poll(sandbox, auth_req_id)
        with lock:
            results.append(response)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_parallel_polls_after_approval_get_one_token_set(sandbox: Sandbox) -> None:
    for _ in range(3):
        auth_req_id = start(sandbox)
        assert run("approve", "alice", "--issuer", sandbox.issuer)[0] == 0
        results = parallel_polls(sandbox, auth_req_id, 4)
        assert sorted(r.status_code for r in results) == [200, 400, 400, 400]
        assert {r.json()["error"] for r in results if r.status_code == 400} == {"invalid_grant"}
