"""The step-up flow at the provider, end to end through its pages (DESIGN.md "Semantics")."""

from __future__ import annotations

import json

from flask import Flask
from freezegun.api import FrozenDateTimeFactory

from provider.factors import totp

from .conftest import T0_EPOCH
from .flow import ALICE_SECRET, LOA1, LOA2, Browser, Client, claims, header, parse_page, query_of


def test_password_login_issues_loa1_with_amr_pwd_and_auth_time(
    cli: Client, browser: Browser
) -> None:
    tokens = cli.tokens()
    assert browser.pages == ["password"]
    idt = claims(browser.app, tokens["id_token"])
    assert (idt["acr"], idt["amr"], idt["auth_time"]) == (LOA1, ["pwd"], T0_EPOCH)
    assert idt["nonce"] == cli.nonce
    at = claims(browser.app, tokens["access_token"])
    assert header(tokens["access_token"])["typ"] == "at+jwt"
    assert (at["acr"], at["amr"], at["auth_time"]) == (LOA1, ["pwd"], T0_EPOCH)
    assert at["aud"] == "https://bank.example/api"
    assert at["client_id"] == "bank-cli"


def test_step_up_asks_only_for_the_otp_and_issues_loa2(
    cli: Client, browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    cli.tokens()
    frozen.tick(60)
    tokens = cli.tokens(acr_values=LOA2, max_age="300")
    assert browser.pages == ["password", "otp"]
    idt = claims(browser.app, tokens["id_token"])
    assert idt["acr"] == LOA2
    assert idt["amr"] == ["pwd", "otp", "mfa"]
    # auth_time is the last real authentication: the OTP, 60 s after the password.
    assert idt["auth_time"] == T0_EPOCH + 60


def test_session_at_loa2_needs_no_page_for_a_second_step_up(
    cli: Client, browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    cli.tokens(acr_values=LOA2)
    frozen.tick(30)
    tokens = cli.tokens(acr_values=LOA2)
    assert browser.pages == ["password", "otp"]
    assert claims(browser.app, tokens["id_token"])["auth_time"] == T0_EPOCH


def test_max_age_exceeded_asks_for_every_factor_again(
    cli: Client, browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    cli.tokens(acr_values=LOA2)
    frozen.tick(301)
    tokens = cli.tokens(acr_values=LOA2, max_age="300")
    assert browser.pages == ["password", "otp", "password", "otp"]
    assert claims(browser.app, tokens["id_token"])["auth_time"] == T0_EPOCH + 301


def test_max_age_not_exceeded_asks_nothing(
    cli: Client, browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    cli.tokens()
    frozen.tick(300)
    tokens = cli.tokens(max_age="300")
    assert browser.pages == ["password"]
    assert claims(browser.app, tokens["id_token"])["auth_time"] == T0_EPOCH


def test_prompt_login_reauthenticates_and_auth_time_strictly_increases(
    cli: Client, browser: Browser
) -> None:
    first = claims(browser.app, cli.tokens()["id_token"])["auth_time"]
    # Same frozen second: auth_time must still increase.
    second = claims(browser.app, cli.tokens(prompt="login")["id_token"])["auth_time"]
    assert browser.pages == ["password", "password"]
    assert second > first


def test_max_age_zero_behaves_as_prompt_login(cli: Client, browser: Browser) -> None:
    cli.tokens()
    cli.tokens(max_age="0")
    assert browser.pages == ["password", "password"]


def test_prompt_none_without_session_is_login_required(cli: Client) -> None:
    response = cli.authorize(prompt="none")
    assert response.status_code == 302
    q = query_of(response.location)
    assert q["error"] == "login_required"
    assert q["state"] == cli.state
    assert q["iss"] == "http://127.0.0.1:9000"


def test_prompt_none_with_session_issues_without_ui(cli: Client, browser: Browser) -> None:
    cli.tokens()
    response = cli.authorize(prompt="none")
    assert response.status_code == 302
    assert "code" in query_of(response.location)


def test_prompt_none_when_a_step_up_is_needed_is_an_error_not_a_page(
    cli: Client, browser: Browser
) -> None:
    cli.tokens()
    response = cli.authorize(prompt="none", acr_values=LOA2)
    assert response.status_code == 302
    assert query_of(response.location)["error"] == "login_required"


def test_prompt_none_with_another_value_is_invalid_request(cli: Client) -> None:
    response = cli.authorize(prompt="none login")
    assert query_of(response.location)["error"] == "invalid_request"


def test_unknown_voluntary_acr_is_ignored(cli: Client, browser: Browser) -> None:
    tokens = cli.tokens(acr_values="urn:example:unknown")
    assert claims(browser.app, tokens["id_token"])["acr"] == LOA1


def test_alias_requested_is_the_acr_returned(cli: Client, browser: Browser) -> None:
    tokens = cli.tokens(acr_values="urn:okta:loa:2fa:any")
    assert browser.pages == ["password", "otp"]
    assert claims(browser.app, tokens["id_token"])["acr"] == "urn:okta:loa:2fa:any"


def test_higher_level_in_session_satisfies_lower_request(cli: Client, browser: Browser) -> None:
    cli.tokens(acr_values=LOA2)
    tokens = cli.tokens(acr_values=LOA1)
    assert browser.pages == ["password", "otp"]
    # acr is one of the values requested, when one was achievable.
    assert claims(browser.app, tokens["id_token"])["acr"] == LOA1


def test_essential_unknown_acr_fails_with_unmet_authentication_requirements(cli: Client) -> None:
    claims_param = json.dumps({"id_token": {"acr": {"essential": True, "values": ["urn:x:loa:9"]}}})
    response = cli.authorize(claims=claims_param)
    assert response.status_code == 302
    q = query_of(response.location)
    assert q["error"] == "unmet_authentication_requirements"
    assert q["state"] == cli.state


def test_essential_acr_is_met_through_the_pages(cli: Client, browser: Browser) -> None:
    claims_param = json.dumps({"id_token": {"acr": {"essential": True, "value": LOA2}}})
    tokens = cli.tokens(claims=claims_param)
    assert claims(browser.app, tokens["id_token"])["acr"] == LOA2


def test_cancel_on_essential_step_up_is_unmet_authentication_requirements(
    cli: Client, browser: Browser
) -> None:
    cli.tokens()
    claims_param = json.dumps({"id_token": {"acr": {"essential": True, "value": LOA2}}})
    page = browser.get(cli.authorize(claims=claims_param).location)
    response = browser.submit(page, {}, action="cancel")
    assert response.status_code == 303  # RFC 9700 §4.12: answering a POST
    assert query_of(response.location)["error"] == "unmet_authentication_requirements"


def test_cancel_on_voluntary_login_is_access_denied(cli: Client, browser: Browser) -> None:
    page = browser.get(cli.authorize().location)
    response = browser.submit(page, {}, action="cancel")
    q = query_of(response.location)
    assert (q["error"], q["state"]) == ("access_denied", cli.state)


def test_elevation_lifetime_expiry_asks_only_for_the_otp_again(
    cli: Client, browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    cli.tokens(acr_values=LOA2)
    frozen.tick(901)  # the sandbox's loa2 lasts 900 s
    tokens = cli.tokens(acr_values=LOA2)
    assert browser.pages == ["password", "otp", "otp"]
    assert claims(browser.app, tokens["id_token"])["acr"] == LOA2


def test_page_says_which_level_and_why(cli: Client, browser: Browser) -> None:
    cli.tokens()
    page = browser.get(cli.authorize(acr_values=LOA2).location)
    html = page.get_data(as_text=True)
    assert "password and one-time code" in html
    assert LOA2 in html
    assert "stronger sign-in" in html


def test_enrolment_inside_the_flow_for_a_user_without_otp(
    cli: Client, browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    cli.tokens(username="bob", password="builder")
    page = browser.get(cli.authorize(acr_values=LOA2).location)
    html = page.get_data(as_text=True)
    assert browser.page_kind(html) == "enrol"
    assert "otpauth://totp/Stepup%20sandbox:bob?secret=" in html
    assert "<svg" in html
    start = html.index('<code class="secret">') + len('<code class="secret">')
    secret = html[start : html.index("</code>", start)]
    wrong = browser.submit(page, {"one-time-code": "000000"})
    assert wrong.status_code == 401
    assert parse_page(wrong.get_data(as_text=True)).alerts
    ok = browser.submit(wrong, {"one-time-code": totp.code_at(secret, T0_EPOCH)})
    done = browser.login_through(ok)
    q = query_of(done.location)
    tokens = cli.exchange(q["code"]).json
    assert claims(browser.app, tokens["id_token"])["amr"] == ["pwd", "otp", "mfa"]
    # From now on bob has the OTP factor: a new session asks for it like for alice.
    frozen.tick(30)
    fresh = Browser(browser.app)
    Client(fresh).tokens(acr_values=LOA2, username="bob", password="builder", secret=secret)
    assert fresh.pages == ["password", "otp"]


def test_wrong_otp_shows_an_error_and_keeps_the_page(cli: Client, browser: Browser) -> None:
    cli.tokens()
    page = browser.get(cli.authorize(acr_values=LOA2).location)
    response = browser.submit(page, {"one-time-code": "123456"})
    assert response.status_code == 401
    assert parse_page(response.get_data(as_text=True)).alerts == [
        "That is not right. Check it and try again."
    ]


def test_a_used_otp_step_is_rejected_as_replay(
    cli: Client, browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    cli.tokens(acr_values=LOA2)
    code = totp.code_at(ALICE_SECRET, T0_EPOCH)
    other = Browser(browser.app)
    other_client = Client(other)
    page = other.login_through(other_client.authorize(acr_values=LOA2), max_pages=2)
    # The second browser reached the OTP page; the code alice used in the first is spent.
    assert other.pages == ["password", "otp"][: len(other.pages)]
    page = other.get(other_client.authorize(acr_values=LOA2).location)
    response = other.submit(page, {"one-time-code": code})
    assert response.status_code == 401
    assert parse_page(response.get_data(as_text=True)).alerts == [
        "That code was already used. Wait for the next code and enter it."
    ]


def test_an_old_code_is_reported_as_expired(
    cli: Client, browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    cli.tokens()
    page = browser.get(cli.authorize(acr_values=LOA2).location)
    old = totp.code_at(ALICE_SECRET, T0_EPOCH - 120)
    response = browser.submit(page, {"one-time-code": old})
    assert response.status_code == 401
    assert parse_page(response.get_data(as_text=True)).alerts == [
        "That code has expired. Enter the code your app shows now."
    ]


def test_refresh_never_upgrades_and_keeps_the_auth_context(
    cli: Client, browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    tokens = cli.tokens(acr_values=LOA2)
    frozen.tick(3600)
    refreshed = cli.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200
    body = refreshed.json
    assert body is not None
    at = claims(browser.app, body["access_token"])
    assert (at["acr"], at["amr"], at["auth_time"]) == (LOA2, ["pwd", "otp", "mfa"], T0_EPOCH)
    assert at["iat"] == T0_EPOCH + 3600
    idt = claims(browser.app, body["id_token"])
    assert (idt["acr"], idt["auth_time"]) == (LOA2, T0_EPOCH)


def test_login_hint_prefills_the_username(cli: Client, browser: Browser, app: Flask) -> None:
    page = browser.get(cli.authorize(login_hint="bob").location)
    form = parse_page(page.get_data(as_text=True)).forms[0]
    assert form.by_autocomplete("username")["value"] == "bob"  # type: ignore[index]
