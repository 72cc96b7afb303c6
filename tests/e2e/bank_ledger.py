"""The sandbox bank's books, read and put back with minted tokens (no step-up of their own): for
e2e tests that pay another customer and must show the money moved.

The sandbox is shared by the tests of a run, so a test that pays bob gives the money back to the
account it came from afterwards, in transfers of at most 1,000.00 (the sandbox's rules ask the
approval of a transaction only above that), and the other tests find alice's balances as before.
"""

from __future__ import annotations

from decimal import Decimal

import requests

from stepup.inprocess import Sandbox

LOA2 = "urn:stepup:loa:2"
NO_APPROVAL_ABOVE = Decimal("1000.00")


def _bearer(sandbox: Sandbox, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {sandbox.mint_token(username, acr=LOA2)}"}


def balances(sandbox: Sandbox, username: str) -> dict[str, Decimal]:
    """``username``'s accounts (opened on the first call), in order: id → balance."""
    response = requests.get(
        f"{sandbox.api_url}/accounts", headers=_bearer(sandbox, username), timeout=10
    )
    assert response.status_code == 200, response.text
    return {a["id"]: Decimal(a["balance"]) for a in response.json()["accounts"]}


def pay_back(
    sandbox: Sandbox, username: str, from_account: str, to_account: str, amount: Decimal
) -> None:
    """``username`` returns ``amount`` from ``from_account`` to ``to_account``."""
    left = amount
    while left > 0:
        part = min(left, NO_APPROVAL_ABOVE)
        body = {"from_account": from_account, "to_account": to_account, "amount": str(part)}
        response = requests.post(
            f"{sandbox.api_url}/transfers", json=body, headers=_bearer(sandbox, username),
            timeout=10,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        left -= part
