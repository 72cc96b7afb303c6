"""A transfer above the threshold, end to end over real sockets: the SDK (``StepUpAuth`` with a
``CibaAuthenticator``), the sandbox's bank and provider, and ``stepup approve`` / ``stepup deny``
as alice's phone, run from another thread while the SDK polls.

The SDK's sleep is injected: it advances the sandbox's clock by the interval the SDK waits (no real
waiting), and on the chosen wait the phone decides. Alice starts signed in at loa:1 (a sandbox
token in the SDK's cache), so the only approval asked for is the transfer's."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
import requests

from client_sdk import (
    ApiRequestSent,
    BackchannelDenied,
    BackchannelExpired,
    CibaAuthenticator,
    Event,
    Hook,
    Requirement,
    StepUpAuth,
    TokenCache,
    TokenSet,
)
from stepup.inprocess import Sandbox

from .bank_ledger import balances, pay_back
from .ciba_support import ciba_sandbox, drain, run  # noqa: F401  (the "sandbox" fixture)
from .transfer_approval import assert_pays_that_transfer_only

pytestmark = pytest.mark.e2e

CLIENT = "bank-payments"
SECRET = "bank-payments-secret-for-the-local-sandbox"
LOA1, LOA2 = "urn:stepup:loa:1", "urn:stepup:loa:2"


class Phone:
    """Alice's phone, and the SDK's sleep. ``decide`` (``approve``/``deny``/``None``) happens on
    wait number ``on_wait`` (or on each of several), from another thread; ``advances`` overrides
    how far a wait moves the sandbox's clock (to poll too soon)."""

    def __init__(
        self, sandbox: Sandbox, decide: str | None = "approve", *,
        on_wait: int | tuple[int, ...] = 2, advances: dict[int, int] | None = None,
    ) -> None:  # fmt: skip
        self.sandbox = sandbox
        self.decide = decide
        self.on_wait = (on_wait,) if isinstance(on_wait, int) else on_wait
        self.advances = advances or {}
        self.waits: list[float] = []
        self.said: list[tuple[int, str]] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        n = len(self.waits)
        if n in self.on_wait and self.decide is not None:
            decide = self.decide
            issuer = self.sandbox.issuer
            thread = threading.Thread(
                target=lambda: self.said.append(run(decide, "alice", "--issuer", issuer))
            )
            thread.start()
            thread.join(timeout=30)
        self.sandbox.advance_clock(self.advances.get(n, int(seconds)))


