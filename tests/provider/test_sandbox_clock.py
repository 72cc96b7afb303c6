"""``GET|POST /sandbox/clock``: the sandbox's time, read and moved over HTTP (contract 11).

Moving it moves the provider's decisions (``auth_time`` against ``max_age``, token times) and,
when the demo API shares the clock as in ``stepup sandbox``, the API's. Sandbox only: 404 otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun.api import FrozenDateTimeFactory

import resource_api
from provider import Clock, create_app
from resource_api import JwtAccessTokenValidator
from stepup.config import StepupConfig

from .conftest import T0_EPOCH
from .flow import LOA2


@pytest.fixture
def http(sqlite_app: Flask) -> FlaskClient:
    return sqlite_app.test_client()


def test_read_the_clock(http: FlaskClient) -> None:
    response = http.get("/sandbox/clock")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {"now": T0_EPOCH, "offset": 0}


def test_advance_moves_the_providers_time(http: FlaskClient) -> None:
    response = http.post("/sandbox/clock", json={"advance": 600})
    assert response.status_code == 200
    assert response.get_json() == {"now": T0_EPOCH + 600, "offset": 600}
    token = http.post("/sandbox/token", json={"username": "alice"}).get_json()["access_token"]
    claims = http.post(
        "/introspect",
        data={"token": token},
        auth=("bank-web", "bank-web-secret-for-the-local-sandbox"),
    ).get_json()
    assert (claims["iat"], claims["auth_time"]) == (T0_EPOCH + 600, T0_EPOCH + 600)


def test_set_puts_the_clock_at_an_epoch_time(http: FlaskClient) -> None:
    assert http.post("/sandbox/clock", json={"set": T0_EPOCH + 3600}).get_json() == {
        "now": T0_EPOCH + 3600,
        "offset": 3600,
    }
    assert http.post("/sandbox/clock", json={"set": T0_EPOCH}).get_json()["offset"] == 0


def test_the_sandbox_page_shows_the_sandbox_time(http: FlaskClient) -> None:
    http.post("/sandbox/clock", json={"advance": 7200})
    html = http.get("/sandbox").get_data(as_text=True)
    assert (
        '<p id="sandbox-time">Sandbox time: <time datetime="2026-11-21T14:00:00Z">'
        "2026-11-21 14:00:00 UTC</time> (+7200 s from the real clock)."
    ) in html


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"advance": 1, "set": T0_EPOCH},
        {"advance": "10m"},
        {"advance": True},
        {"advance": 1.5},
        {"advance": 10 * 366 * 86400 + 1},
        {"set": -1},
        {"set": 253402300800},
        {"set": None},
        [1],
    ],
)
def test_bad_moves_are_400_and_leave_the_clock(http: FlaskClient, body: Any) -> None:
    response = http.post("/sandbox/clock", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert http.get("/sandbox/clock").get_json() == {"now": T0_EPOCH, "offset": 0}


def test_a_form_post_cannot_move_it(http: FlaskClient) -> None:
    # What a page on another site could send without a preflight: not JSON, so refused.
    response = http.post("/sandbox/clock", data='{"advance": 60}', content_type="text/plain")
    assert response.status_code == 400
    assert http.get("/sandbox/clock").get_json()["offset"] == 0


def test_off_outside_the_sandbox(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory
) -> None:
    plain = replace(
        config, provider=replace(config.provider, sandbox=False, sandbox_loopback_clients=False)
    )
    http = create_app(plain, database_url=sqlite_url).test_client()
    assert http.get("/sandbox/clock").status_code == 404
    assert http.post("/sandbox/clock", json={"advance": 60}).status_code == 404


def test_max_age_expired_by_the_clock_endpoint_is_challenged_at_the_api(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory
) -> None:
    # As in `stepup sandbox`: one clock shared by the provider and the API.
    clock = Clock()
    op = create_app(config, database_url=sqlite_url, clock=clock)
    http = op.test_client()
    validator = JwtAccessTokenValidator(
        config.api_issuer,
        config.api.audience,
        fetch=lambda url: http.get(url.removeprefix(config.issuer)).get_json(),
        clock=clock,
    )
    api = resource_api.create_app(
        config, database_url=sqlite_url, token_validator=validator, clock=clock
    )
    # Signed in 3500 s ago: within the transfer's max_age=3600, for 100 s more.
    minted = {"username": "alice", "acr": LOA2, "auth_time": T0_EPOCH - 3500}
    token = http.post("/sandbox/token", json=minted).get_json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    bank = api.test_client()
    accounts = bank.get("/accounts", headers=bearer).get_json()["accounts"]
    transfer = {"from_account": accounts[0]["id"], "to_account": accounts[1]["id"], "amount": "5"}
    assert bank.post("/transfers", json=transfer, headers=bearer).status_code == 201

    assert http.post("/sandbox/clock", json={"advance": 120}).status_code == 200
    response = bank.post("/transfers", json=transfer, headers=bearer)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="insufficient_user_authentication"')
    assert 'acr_values="urn:stepup:loa:2", max_age=3600' in challenge
