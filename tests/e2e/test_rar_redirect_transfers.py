"""A transfer above the threshold through the browser path, end to end over real sockets: the
SDK (``StepUpAuth`` with a ``HeadlessAuthenticator``: the provider's login pages, filled), the
sandbox's bank and provider. The bank's challenge names the transaction (RFC 9396
``authorization_details``); the SDK sends it in the authorization request, the provider shows it
and has the user approve it with a fresh one-time code, and the token pays that transfer only.

Time is the sandbox's clock: the authenticator reads it, and its waits for the next one-time code
move it (no real waiting)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from client_sdk import (
    ApiRequestSent,
    AuthorizationRequested,
    Event,
    FactorsRequested,
    HeadlessAuthenticator,
    PendingAuthorization,
    RedirectAuthenticator,
    StepUpAuth,
    StepUpRequired,
    TokensIssued,
)
from client_sdk.authenticators.base import LoginRequest
from stepup.inprocess import Sandbox

from .bank_ledger import balances, pay_back
from .transfer_approval import assert_pays_that_transfer_only, canonical

pytestmark = pytest.mark.e2e

LOA1, LOA2 = "urn:stepup:loa:1", "urn:stepup:loa:2"
ALICE_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def session(sandbox: Sandbox, events: list[Event]) -> requests.Session:
    """alice, through bank-cli's pages; a wait for the next code moves the sandbox's clock."""

    def sleep(seconds: float) -> None:
        sandbox.advance_clock(int(seconds) + 1)

    browser = HeadlessAuthenticator(
        "alice", "wonderland", ALICE_SECRET, clock=sandbox.now, sleep=sleep
    )
    http = requests.Session()
    http.auth = StepUpAuth(
        sandbox.issuer, "bank-cli", authenticator=browser,
        redirect_uri="http://127.0.0.1:8765/callback", clock=sandbox.now, hooks=[events.append],
    )  # fmt: skip
    return http


def accounts(http: requests.Session, sandbox: Sandbox) -> list[str]:
    response = http.get(f"{sandbox.api_url}/accounts", timeout=30)
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()["accounts"]]


def test_a_large_transfer_is_approved_through_the_pages_and_pays_that_transfer_only(
    stepup_sandbox: Sandbox,
) -> None:
    sandbox = stepup_sandbox
    events: list[Event] = []
    http = session(sandbox, events)
    checking, savings = accounts(http, sandbox)[:2]  # the first login: loa:1, the password
    events.clear()

    body = {"from_account": savings, "to_account": checking, "amount": "1500.00"}
    response = http.post(f"{sandbox.api_url}/transfers", json=body, timeout=30)
    assert response.status_code == 201, response.text
    assert response.json()["authorized_with"] == {"acr": LOA2, "amr": ["pwd", "otp", "mfa"]}

    # The authorization request carried the challenge's transaction, as RFC 9396 JSON text.
    [asked] = [e for e in events if isinstance(e, AuthorizationRequested)]
    assert asked.params["authorization_details"] == canonical("1500.00", checking)
    assert (asked.params["acr_values"], asked.params["max_age"]) == (LOA2, "300")
    # The provider asked for the one-time code only (the session had the password), on a page
    # that names the payment.
    [page] = [e for e in events if isinstance(e, FactorsRequested)]
    assert page.factors == ("otp",)
    assert f"Bank CLI asks you to approve Pay 1500.00 EUR to {checking}" in page.page_text
    [issued] = [e for e in events if isinstance(e, TokensIssued)]
    assert issued.access_token_claims["authorization_details"] == [
        {"amount": "1500.00", "currency": "EUR", "payee": checking, "type": "payment"}
    ]
    approved = response.request.headers["Authorization"]

    # The approved token, replayed by hand: another amount, another payee, the same again.
    assert_pays_that_transfer_only(sandbox, approved, savings, checking)


def test_each_large_transfer_asks_for_a_fresh_code_even_right_after_the_last(
    stepup_sandbox: Sandbox,
) -> None:
    """The session is at loa:2 from the first approval, seconds ago: the second transfer's
    approval is still a code typed for it (the authenticator waits for the next code's step)."""
    sandbox = stepup_sandbox
    events: list[Event] = []
    http = session(sandbox, events)
    checking, savings = accounts(http, sandbox)[:2]
    steps = [
        ("1500.00", "This action needs a stronger sign-in"),
        ("1200.00", "To approve this transaction, confirm it is you."),
    ]
    for amount, why in steps:
        events.clear()
        body = {"from_account": savings, "to_account": checking, "amount": amount}
        response = http.post(f"{sandbox.api_url}/transfers", json=body, timeout=30)
        assert response.status_code == 201, response.text
        [page] = [e for e in events if isinstance(e, FactorsRequested)]
        assert page.factors == ("otp",)
        # What the user reads (the text the form is described by): the payment, and why.
        assert f"Bank CLI asks you to approve Pay {amount} EUR to {checking}" in page.page_text
        assert why in page.page_text
        [issued] = [e for e in events if isinstance(e, TokensIssued)]
        assert issued.access_token_claims["authorization_details"][0]["amount"] == amount


def test_the_same_transfer_twice_is_approved_twice_and_pays_twice(
    stepup_sandbox: Sandbox,
) -> None:
    """Paying the same bill twice: the first approval is spent by the first transfer, so the
    second, identical one gets the bank's challenge again and the SDK sends the user to approve
    it again (a fresh one-time code on the page that names it), instead of resending the spent
    token."""
    sandbox = stepup_sandbox
    events: list[Event] = []
    http = session(sandbox, events)
    savings = accounts(http, sandbox)[1]  # the first login: loa:1, the password
    bob, _ = balances(sandbox, "bob")  # bob's checking account (opened if need be), savings
    before = {**balances(sandbox, "alice"), **balances(sandbox, "bob")}
    events.clear()
    body = {"from_account": savings, "to_account": bob, "amount": "1500.00"}
    try:
        first = http.post(f"{sandbox.api_url}/transfers", json=body, timeout=30)
        second = http.post(f"{sandbox.api_url}/transfers", json=body, timeout=30)
        assert (first.status_code, second.status_code) == (201, 201), second.text
        # Two authorization requests, each for this payment, each approved with a code.
        asked = [e for e in events if isinstance(e, AuthorizationRequested)]
        assert [a.params["authorization_details"] for a in asked] == [canonical("1500.00", bob)] * 2
        pages = [e for e in events if isinstance(e, FactorsRequested)]
        assert [p.factors for p in pages] == [("otp",), ("otp",)]
        issued = [e for e in events if isinstance(e, TokensIssued)]
        assert [i.access_token_claims["authorization_details"] for i in issued] == [
            [{"amount": "1500.00", "currency": "EUR", "payee": bob, "type": "payment"}]
        ] * 2
        assert issued[0].access_token_claims["jti"] != issued[1].access_token_claims["jti"]
        # Each transfer: the everyday token, the bank's challenge, the approval — the one retry.
        assert [(e.attempt, e.reason, e.acr) for e in events if isinstance(e, ApiRequestSent)] == [
            (1, "initial", LOA1), (2, "after_step_up", LOA2),
        ] * 2  # fmt: skip
        paid_with = [r.request.headers["Authorization"] for r in (first, second)]
        assert paid_with[0] != paid_with[1]
        after = {**balances(sandbox, "alice"), **balances(sandbox, "bob")}
        assert after[savings] == before[savings] - Decimal("3000.00")
        assert after[bob] == before[bob] + Decimal("3000.00")
    finally:
        moved = balances(sandbox, "bob")[bob] - before[bob]
        pay_back(sandbox, "bob", bob, savings, moved)


def test_a_small_transfer_needs_no_approval(stepup_sandbox: Sandbox) -> None:
    events: list[Event] = []
    http = session(stepup_sandbox, events)
    checking, savings = accounts(http, stepup_sandbox)[:2]
    body: dict[str, Any] = {"from_account": savings, "to_account": checking, "amount": "10.00"}
    events.clear()
    response = http.post(f"{stepup_sandbox.api_url}/transfers", json=body, timeout=30)
    assert response.status_code == 201, response.text
    [asked] = [e for e in events if isinstance(e, AuthorizationRequested)]
    assert "authorization_details" not in asked.params


def test_a_web_app_gets_the_approval_through_step_up_required_and_its_session(
    stepup_sandbox: Sandbox,
) -> None:
    """The web app's way (docs/sdk.md): ``StepUpRequired`` carries a URL with the transaction,
    the pending request goes through the app's session as a dict, the callback completes it, and
    the transfer submitted again pays. The user's browser is played by the headless pages."""
    sandbox = stepup_sandbox
    auth = StepUpAuth(
        sandbox.issuer, "bank-web", client_secret="bank-web-secret-for-the-local-sandbox",
        authenticator=RedirectAuthenticator(), redirect_uri="http://127.0.0.1:8000/callback",
        clock=sandbox.now,
    )  # fmt: skip
    user = HeadlessAuthenticator("alice", "wonderland", ALICE_SECRET, clock=sandbox.now,
                                 sleep=lambda s: sandbox.advance_clock(int(s) + 1))  # fmt: skip

    def through_the_browser(exc: StepUpRequired) -> None:
        saved = json.loads(json.dumps(exc.pending.to_dict()))  # the app's server-side session
        login = LoginRequest(
            issuer=sandbox.issuer, requirement=exc.requirement,
            redirect_uri=exc.pending.redirect_uri,
            build=lambda _uri: (exc.authorization_url, exc.pending), emit=lambda _e: None,
        )  # fmt: skip
        callback = user.authenticate(login)
        auth.complete_authorization(callback, PendingAuthorization.from_dict(saved))

    with pytest.raises(StepUpRequired) as first:
        requests.get(f"{sandbox.api_url}/accounts", auth=auth, timeout=30)
    through_the_browser(first.value)
    listed = requests.get(f"{sandbox.api_url}/accounts", auth=auth, timeout=30).json()
    checking, savings = [a["id"] for a in listed["accounts"]][:2]

    body = {"from_account": savings, "to_account": checking, "amount": "1500.00"}
    with pytest.raises(StepUpRequired) as raised:
        requests.post(f"{sandbox.api_url}/transfers", json=body, auth=auth, timeout=30)
    query = parse_qs(urlsplit(raised.value.authorization_url).query)
    assert query["authorization_details"] == [canonical("1500.00", checking)]
    assert raised.value.requirement.authorization_details == canonical("1500.00", checking)
    through_the_browser(raised.value)
    response = requests.post(f"{sandbox.api_url}/transfers", json=body, auth=auth, timeout=30)
    assert response.status_code == 201, response.text

    # The same transfer submitted again: the approval went with that one request; this one is
    # sent to the provider to be approved in its turn (not StepUpFailed with the spent token).
    with pytest.raises(StepUpRequired) as again:
        requests.post(f"{sandbox.api_url}/transfers", json=body, auth=auth, timeout=30)
    assert again.value.requirement.authorization_details == canonical("1500.00", checking)
    through_the_browser(again.value)
    paid = requests.post(f"{sandbox.api_url}/transfers", json=body, auth=auth, timeout=30)
    assert paid.status_code == 201, paid.text
    assert paid.json()["id"] != response.json()["id"]
    assert paid.request.headers["Authorization"] != response.request.headers["Authorization"]
    # The sandbox is shared: the second payment's money goes back to savings for the next tests.
    pay_back(sandbox, "alice", checking, savings, Decimal("1500.00"))