def signed_in_at_loa1(sandbox: Sandbox) -> TokenCache:
    """A cache holding alice's everyday token (loa:1, just now), as after a login."""
    minted = sandbox.mint_tokens("alice", acr=LOA1)
    payload = minted["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    cache = TokenCache()
    cache.put(Requirement(), TokenSet(
        access_token=minted["access_token"], expires_at=sandbox.now() + 600,
        refresh_token=None, id_token=minted["id_token"], scope="openid", claims=claims,
        requirement=Requirement(),
    ))  # fmt: skip
    return cache


def session(
    sandbox: Sandbox, phone: Phone, *, hooks: Sequence[Hook] = (), **ciba: Any
) -> tuple[requests.Session, Any]:
    authenticator = CibaAuthenticator(
        login_hint="alice", binding_message="PAY-1500", sleep=phone.sleep, clock=sandbox.now,
        **ciba,
    )  # fmt: skip
    http = requests.Session()
    cache = signed_in_at_loa1(sandbox)
    http.auth = StepUpAuth(
        sandbox.issuer, CLIENT, authenticator=authenticator, client_secret=SECRET,
        token_cache=cache, hooks=hooks,
    )  # fmt: skip
    return http, authenticator


def accounts(sandbox: Sandbox) -> list[str]:
    token = sandbox.mint_token("alice", acr=LOA2)
    response = requests.get(f"{sandbox.api_url}/accounts", timeout=10,
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    return [a["id"] for a in response.json()["accounts"]]


def transfer(http: requests.Session, sandbox: Sandbox, amount: str, to: str) -> Any:
    src = accounts(sandbox)[1]  # savings: enough for every transfer here
    body = {"from_account": src, "to_account": to, "amount": amount}
    return http.post(f"{sandbox.api_url}/transfers", json=body, timeout=30)


def test_a_large_transfer_is_approved_on_the_phone_and_the_approval_pays_it_only(
    sandbox: Sandbox,
) -> None:
    phone = Phone(sandbox, "approve")
    http, authenticator = session(sandbox, phone)
    checking = accounts(sandbox)[0]
    response = transfer(http, sandbox, "1500.00", checking)
    assert response.status_code == 201, response.text
    assert response.json()["authorized_with"] == {"acr": LOA2, "amr": ["pwd", "otp", "mfa"]}
    # The first poll found the request pending; the phone approved; the second got the tokens.
    assert phone.waits == [5, 5]
    assert authenticator.waits == [5, 5]
    status, said = phone.said[0]
    assert status == 0
    assert said.splitlines()[0].endswith(f" of {CLIENT} for alice: 'PAY-1500'")
    assert said.splitlines()[1] == (
        f'  payment: {{"amount": "1500.00", "currency": "EUR", "payee": "{checking}", '
        '"type": "payment"}'
    )
    approved = response.request.headers["Authorization"]

    # The approved token, replayed by hand: another amount, another payee, the same transfer again.
    src = accounts(sandbox)[1]

    assert_pays_that_transfer_only(sandbox, approved, src, checking)


def test_the_same_transfer_twice_is_approved_twice_and_pays_twice(sandbox: Sandbox) -> None:
    """Paying the same bill twice: the first approval is spent by the first transfer, so the
    second, identical one (same amount, same payee) gets the bank's challenge again and the SDK
    asks alice's phone again, instead of resending the spent token."""
    phone = Phone(sandbox, "approve", on_wait=(2, 4))
    events: list[Event] = []
    http, _ = session(sandbox, phone, hooks=[events.append])
    bob, _ = balances(sandbox, "bob")  # bob's checking account (opened if need be), savings
    _, source = balances(sandbox, "alice")  # checking, savings
    before = {**balances(sandbox, "alice"), **balances(sandbox, "bob")}
    try:
        first = transfer(http, sandbox, "1500.00", bob)
        second = transfer(http, sandbox, "1500.00", bob)
        assert (first.status_code, second.status_code) == (201, 201), second.text
        # Two backchannel requests, each approved on the phone, each for this payment.
        assert [status for status, _ in phone.said] == [0, 0]
        for _, said in phone.said:
            assert said.splitlines()[1] == (
                f'  payment: {{"amount": "1500.00", "currency": "EUR", "payee": "{bob}", '
                '"type": "payment"}'
            )
        assert phone.waits == [5, 5, 5, 5]  # each request: pending, approved, the tokens
        # Each transfer went with its own approval: the first was not sent again.
        paid_with = [r.request.headers["Authorization"] for r in (first, second)]
        assert paid_with[0] != paid_with[1]
        # Each transfer: the everyday token, the bank's challenge, the approval — the one retry.
        assert [(e.attempt, e.reason, e.acr) for e in events if isinstance(e, ApiRequestSent)] == [
            (1, "initial", LOA1), (2, "after_step_up", LOA2),
        ] * 2  # fmt: skip
        assert first.json()["id"] != second.json()["id"]
        after = {**balances(sandbox, "alice"), **balances(sandbox, "bob")}
        assert after[source] == before[source] - Decimal("3000.00")
        assert after[bob] == before[bob] + Decimal("3000.00")
    finally:
        moved = balances(sandbox, "bob")[bob] - before[bob]
        pay_back(sandbox, "bob", bob, source, moved)


def test_denied_on_the_phone_is_a_typed_error(sandbox: Sandbox) -> None:
    phone = Phone(sandbox, "deny")
    http, _ = session(sandbox, phone)
    before = accounts(sandbox)
    with pytest.raises(BackchannelDenied) as caught:
        transfer(http, sandbox, "1500.00", before[0])
    assert (caught.value.error, caught.value.status_code) == ("access_denied", 400)
    assert phone.said[0][0] == 0
    assert phone.waits == [5, 5]


def test_nobody_deciding_in_time_is_a_typed_error(sandbox: Sandbox) -> None:
    phone = Phone(sandbox, None)
    http, _ = session(sandbox, phone, requested_expiry=60)
    with pytest.raises(BackchannelExpired) as caught:
        transfer(http, sandbox, "1500.00", accounts(sandbox)[0])
    assert (caught.value.error, caught.value.status_code) == ("expired_token", 400)
    assert phone.waits == [5] * 12  # 60 s of 5 s waits; the 12th poll is told expired_token


def test_slow_down_adds_five_seconds_to_every_later_wait(sandbox: Sandbox) -> None:
    # The second wait does not move the clock: that poll comes too soon, and the provider says
    # slow_down; from then on the SDK waits 10 s.
    phone = Phone(sandbox, "approve", on_wait=4, advances={2: 0})
    http, authenticator = session(sandbox, phone)
    response = transfer(http, sandbox, "1500.00", accounts(sandbox)[0])
    assert response.status_code == 201, response.text
    assert authenticator.waits == [5, 5, 10, 10]
