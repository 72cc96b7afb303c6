"""The demo bank: accounts per subject, transfers, profile, and bad input that never gives a 500."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from resource_api import JwtAccessTokenValidator, create_app

from ..hostile import HUGE_INTEGER, NOT_ASCII_INTEGERS
from .support import Clock, FakeIssuer, bearer, sandbox_config


@pytest.fixture
def alice(issuer: FakeIssuer) -> dict[str, str]:
    return bearer(issuer.mint(sub="alice"))


def accounts(client: FlaskClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get("/accounts", headers=headers)
    assert response.status_code == 200
    result: list[dict[str, Any]] = response.json["accounts"]
    return result


def test_a_new_subject_gets_demo_accounts(client: FlaskClient, alice: dict[str, str]) -> None:
    mine = accounts(client, alice)
    assert [(a["name"], a["balance"], a["currency"]) for a in mine] == [
        ("Checking", "2500.00", "EUR"), ("Savings", "10000.00", "EUR"),
    ]  # fmt: skip
    assert accounts(client, alice) == mine  # opened once


def test_transfer_moves_money_and_records_transactions(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    checking, savings = accounts(client, alice)
    response = client.post("/transfers", headers=alice, json={
        "from_account": checking["id"], "to_account": savings["id"], "amount": "12.34",
        "description": "rent",
    })  # fmt: skip
    assert response.status_code == 201
    assert response.json["amount"] == "12.34"
    assert response.json["id"].startswith("tr_")
    balances = {a["id"]: a["balance"] for a in accounts(client, alice)}
    assert balances == {checking["id"]: "2487.66", savings["id"]: "10012.34"}
    history = client.get(f"/accounts/{checking['id']}/transactions", headers=alice).json
    assert [(t["amount"], t["description"]) for t in history["transactions"]] == [
        ("-12.34", "rent"), ("2500.00", "Opening balance"),
    ]  # fmt: skip
    limited = client.get(f"/accounts/{checking['id']}/transactions?limit=1", headers=alice)
    assert len(limited.json["transactions"]) == 1


def test_transfers_to_another_customer(
    client: FlaskClient, alice: dict[str, str], issuer: FakeIssuer
) -> None:
    bob = bearer(issuer.mint(sub="bob"))
    bobs = accounts(client, bob)[0]
    response = client.post("/transfers", headers=alice, json={
        "from_account": accounts(client, alice)[0]["id"], "to_account": bobs["id"], "amount": 5,
    })  # fmt: skip
    assert response.status_code == 201
    assert accounts(client, bob)[0]["balance"] == "2505.00"


def test_another_customers_account_is_not_found(
    client: FlaskClient, alice: dict[str, str], issuer: FakeIssuer
) -> None:
    bob = bearer(issuer.mint(sub="bob"))
    bobs = accounts(client, bob)[0]["id"]
    response = client.get(f"/accounts/{bobs}/transactions", headers=alice)
    assert (response.status_code, response.json["error"]) == (404, "account_not_found")
    response = client.post("/transfers", headers=alice, json={
        "from_account": bobs, "to_account": accounts(client, alice)[0]["id"], "amount": "1.00",
    })  # fmt: skip
    assert (response.status_code, response.json["error"]) == (404, "account_not_found")
    assert accounts(client, bob)[0]["balance"] == "2500.00"


def test_insufficient_funds_is_409_and_nothing_moves(
    client: FlaskClient, alice: dict[str, str], issuer: FakeIssuer
) -> None:
    checking, savings = accounts(client, alice)
    approved = [{"type": "payment", "amount": "2500.01", "currency": "EUR", "payee": savings["id"]}]
    approval = bearer(issuer.mint(sub="alice", authorization_details=approved))
    response = client.post("/transfers", headers=approval, json={
        "from_account": checking["id"], "to_account": savings["id"], "amount": "2500.01",
    })  # fmt: skip
    assert (response.status_code, response.json["error"]) == (409, "insufficient_funds")
    assert accounts(client, alice) == [checking, savings]


def test_unknown_destination_rolls_back_the_debit(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    checking, savings = accounts(client, alice)
    response = client.post("/transfers", headers=alice, json={
        "from_account": checking["id"], "to_account": "acc_nope", "amount": "1.00",
    })  # fmt: skip
    assert (response.status_code, response.json["error"]) == (404, "account_not_found")
    assert accounts(client, alice) == [checking, savings]


GOOD = {"from_account": "A", "to_account": "B", "amount": "1.00"}


@pytest.mark.parametrize(
    "body",
    [
        {**GOOD, "amount": -5},
        {**GOOD, "amount": "-5.00"},
        {**GOOD, "amount": 0},
        {**GOOD, "amount": "0.001"},
        {**GOOD, "amount": 1.005},
        {**GOOD, "amount": "1e3"},
        {**GOOD, "amount": "NaN"},
        {**GOOD, "amount": 10**40},
        {**GOOD, "amount": "1000000.01"},
        {**GOOD, "amount": True},
        {**GOOD, "amount": None},
        {**GOOD, "amount": [1]},
        {**GOOD, "from_account": 7},
        {**GOOD, "to_account": ""},
        {**GOOD, "to_account": "x" * 41},
        {**GOOD, "currency": "USD"},
        {**GOOD, "description": "a\nb"},
        {**GOOD, "description": "x" * 141},
        {**GOOD, "extra": 1},
        {"amount": "1.00"},
        [GOOD],
        "transfer",
    ],
)
def test_bad_transfer_bodies_are_400(client: FlaskClient, alice: dict[str, str], body: Any) -> None:
    response = client.post("/transfers", headers=alice, json=body)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_body"


def test_same_account_is_400(client: FlaskClient, alice: dict[str, str]) -> None:
    a = accounts(client, alice)[0]["id"]
    response = client.post("/transfers", headers=alice,
                           json={"from_account": a, "to_account": a, "amount": "1.00"})  # fmt: skip
    assert (response.status_code, response.json["error"]) == (400, "invalid_body")


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ('{"amount": 1', "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        ("amount=1", "application/x-www-form-urlencoded", 415),
        ("<xml/>", "text/xml", 415),
        ("", None, 415),
    ],
)
def test_malformed_bodies_are_4xx_never_500(
    client: FlaskClient, alice: dict[str, str], data: Any, content_type: str | None, status: int
) -> None:
    response = client.post("/transfers", headers=alice, data=data, content_type=content_type)
    assert response.status_code == status
    assert response.json["error"] in ("invalid_body", "unsupported_media_type")


def test_a_huge_body_is_413(client: FlaskClient, alice: dict[str, str]) -> None:
    response = client.post("/transfers", headers=alice, data="x" * 70_000,
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 413


@pytest.mark.parametrize(
    "limit", ["0", "101", "-1", "ten", "1.5", "", *NOT_ASCII_INTEGERS, HUGE_INTEGER]
)
def test_bad_limit_is_400(client: FlaskClient, alice: dict[str, str], limit: str) -> None:
    a = accounts(client, alice)[0]["id"]
    response = client.get(f"/accounts/{a}/transactions", query_string={"limit": limit},
                          headers=alice)  # fmt: skip
    assert (response.status_code, response.json["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("account", ["acc_unknown", "..%2F..", "x" * 300, "%00"])
def test_unknown_or_odd_account_ids_are_404(
    client: FlaskClient, alice: dict[str, str], account: str
) -> None:
    assert client.get(f"/accounts/{account}/transactions", headers=alice).status_code == 404


def test_profile_email(client: FlaskClient, alice: dict[str, str]) -> None:
    response = client.put("/profile/email", headers=alice, json={"email": "alice@bank.example"})
    assert response.json == {"sub": "alice", "email": "alice@bank.example"}
    profile = client.get("/profile", headers=alice).json
    assert profile["email"] == "alice@bank.example"
    assert profile["authentication"]["acr"] == "urn:stepup:loa:2"
    assert profile["authentication"]["age"] == 10


@pytest.mark.parametrize(
    "body",
    [{"email": "nope"}, {"email": ""}, {"email": 5}, {"email": "a@b.example", "x": 1},
     {"email": "a b@c.example"}, {"email": "a@b.example\r\nX: y"}, {"email": "x" * 250 + "@a.io"},
     {}, [], "a@b.example"],
)  # fmt: skip
def test_bad_email_bodies_are_400(client: FlaskClient, alice: dict[str, str], body: Any) -> None:
    response = client.put("/profile/email", headers=alice, json=body)
    assert (response.status_code, response.json["error"]) == (400, "invalid_body")


def test_state_persists_in_the_database(
    database_url: str, validator: JwtAccessTokenValidator, clock: Clock, issuer: FakeIssuer
) -> None:
    def app() -> FlaskClient:
        return create_app(sandbox_config(), database_url=database_url, token_validator=validator,
                          clock=clock).test_client()  # fmt: skip

    first = app()
    alice = bearer(issuer.mint())
    checking, savings = accounts(first, alice)
    first.post("/transfers", headers=alice, json={
        "from_account": checking["id"], "to_account": savings["id"], "amount": "100"})  # fmt: skip
    second = app()  # a restart, or a second process on the same database
    assert [a["balance"] for a in accounts(second, alice)] == ["2400.00", "10100.00"]


def test_unknown_fields_are_named_only_when_their_names_are_plain(
    client: FlaskClient, alice: dict[str, str]
) -> None:
    checking, savings = accounts(client, alice)
    body = {"from_account": checking["id"], "to_account": savings["id"], "amount": "1.00"}
    response = client.post("/transfers", headers=alice, json={**body, "memo": "x"})
    assert (response.status_code, response.json) == (
        400, {"error": "invalid_body", "error_description": "unknown field(s): memo"},
    )  # fmt: skip
    for key in ('zqxj"\\\u00e9\r\n', "Memo", "m" * 41):
        response = client.post("/transfers", headers=alice, json={**body, key: "x"})
        assert (response.status_code, response.json) == (400, {
            "error": "invalid_body",
            "error_description": "the body has fields a transfer does not take",
        }), key  # fmt: skip
