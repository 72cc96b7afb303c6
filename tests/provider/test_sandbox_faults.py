"""``/sandbox/faults``: negative paths on demand (provider/sandbox_faults.py), through the real
authorization flow. Sandbox only: 404 otherwise, and no fault reaches a provider without it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun.api import FrozenDateTimeFactory

from provider import create_app
from provider.sandbox_faults import FaultBoard, InvalidFault, Outage, UserFault, parse
from stepup.config import StepupConfig

from .conftest import T0_EPOCH
from .flow import LOA2, Browser, Client, query_of, redirect_status


@pytest.fixture
def browser(sqlite_app: Flask) -> Browser:
    return Browser(sqlite_app)


@pytest.fixture
def http(browser: Browser) -> FlaskClient:
    return browser.http


def arm(http: FlaskClient, **body: object) -> None:
    response = http.post("/sandbox/faults", json=body)
    assert response.status_code == 200, response.get_json()


def callback_of(cli: Client, **extra: str) -> dict[str, str]:
    response = cli.browser.login_through(cli.authorize(**extra))
    assert response.status_code == redirect_status(response), response.get_data(as_text=True)[:300]
    assert response.location.startswith(cli.redirect_uri)
    return query_of(response.location)


def test_cancel_sends_access_denied_with_state_and_iss(browser: Browser, http: FlaskClient) -> None:
    arm(http, user="alice", fault="cancel")
    cli = Client(browser)
    got = callback_of(cli, acr_values=LOA2)
    assert got["error"] == "access_denied"
    assert (got["state"], got["iss"]) == (cli.state, browser.op.issuer)
    assert "code" not in got
    assert browser.pages == ["password"]  # after the password: the provider knew who it was
    # Used up: the next login goes through.
    assert "code" in Client(browser).sign_in(acr_values=LOA2)


def test_unmet_sends_unmet_authentication_requirements(browser: Browser, http: FlaskClient) -> None:
    arm(http, user="ALICE", fault="unmet", count=2)
    for _ in range(2):
        cli = Client(browser)
        got = callback_of(cli, acr_values=LOA2)
        assert got["error"] == "unmet_authentication_requirements"
        assert (got["state"], got["iss"]) == (cli.state, browser.op.issuer)
    assert "code" in Client(browser).sign_in(acr_values=LOA2)


def test_refuse_answers_every_factor_as_wrong(browser: Browser, http: FlaskClient) -> None:
    arm(http, user="alice", fault="refuse")
    cli = Client(browser)
    page = browser.login_through(cli.authorize(acr_values=LOA2), max_pages=2)
    assert page.status_code == 401
    assert "The username or password is incorrect." in page.get_data(as_text=True)
    # The same login stays refused, with the right password too.
    again = browser.submit(page, {"username": "alice", "current-password": "wonderland"})
    assert again.status_code == 401
    assert http.get("/sandbox/faults").get_json()["faults"] == []
    # A new login is not refused, and the refusals did not lock the account.
    assert "code" in Client(browser).sign_in(acr_values=LOA2)


def test_refuse_at_the_one_time_code_of_a_step_up(browser: Browser, http: FlaskClient) -> None:
    assert "code" in Client(browser).sign_in()  # signed in with the password only
    arm(http, user="alice", fault="refuse")
    cli = Client(browser)
    response = browser.login_through(cli.authorize(acr_values=LOA2), max_pages=2)
    assert browser.pages[-1] == "otp"
    assert response.status_code == 401
    assert "That is not right." in response.get_data(as_text=True)


def test_faults_of_one_user_leave_the_others_alone(browser: Browser, http: FlaskClient) -> None:
    arm(http, user="bob", fault="cancel")
    assert "code" in Client(browser).sign_in()
    assert http.get("/sandbox/faults").get_json()["faults"] == [
        {"user": "bob", "fault": "cancel", "count": 1}
    ]


def test_a_users_faults_are_used_in_order(browser: Browser, http: FlaskClient) -> None:
    arm(http, user="alice", fault="unmet")
    arm(http, user="alice", fault="cancel")
    assert callback_of(Client(browser))["error"] == "unmet_authentication_requirements"
    assert callback_of(Client(browser))["error"] == "access_denied"


def test_down_answers_503_until_the_clock_passes_it(
    browser: Browser, http: FlaskClient, frozen: FrozenDateTimeFactory
) -> None:
    arm(http, fault="down", seconds=30)
    for path in ("/.well-known/openid-configuration", "/jwks", "/authorize"):
        response = http.get(path)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "30"
        assert response.get_json()["error"] == "temporarily_unavailable"
    assert http.post("/token", data={"grant_type": "client_credentials"}).status_code == 503
    # The sandbox's own endpoints still answer, so the outage can be seen and ended.
    assert http.get("/sandbox/faults").get_json()["down"] == {
        "until": T0_EPOCH + 30,
        "retry_after": 30,
    }
    assert http.get("/sandbox").status_code == 200
    frozen.tick(12)  # the real clock moves the sandbox clock too
    assert http.get("/jwks").headers["Retry-After"] == "18"
    assert http.post("/sandbox/clock", json={"advance": 18}).status_code == 200
    assert http.get("/jwks").status_code == 200
    assert http.get("/sandbox/faults").get_json()["down"] is None


def test_delete_clears_every_fault(browser: Browser, http: FlaskClient) -> None:
    arm(http, user="alice", fault="cancel")
    arm(http, fault="down", seconds=60)
    cleared = http.delete("/sandbox/faults")
    assert cleared.status_code == 200
    assert cleared.get_json() == {"faults": [], "down": None}
    assert http.get("/jwks").status_code == 200
    assert "code" in Client(browser).sign_in()


def test_the_sandbox_page_shows_armed_faults(http: FlaskClient) -> None:
    arm(http, user="alice", fault="refuse", count=3)
    html = http.get("/sandbox").get_data(as_text=True)
    assert 'id="faults"' in html
    assert "<td>alice</td><td>refuse</td><td>3</td>" in html


@pytest.mark.parametrize(
    "body",
    [
        None,
        {"fault": "explode", "user": "alice"},
        {"fault": "cancel"},
        {"fault": "cancel", "user": "alice", "count": 0},
        {"fault": "cancel", "user": "alice", "count": True},
        {"fault": "cancel", "user": "alice", "seconds": 3},
        {"fault": "down"},
        {"fault": "down", "seconds": -1},
        {"fault": "down", "seconds": 30, "user": "alice"},
        {"fault": "refuse", "user": "mallory"},
    ],
)
def test_bad_requests_are_invalid_request(http: FlaskClient, body: object) -> None:
    response = http.post("/sandbox/faults", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert http.get("/sandbox/faults").get_json() == {"faults": [], "down": None}


def test_off_outside_the_sandbox(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory
) -> None:
    plain = replace(
        config, provider=replace(config.provider, sandbox=False, sandbox_loopback_clients=False)
    )
    app = create_app(plain, database_url=sqlite_url)
    assert "sandbox_faults" not in app.extensions
    http = app.test_client()
    assert http.get("/sandbox/faults").status_code == 404
    assert http.post("/sandbox/faults", json={"fault": "down", "seconds": 30}).status_code == 404
    assert http.delete("/sandbox/faults").status_code == 404
    assert http.get("/jwks").status_code == 200
    assert "code" in Client(Browser(app)).sign_in()


def test_parse_and_the_board_directly() -> None:
    assert parse({"fault": "unmet", "user": "a"}) == UserFault("a", "unmet", 1)
    assert parse({"fault": "down", "seconds": 5}) == Outage(5)
    with pytest.raises(InvalidFault):
        parse({"fault": "down", "seconds": 5.0})
    board = FaultBoard()
    board.arm(UserFault("a", "refuse", 1), now=0)
    assert board.take("a", ("cancel", "unmet")) is None  # refuse keeps its turn
    assert board.refuses("i1", "A") is True
    assert board.refuses("i1", "a") is True  # the same login: still refused
    assert board.refuses("i2", "a") is False  # used up
    board.arm(Outage(10), now=100)
    assert (board.outage(105), board.outage(110)) == (5, None)
