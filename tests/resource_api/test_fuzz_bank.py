"""Fuzzing the demo bank API: no 5xx, no traceback, and no money made or lost.

DESIGN.md "Bad input": every endpoint answers hostile input with the error its spec names — here
RFC 6750 §3 for the token and the bank's own JSON errors for the body — never a ``500``, and nothing
half-written. Each example sends one request to the accounts, transactions, transfers or profile
endpoints (or a path that does not exist), with a token from a pool (good, too weak, expired,
garbage), parameters and JSON bodies built from the fields the bank reads plus arbitrary Unicode,
non-finite numbers and odd shapes, and sometimes an odd method or a body in another encoding.
After each request the customer's money must still add up: transfers only move it.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from ..fuzz import METHODS, check, fuzz_settings, hostile_text, requests, run
from .support import LOA1, Clock, FakeIssuer, bearer

ENDPOINTS = [
    ("GET", "/accounts"),
    ("GET", "/accounts/{account}/transactions"),
    ("POST", "/transfers"),  # the one that moves money: three times the share
    ("POST", "/transfers"),
    ("POST", "/transfers"),
    ("GET", "/profile"),
    ("PUT", "/profile/email"),
    ("GET", "/health"),
]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), hostile_text,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**400, -(10**400), 1e308, -0.0, 0.001, "12.50", "1e3", " 12.50 ", "0.00"]),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)


def total(client: FlaskClient, token: str) -> Decimal:
    response = client.get("/accounts", headers=bearer(token))
    assert response.status_code == 200, response.json
    return sum((Decimal(a["balance"]) for a in response.json["accounts"]), Decimal(0))  # type: ignore[index]


@st.composite
def bodies(draw: st.DrawFn, path: str, accounts: list[str]) -> Any:
    """A JSON body: what the endpoint reads with one thing changed (or nothing), or anything."""
    source, target = draw(st.permutations(accounts))[:2]
    if path == "/profile/email":
        body: dict[Any, Any] = {"email": "a@b.example"}
    else:
        body = {"from_account": source, "to_account": target,
                "amount": draw(st.sampled_from(["12.50", 5, 0.5, "1000.01", "0.01"]))}  # fmt: skip
        if draw(st.booleans()):
            body["description"] = "rent"
    change = draw(st.sampled_from(["nothing", "field", "field", "drop", "extra", "whole"]))
    if change == "field":
        field = draw(st.sampled_from([*body, "currency", "description"]))
        body[field] = draw(json_values)
    elif change == "drop":
        body.pop(draw(st.sampled_from(sorted(body))))
    elif change == "extra":
        body.update(draw(st.dictionaries(hostile_text, json_values, min_size=1, max_size=2)))
    elif change == "whole":
        return draw(json_values)
    return body


@fuzz_settings(300)
@given(data=st.data())
def test_fuzzed_bank_requests(
    client: FlaskClient,
    issuer: FakeIssuer,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    data: st.DataObject,
) -> None:
    good = issuer.mint()  # loa2, authenticated 10 s ago: passes every step-up
    accounts = [a["id"] for a in client.get("/accounts", headers=bearer(good)).json["accounts"]]  # type: ignore[index]
    before = total(client, good)
    tokens = [good, good, issuer.mint(acr=LOA1), issuer.mint(exp=int(clock()) - 60),
              issuer.mint(auth_time=math.nan), "x.y.z", ""]  # fmt: skip
    method, path = data.draw(st.sampled_from(ENDPOINTS))
    path = path.format(account=data.draw(st.sampled_from(accounts) | hostile_text))
    if data.draw(st.integers(0, 9)) == 0:
        path = data.draw(st.sampled_from(["/accounts/", "/", "/transfers/x"]) | hostile_text)
        path = "/" + path.lstrip("/")
    request = data.draw(requests({"limit": "10"}, {"limit": ["1", "100", "0", "101"]},
                                 methods=(method,)))  # fmt: skip
    if method in ("POST", "PUT") and data.draw(st.integers(0, 3)) > 0:
        request.pop("data", None)
        request.pop("content_type", None)
        request["json"] = data.draw(bodies(path, accounts))
    if data.draw(st.integers(0, 9)) == 0:
        request["method"] = data.draw(st.sampled_from(METHODS))
    # Mostly the good token, well presented, so that the fuzz reaches the views behind it.
    if data.draw(st.integers(0, 2)) == 0:
        token = data.draw(st.sampled_from(tokens) | hostile_text)
        header = data.draw(st.sampled_from(["Bearer {}", "bearer {}", "{}", "Basic {}",
                                            "Bearer  {} "]))  # fmt: skip
        request["headers"] = {"Authorization": header.format(token)}
    else:
        request["headers"] = {"Authorization": f"Bearer {good}"}
    try:
        response = run(caplog, lambda: client.open(path, **request))
    except ValueError as exc:  # werkzeug refuses to build a request with a CR/LF header
        assert "newline" in str(exc) or "control" in str(exc).lower(), exc  # noqa: PT017
        return
    check(response, caplog, (), (path, request))
    assert response.headers.get("Location") is None, (path, request)
    assert total(client, good) == before, (path, request, response.json)
