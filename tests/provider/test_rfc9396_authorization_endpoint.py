"""RFC 9396 (Rich Authorization Requests) at the authorization endpoint: ``authorization_details``
in the authorization request (§2, §3), the page that shows what the user approves, the approval
as a fresh factor in this interaction, the error response (§5), the code's token response and
access token (§7, §9.1), introspection (§9.2), refresh (§6: never here), and DPoP alongside.
On SQLite and PostgreSQL, at a frozen time."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory

from client_sdk.dpop import DPoPKey
from provider.factors import totp

from .flow import ALICE_SECRET, CLI_REDIRECT, LOA2, Browser, Client, claims, parse_page, query_of
from .test_login_pages import PAGE_CSP
from .test_races import active, race, split
from .test_rfc9449_dpop import code_data, with_nonce

PAYMENT = {"type": "payment", "amount": "1500", "currency": "EUR", "payee": "acc_bob"}
APPROVED = [{"type": "payment", "amount": "1500.00", "currency": "EUR", "payee": "acc_bob"}]


def details(*entries: Any) -> str:
    return json.dumps(list(entries) or [PAYMENT])


def page_text(html: str) -> list[str]:
    """The transaction lines of a page (``data-detail``)."""
    lines = []
    for chunk in html.split("<li data-detail>")[1:]:
        lines.append(chunk.split("</li>", 1)[0])
    return lines


def signed_in_at_loa2(browser: Browser, frozen: FrozenDateTimeFactory) -> None:
    """Alice signs in at loa:2 (password and code), then a minute passes (a new code step)."""
    Client(browser).tokens(acr_values=LOA2)
    frozen.tick(60)


# --- §2, §3: the request, and the page ------------------------------------------------------


def test_the_page_shows_the_payment_and_the_code_carries_exactly_what_was_approved(
    app: Flask, cli: Client
) -> None:
    start = cli.authorize(acr_values=LOA2, authorization_details=details())
    assert start.status_code == 303
    page = cli.browser.get(start.location)
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    assert page.headers["X-Frame-Options"] == "DENY"
    html = page.get_data(as_text=True)
    # Normalised ("1500" reads "1500.00"), on the page before any factor is typed.
    assert page_text(html) == ["Pay 1500.00 EUR to acc_bob"]
    assert '<h2 id="transaction-title">Bank CLI asks you to approve</h2>' in html
    form = parse_page(html).forms[0]
    assert form.hidden()["csrf_token"]
    assert 'aria-describedby="transaction step-reason step-level"' in html

    done = cli.browser.login_through(start)
    assert cli.browser.pages == ["password", "otp"]
    assert done.status_code == 303
    code = query_of(done.location)["code"]
    response = cli.exchange(code)
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    # §7: the token response carries the authorization_details granted; §9.1: so does the
    # access token; the ID token does not (it is about the authentication).
    assert body["authorization_details"] == APPROVED
    access = claims(app, body["access_token"])
    assert access["authorization_details"] == APPROVED
    assert (access["acr"], access["amr"]) == (LOA2, ["pwd", "otp", "mfa"])
    assert "authorization_details" not in claims(app, body["id_token"])
    # §9.2: introspection says what the token approves.
    seen = cli.browser.http.post(
        "/introspect",
        data={"token": body["access_token"]},
        auth=("bank-web", "bank-web-secret-for-the-local-sandbox"),
    )
    assert seen.json["authorization_details"] == APPROVED  # type: ignore[index]


def test_every_page_of_the_interaction_shows_the_payment_with_its_markup_escaped(
    cli: Client,
) -> None:
    entry = {**PAYMENT, "from_account": "acc_alice", "locations": ["https://x/<b>&\"'"]}
    start = cli.authorize(acr_values=LOA2, authorization_details=details(entry, PAYMENT))
    password_page = cli.browser.get(start.location)
    html = password_page.get_data(as_text=True)
    assert page_text(html) == [
        "Pay 1500.00 EUR to acc_bob from acc_alice",
        "Pay 1500.00 EUR to acc_bob",
    ]
    assert "<b>" not in html  # the locations are not shown, and nothing is rendered raw
    otp_page = cli.browser.submit(
        password_page, {"username": "alice", "current-password": "wonderland"}
    )
    otp_page = cli.browser.get(otp_page.location)
    assert cli.browser.page_kind(otp_page.get_data(as_text=True)) == "otp"
    assert page_text(otp_page.get_data(as_text=True)) == [
        "Pay 1500.00 EUR to acc_bob from acc_alice",
        "Pay 1500.00 EUR to acc_bob",
    ]


def test_a_request_without_authorization_details_shows_no_transaction(cli: Client) -> None:
    html = cli.browser.get(cli.authorize(acr_values=LOA2).location).get_data(as_text=True)
    assert page_text(html) == []
    assert 'id="transaction"' not in html
    assert 'aria-describedby="step-reason step-level"' in html


# --- §5: the error response -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "description"),
    [
        ("not json", "authorization_details is not valid JSON"),
        ('{"type": "payment"}', "authorization_details must be a non-empty JSON array"),
        ("[]", "authorization_details must be a non-empty JSON array"),
        (details({"type": "wire"}), "authorization_details[0].type: unknown; supported: payment"),
        (details({"amount": "1"}), "authorization_details[0].type is required, a string"),
        (details({**PAYMENT, "memo": "x"}), "authorization_details[0]: unknown field(s) memo"),
        (
            details({**PAYMENT, "amount": "1,500"}),
            "authorization_details[0].amount must be a positive decimal string with at most 2 "
            "decimals, like 12.50",
        ),
        (
            details(PAYMENT, {**PAYMENT, "currency": "eur"}),
            "authorization_details[1].currency must be an ISO 4217 code (EUR)",
        ),
        ("[NaN]", "authorization_details is not valid JSON"),
        ("[" * 2000 + "]" * 2000, "authorization_details is not valid JSON"),  # too deep
        (details(*[PAYMENT] * 6), "at most 5 authorization_details entries"),
        ("[" + " " * 4096 + "]", "authorization_details is longer than 4096"),
        ('["\u202e"]', "authorization_details[0] must be a JSON object"),
    ],
)
def test_malformed_or_unknown_details_are_an_error_redirect(
    sqlite_app: Flask, value: str, description: str
) -> None:
    cli = Client(Browser(sqlite_app))
    response = cli.authorize(authorization_details=value)
    assert response.status_code == 302
    assert response.location.startswith(CLI_REDIRECT + "?")
    assert query_of(response.location) == {
        "error": "invalid_authorization_details",
        "error_description": description,
        "state": cli.state,
        "iss": "http://127.0.0.1:9000",
    }


def test_a_bad_client_gets_the_error_page_before_the_details_are_read(sqlite_app: Flask) -> None:
    cli = Client(Browser(sqlite_app), redirect_uri="http://evil.example/cb")
    response = cli.authorize(authorization_details="not json")
    assert response.status_code == 400
    assert "Unregistered redirect URI" in response.get_data(as_text=True)


def test_discovery_lists_the_supported_types(sqlite_app: Flask) -> None:
    document = sqlite_app.test_client().get("/.well-known/openid-configuration").json
    assert document["authorization_details_types_supported"] == ["payment"]  # type: ignore[index]


# --- the approval is a user action in this interaction ---------------------------------------


def test_a_fresh_session_is_asked_for_its_code_again_and_never_approves_silently(
    app: Flask, browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    signed_in_at_loa2(browser, frozen)
    # The same request without details: the session is enough, a code at once.
    plain = Client(browser).authorize(acr_values=LOA2)
    assert plain.status_code == 302
    assert "code" in query_of(plain.location)

    cli = Client(browser)
    start = cli.authorize(acr_values=LOA2, authorization_details=details())
    assert start.status_code == 303
    assert start.location.startswith("/interaction/")
    page = browser.get(start.location)
    html = page.get_data(as_text=True)
    assert browser.page_kind(html) == "otp"  # not the password: the session holds it
    assert page_text(html) == ["Pay 1500.00 EUR to acc_bob"]
    assert "To approve this transaction, confirm it is you. Enter a one-time code." in html
    # Reloading the page, or asking /authorize again, approves nothing.
    assert browser.get(start.location).status_code == 200
    again = cli.authorize(acr_values=LOA2, authorization_details=details())
    assert again.status_code == 303
    assert again.location.startswith("/interaction/")

    code = totp.code_at(ALICE_SECRET, browser.op.clock.now())
    done = browser.submit(page, {"one-time-code": code})
    assert done.status_code == 303
    body = cli.exchange(query_of(done.location)["code"]).json
    access = claims(app, body["access_token"])  # type: ignore[index]
    assert access["authorization_details"] == APPROVED
    # auth_time is the approval's, not the sign-in's a minute earlier.
    assert access["auth_time"] == browser.op.clock.now()


def test_prompt_none_with_details_is_login_required_even_for_a_fresh_session(
    browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    signed_in_at_loa2(browser, frozen)
    cli = Client(browser)
    response = cli.authorize(acr_values=LOA2, prompt="none", authorization_details=details())
    assert response.status_code == 302
    assert query_of(response.location) == {
        "error": "login_required",
        "error_description": "prompt=none, but approving authorization_details needs the user",
        "state": cli.state,
        "iss": "http://127.0.0.1:9000",
    }


def test_cancelling_the_approval_is_access_denied(cli: Client) -> None:
    # Even with an essential acr, whose cancel is otherwise unmet_authentication_requirements.
    essential = json.dumps({"id_token": {"acr": {"essential": True, "values": [LOA2]}}})
    start = cli.authorize(acr_values=LOA2, claims=essential, authorization_details=details())
    page = cli.browser.get(start.location)
    response = cli.browser.submit(page, {}, action="cancel")
    assert response.status_code == 303  # RFC 9700 §4.12: answering a POST
    assert query_of(response.location) == {
        "error": "access_denied",
        "error_description": "The user did not approve the transaction.",
        "state": cli.state,
        "iss": "http://127.0.0.1:9000",
    }


# --- refresh and DPoP ---------------------------------------------------------------------------


def test_a_refreshed_token_carries_no_authorization_details(app: Flask, cli: Client) -> None:
    body = cli.tokens(acr_values=LOA2, authorization_details=details())
    assert body["authorization_details"] == APPROVED
    assert "refresh_token" in body  # offline_access was asked for: the login is refreshable
    refreshed = cli.token_request(
        {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.json
    again: dict[str, Any] = refreshed.json  # type: ignore[assignment]
    assert "authorization_details" not in again
    access = claims(app, again["access_token"])
    assert "authorization_details" not in access
    # Refresh never upgrades, nor approves: the level stays, the approval does not.
    assert (access["acr"], access["auth_time"]) == (
        LOA2,
        claims(app, body["access_token"])["auth_time"],
    )


def test_a_code_bound_with_dpop_jkt_gives_a_bound_token_with_the_details(
    app: Flask, cli: Client
) -> None:
    key = DPoPKey.generate()
    callback = cli.sign_in(acr_values=LOA2, authorization_details=details(), dpop_jkt=key.jkt)
    response = with_nonce(app, cli.browser.http, code_data(cli, callback["code"]), key)
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    assert (body["token_type"], body["authorization_details"]) == ("DPoP", APPROVED)
    access = claims(app, body["access_token"])
    assert (access["cnf"], access["authorization_details"]) == ({"jkt": key.jkt}, APPROVED)


def test_an_approval_code_raced_twice_pays_nobody_twice(app: Flask, cli: Client) -> None:
    """Two token requests with one approval's code at the same moment (real threads, SQLite and
    PostgreSQL): one consumes it; the other is invalid_grant and revokes what the code issued
    (RFC 6749 §4.1.2), so at most one approved token exists, and it no longer works."""
    code = cli.sign_in(acr_values=LOA2, authorization_details=details())["code"]
    data = code_data(cli, code)
    won, lost = split(race(app, lambda http: http.post("/token", data=data)))
    assert (len(won), len(lost)) in ((0, 2), (1, 1))
    for response in won:
        body: dict[str, Any] = response.json  # type: ignore[assignment]
        assert body["authorization_details"] == APPROVED
        assert not active(app, body["access_token"])
