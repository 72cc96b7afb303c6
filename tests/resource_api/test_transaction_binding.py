"""Transaction-bound step-up in the demo bank (docs/transactional.md): above 1,000.00 a transfer
needs a token whose RFC 9396 ``authorization_details`` cover that very transfer — amount, currency,
payee — and one approval pays one transfer, also when the same token is sent twice at once (real
parallel requests, SQLite and PostgreSQL).

Time is the injected clock; the fake issuer mints the approved tokens."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from provider.authorization_details import parse_authorization_details
from resource_api import JwtAccessTokenValidator, create_app
from resource_api.authorization_details import (
    InvalidAuthorizationDetails,
    covers,
    required_entries,
)

from .support import LOA2, Clock, FakeIssuer, bearer, challenge_params, sandbox_config

# --- pure: what is required, and what covers it ---------------------------------------------------


def entry(amount: str = "1500.00", payee: str = "acc_b", **more: Any) -> dict[str, Any]:
    return {"type": "payment", "amount": amount, "currency": "EUR", "payee": payee, **more}


@pytest.mark.parametrize(
    "amount", ["1500", "1500.0", "1500.00", "1500.5", "0.01", "999999999.99", "12.3"]
)
def test_amounts_are_normalised_as_the_provider_normalises_an_approval(amount: str) -> None:
    [approved] = parse_authorization_details(json.dumps([entry(amount)]))
    assert required_entries(entry(amount)) == (
        json.dumps(approved, sort_keys=True, separators=(",", ":")),
    )


@pytest.mark.parametrize(("number", "text"), [(1500.0, "1500.00"), (1500.1, "1500.10"),
                                              (1000.01, "1000.01"), (2000, "2000.00")])  # fmt: skip
def test_a_json_number_from_the_body_reads_as_the_approved_string(number: Any, text: str) -> None:
    assert required_entries(entry(number)) == required_entries(entry(text))


@pytest.mark.parametrize(
    "bad",
    [entry("1500.001"), entry("-5"), entry("0"), entry(True), entry(1e40), entry(payee="a b"),
     {**entry(), "currency": "eur"}, {**entry(), "type": "wire"}, {**entry(), "memo": "x"}, [],
     "payment"],
)  # fmt: skip
def test_an_expression_giving_no_valid_entry_is_refused(bad: Any) -> None:
    with pytest.raises(InvalidAuthorizationDetails):
        required_entries(bad)


def test_only_the_exact_transfer_is_covered() -> None:
    required = required_entries(entry("1500.00"))
    assert covers([entry("1500")], required)
    assert covers([entry("99.00"), entry("1500.00")], required)  # any entry of the grant
    assert not covers([entry("1600.00")], required)
    assert not covers([entry("1500.01")], required)
    assert not covers([entry(payee="acc_mallory")], required)
    assert not covers([{**entry(), "currency": "USD"}], required)
    assert not covers([], required)
    assert not covers(None, required)
    assert not covers("payment", required)
    assert not covers([{"type": "payment"}], required)  # not a valid entry: grants nothing


def test_a_grant_restricted_beyond_the_rule_covers_nothing() -> None:
    required = required_entries(entry())
    # The rule names no source account: a grant from any account covers the payment...
    assert covers([entry()], required)
    # ...but a restriction the API cannot check (locations, from_account) is not ignored.
    assert not covers([entry(locations=["https://other.example"])], required)
    assert not covers([entry(from_account="acc_a")], required)
    with_source = required_entries(entry(from_account="acc_a"))
    assert covers([entry(from_account="acc_a")], with_source)
    assert covers([entry()], with_source)  # approved without a source: any of the user's
    assert not covers([entry(from_account="acc_z")], with_source)


# --- the bank over HTTP (in process) --------------------------------------------------------------


def accounts(api: FlaskClient, token: str) -> list[str]:
    response = api.get("/accounts", headers=bearer(token))
    assert response.status_code == 200
    return [a["id"] for a in response.json["accounts"]]


def send(api: FlaskClient, token: str, amount: str, payee: str | None = None) -> Any:
    src, dst = accounts(api, token)
    body = {"from_account": src, "to_account": payee or dst, "amount": amount}
    return api.post("/transfers", headers=bearer(token), json=body)


def approved(issuer: FakeIssuer, api: FlaskClient, amount: str, **claims: Any) -> str:
    _, dst = accounts(api, issuer.mint())
    return issuer.mint(authorization_details=[entry(amount, dst)], **claims)


def assert_challenge(response: Any, amount: str, payee: str) -> None:
    """The exact transaction-bound challenge: RFC 9470 with our authorization_details."""
    wanted = [{"amount": amount, "currency": "EUR", "payee": payee, "type": "payment"}]
    text = json.dumps(wanted, sort_keys=True, separators=(",", ":"))
    assert response.status_code == 401
    params = challenge_params(response)
    assert params == {
        "error": "insufficient_user_authentication",
        "error_description": params["error_description"],
        "acr_values": LOA2,
        "max_age": "300",
        "authorization_details": base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode(),
        "resource_metadata": "http://localhost/.well-known/oauth-protected-resource",
    }
    assert response.json == {
        "error": "insufficient_user_authentication",
        "error_description": params["error_description"],
        "acr_values": LOA2,
        "max_age": 300,
        "authorization_details": wanted,
    }


def test_a_large_transfer_without_an_approval_is_challenged_for_that_transfer(
    client: FlaskClient, issuer: FakeIssuer
) -> None:
    token = issuer.mint()  # loa:2, 10 s ago: everything but the approval
    _, dst = accounts(client, token)
    response = send(client, token, "1500")
    assert_challenge(response, "1500.00", dst)
    assert "approval of this very transaction" in response.json["error_description"]
    assert send(client, token, "1000.00").status_code == 201  # not above the threshold


def test_an_approved_transfer_goes_through_once(client: FlaskClient, issuer: FakeIssuer) -> None:
    token = approved(issuer, client, "1500.00")
    src, dst = accounts(client, token)
    response = send(client, token, "1500.00")
    assert response.status_code == 201, response.json
    assert (response.json["amount"], response.json["to_account"]) == ("1500.00", dst)
    # One approval, one transfer: the same transfer again is challenged for a new approval.
    again = send(client, token, "1500.00")
    assert_challenge(again, "1500.00", dst)
    assert "has been used for a transfer already" in again.json["error_description"]
    balances = client.get("/accounts", headers=bearer(token)).json["accounts"]
    assert [a["balance"] for a in balances] == ["1000.00", "11500.00"]
    assert src == balances[0]["id"]


@pytest.mark.parametrize(("amount", "other_payee"), [("1600.00", False), ("1500.00", True),
                                                     ("1499.99", False)])  # fmt: skip
def test_an_approval_is_not_good_for_another_amount_or_payee(
    client: FlaskClient, issuer: FakeIssuer, amount: str, other_payee: bool
) -> None:
    token = approved(issuer, client, "1500.00")
    payee = "acc_mallory" if other_payee else accounts(client, token)[1]
    response = send(client, token, amount, payee)
    assert_challenge(response, amount, payee)
    # Refused by the policy, before the bank: the approval is not spent.
    assert send(client, token, "1500.00").status_code == 201


def test_a_failed_transfer_leaves_the_approval_unspent(
    client: FlaskClient, issuer: FakeIssuer
) -> None:
    _, dst = accounts(client, issuer.mint())
    token = issuer.mint(authorization_details=[entry("1500.00", dst), entry("5000.00", dst)])
    assert send(client, token, "5000.00").json["error"] == "insufficient_funds"
    assert send(client, token, "1500.00").status_code == 201
    # The grant covered two transfers; the token has paid one: the other is refused.
    assert_challenge(send(client, token, "5000.00"), "5000.00", dst)


def test_the_approval_is_spent_by_issuer_and_jti(client: FlaskClient, issuer: FakeIssuer) -> None:
    # RFC 9068 §2.2 makes jti REQUIRED (the validator refuses a token without one), so every
    # approved token has a key to be spent under; two tokens with one approval each pay twice.
    first = approved(issuer, client, "1200.00")
    second = approved(issuer, client, "1200.00")
    assert send(client, first, "1200.00").status_code == 201
    assert send(client, second, "1200.00").status_code == 201
    assert send(client, first, "1200.00").status_code == 401


# --- one approval, one transfer: parallel requests on SQLite and PostgreSQL -----------------------


@pytest.fixture
def served(
    validator: JwtAccessTokenValidator, clock: Clock, database_url: str
) -> Iterator[tuple[str, Flask]]:
    app = create_app(sandbox_config(), database_url=database_url, token_validator=validator,
                     clock=clock)  # fmt: skip
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["bank"].engine.dispose()


def test_parallel_uses_of_one_approval_pay_one_transfer(
    served: tuple[str, Flask], issuer: FakeIssuer
) -> None:
    url, _ = served
    probe = issuer.mint()
    ids = [a["id"] for a in requests.get(f"{url}/accounts", headers=bearer(probe),
                                         timeout=10).json()["accounts"]]  # fmt: skip
    # From savings (10,000.00): the balance alone would let all six through.
    token = issuer.mint(authorization_details=[entry("1500.00", ids[0])])
    body = {"from_account": ids[1], "to_account": ids[0], "amount": "1500.00"}
    n = 6
    barrier = threading.Barrier(n, timeout=30)
    results: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        r = requests.post(f"{url}/transfers", json=body, headers=bearer(token), timeout=30)
        with lock:
            results.append((r.status_code, r.json().get("error")))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results, key=str) == sorted(
        [(201, None)] + [(401, "insufficient_user_authentication")] * (n - 1), key=str
    )
    balances = requests.get(f"{url}/accounts", headers=bearer(probe), timeout=10).json()
    assert [a["balance"] for a in balances["accounts"]] == ["4000.00", "8500.00"]
