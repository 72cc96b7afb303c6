"""What the e2e tests of transaction approval share, however the approval was given (CIBA on the
phone, or the redirect through the login pages): the payment entry as the bank's challenge carries
it, and the proof that an approved token pays that one transfer only."""

from __future__ import annotations

import base64
import json

import requests

from client_sdk import parse_www_authenticate
from stepup.inprocess import Sandbox

LOA2 = "urn:stepup:loa:2"


def canonical(amount: str, payee: str) -> str:
    """The one payment entry as JSON, as the bank writes it (RFC 9396 authorization_details)."""
    entry = {"amount": amount, "currency": "EUR", "payee": payee, "type": "payment"}
    return json.dumps([entry], sort_keys=True, separators=(",", ":"))


def encoded(amount: str, payee: str) -> str:
    """:func:`canonical` as the challenge's ``authorization_details`` parameter (base64url)."""
    return base64.urlsafe_b64encode(canonical(amount, payee).encode()).rstrip(b"=").decode()


def challenge(response: requests.Response) -> dict[str, str]:
    [found] = parse_www_authenticate(response.headers["WWW-Authenticate"])
    return dict(found.params)


def assert_pays_that_transfer_only(
    sandbox: Sandbox, authorization: str, source: str, payee: str
) -> None:
    """The approved token (``authorization``, as the SDK sent it), replayed by hand: another
    amount, another payee, and the same transfer again (the approval was spent) each get the
    bank's challenge for exactly that transfer."""
    for amount, to in (("1600.00", payee), ("1500.00", "acc_mallory"), ("1500.00", payee)):
        body = {"from_account": source, "to_account": to, "amount": amount}
        refused = requests.post(f"{sandbox.api_url}/transfers", timeout=10, json=body,
                                headers={"Authorization": authorization})  # fmt: skip
        assert refused.status_code == 401
        params = challenge(refused)
        assert params == {
            "error": "insufficient_user_authentication",
            "error_description": params["error_description"],
            "acr_values": LOA2,
            "max_age": "300",
            "authorization_details": encoded(amount, to),
            "resource_metadata": f"{sandbox.api_url}/.well-known/oauth-protected-resource",
        }
    assert "used for a transfer already" in refused.json()["error_description"]
