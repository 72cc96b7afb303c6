"""Passkeys in the login flow, through Flask's test client with the SDK's software authenticator:
created inside a step-up (after the user confirms what they have), used for a step-up from a
password session (asked alone), used to sign in without a password; the page's CSP, framing and
CSRF; and each WebAuthn refusal as the page shows it (status and ``data-error``)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from client_sdk.authenticators.passkey import SoftwarePasskey
from provider.factors import totp

from .flow import (
    ALICE_SECRET,
    LOA1,
    LOA2,
    Browser,
    Client,
    claims,
    parse_page,
    query_of,
    redirect_status,
)

PHR, PHRH = "phr", "phrh"
ORIGIN = "http://127.0.0.1:9000"  # the test config's issuer: RP ID 127.0.0.1 (no browser here)


@pytest.fixture
def web(sqlite_app: Flask) -> Client:
    return Client(Browser(sqlite_app))


def passkey_form(response: TestResponse) -> tuple[str, dict[str, Any], dict[str, str], str]:
    """The passkey page's ceremony, options, hidden inputs and action."""
    text = response.get_data(as_text=True)
    ceremony = re.search(r'data-passkey="([a-z]+)"', text)
    options = re.search(r'data-passkey-options="([^"]*)"', text)
    assert ceremony is not None, text[:400]
    assert options is not None
    form = parse_page(text).forms[0]
    return (
        ceremony.group(1),
        json.loads(html.unescape(options.group(1))),
        form.hidden(),
        form.action,
    )


def answer(
    browser: Browser, page: TestResponse, key: SoftwarePasskey, origin: str = ORIGIN
) -> TestResponse:
    """Do what passkey.js does: the WebAuthn call, then post ``toJSON()`` with the form."""
    ceremony, options, hidden, action = passkey_form(page)
    made = key.create(options, origin) if ceremony == "create" else key.get(options, origin)
    return post(browser, action, hidden, json.dumps(made))


def post(browser: Browser, action: str, hidden: dict[str, str], credential: str) -> TestResponse:
    return browser.http.post(
        action, data={**hidden, "credential": credential, "action": "continue"}
    )


def follow(browser: Browser, response: TestResponse) -> TestResponse:
    while response.status_code in (302, 303) and response.location.startswith("/"):
        response = browser.get(response.location)
    return response


def h1(response: TestResponse) -> str:
    found = re.search(r"<h1>(.*?)</h1>", response.get_data(as_text=True))
    assert found is not None
    return found.group(1)


def alert_code(response: TestResponse) -> str | None:
    found = re.search(
        r'role="alert" id="form-error" data-error="([a-z_]+)"', response.get_data(as_text=True)
    )
    return found.group(1) if found else None


def finish(client: Client, response: TestResponse) -> dict[str, Any]:
    assert response.status_code == redirect_status(response), response.get_data(as_text=True)[:500]
    assert response.location.startswith(client.redirect_uri)
    tokens = client.exchange(query_of(response.location)["code"])
    assert tokens.status_code == 200, tokens.json
    return claims(client.browser.app, tokens.json["access_token"])  # type: ignore[index]


def password(client: Client, username: str = "bob", pw: str = "builder") -> None:
    client.tokens(acr_values=LOA1, username=username, password=pw)


def enrol(client: Client, key: SoftwarePasskey, username: str = "bob") -> dict[str, Any]:
    """A password sign-in, then a step-up to phr that creates ``key``."""
    password(client, username, {"bob": "builder", "alice": "wonderland"}[username])
    page = follow(client.browser, client.authorize(acr_values=PHR))
    if username == "alice":  # she has a one-time code: she confirms it first
        assert client.browser.page_kind(page.get_data(as_text=True)) == "otp"
        page = follow(
            client.browser,
            client.browser.submit(
                page, {"one-time-code": totp.code_at(ALICE_SECRET, client.browser.op.clock.now())}
            ),
        )
    assert h1(page) == "Create a passkey"
    return finish(client, follow(client.browser, answer(client.browser, page, key)))


# --- creating one inside a step-up ----------------------------------------------------------------


def test_a_user_without_a_passkey_creates_one_in_a_step_up_and_reaches_phr(web: Client) -> None:
    key = SoftwarePasskey()
    password(web)
    page = follow(web.browser, web.authorize(acr_values=PHR))
    assert page.status_code == 200
    assert h1(page) == "Create a passkey"
    text = page.get_data(as_text=True)
    assert (
        "This action needs a stronger sign-in (passkey). Create a passkey for this account." in text
    )
    ceremony, options, hidden, action = passkey_form(page)
    assert ceremony == "create"
    assert action.endswith("/passkey/register")
    assert options["rp"] == {"id": "127.0.0.1", "name": "Stepup"}
    assert options["excludeCredentials"] == []
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert hidden["csrf_token"]
    token = finish(web, follow(web.browser, answer(web.browser, page, key)))
    assert (token["acr"], token["amr"]) == (PHR, ["swk", "pin", "mfa"])


def test_a_user_with_a_one_time_code_confirms_it_before_creating_a_passkey(web: Client) -> None:
    token = enrol(web, SoftwarePasskey(), username="alice")
    assert (token["acr"], token["amr"]) == (PHR, ["swk", "pin", "mfa"])


def test_the_confirmation_page_says_why(web: Client) -> None:
    password(web, "alice", "wonderland")
    page = follow(web.browser, web.authorize(acr_values=PHR))
    assert (
        "Before you add a new way to sign in, confirm the ones you have (passkey). "
        "Enter a one-time code." in page.get_data(as_text=True)
    )


def test_a_step_up_lists_the_users_passkeys_in_allow_credentials(web: Client) -> None:
    """§5.5 allowCredentials: a step-up for a known user names their passkeys (one stored here
    without the flow), so the browser offers only those."""
    from provider import passkey_login
    from provider.factors.passkey import RelyingParty
    from provider.models import User

    op = web.browser.op
    existing = SoftwarePasskey()
    interaction = "seeded"
    with op.db.session() as s:
        bob = s.query(User).filter_by(username="bob").one()
        from provider import store

        interaction = store.start_interaction(
            s, browser_id="x", client_id="bank-cli", params={}, now=op.clock.now()
        )
        challenge = passkey_login.issue_challenge(s, interaction, "create")
        rp = RelyingParty.for_issuer(op.issuer)
        from provider.factors import passkey as pk

        options = pk.creation_options(
            rp,
            user_handle=bob.subject.encode(),
            username="bob",
            display_name="Bob",
            challenge=challenge,
            exclude=[],
            user_verification="required",
        )
        passkey_login.register(
            s,
            rp,
            user=bob,
            interaction_id=interaction,
            form_value=json.dumps(existing.create(options, ORIGIN)),
            require_uv=True,
            now=op.clock.now(),
        )
    # bob now has a passkey: a step-up to phr asks him to use it, listing it.
    password(web)
    page = follow(web.browser, web.authorize(acr_values=PHR))
    _, options, _, _ = passkey_form(page)
    assert options["allowCredentials"] == [{"type": "public-key", "id": existing.id}]


# --- using one ------------------------------------------------------------------------------------


def test_a_step_up_from_a_password_session_to_phr_asks_only_for_the_passkey(web: Client) -> None:
    key = SoftwarePasskey()
    enrol(web, key)
    later = Client(Browser(web.browser.app))
    password(later)
    page = follow(later.browser, later.authorize(acr_values=PHR))
    assert h1(page) == "Use your passkey"
    ceremony, options, _, action = passkey_form(page)
    assert (ceremony, action.endswith("/passkey")) == ("get", True)
    assert options["allowCredentials"] == [{"type": "public-key", "id": key.id}]
    assert options["userVerification"] == "required"
    token = finish(later, follow(later.browser, answer(later.browser, page, key)))
    assert (token["acr"], token["amr"]) == (PHR, ["swk", "pin", "mfa"])
    assert key.sign_count == 1


def test_a_passwordless_sign_in_asks_for_the_passkey_alone(web: Client) -> None:
    key = SoftwarePasskey()
    enrol(web, key)
    fresh = Client(Browser(web.browser.app))
    page = follow(fresh.browser, fresh.authorize(acr_values=PHR))
    assert h1(page) == "Sign in with a passkey"
    _, options, _, _ = passkey_form(page)
    assert "allowCredentials" not in options  # discoverable: no username asked
    text = page.get_data(as_text=True)
    assert "Sign in with your password instead" in text
    token = finish(fresh, follow(fresh.browser, answer(fresh.browser, page, key)))
    assert (token["acr"], token["amr"]) == (PHR, ["swk", "pin", "mfa"])
    assert (
        token["sub"] == claims(web.browser.app, web.tokens(acr_values=LOA1)["access_token"])["sub"]
    )


def test_passkey_as_second_factor_after_a_password_on_one_page_flow(web: Client) -> None:
    """A fresh browser asks for phr and takes the password route the passkey page offers: the
    password first, then the passkey — the passkey as a second factor."""
    key = SoftwarePasskey()
    enrol(web, key)
    fresh = Client(Browser(web.browser.app))
    page = follow(fresh.browser, fresh.authorize(acr_values=PHR))
    instead = fresh.browser.get(
        parse_page(page.get_data(as_text=True)).forms[1].action, query_string={"with": "password"}
    )
    assert fresh.browser.page_kind(instead.get_data(as_text=True)) == "password"
    assert "then your passkey" in instead.get_data(as_text=True)
    after = follow(
        fresh.browser,
        fresh.browser.submit(instead, {"username": "bob", "current-password": "builder"}),
    )
    assert h1(after) == "Use your passkey"
    token = finish(fresh, follow(fresh.browser, answer(fresh.browser, after, key)))
    assert token["acr"] == PHR


def test_phrh_is_answered_at_phr_and_refused_when_essential(web: Client) -> None:
    """No attestation root is trusted in the test config: no passkey shows a hardware key."""
    key = SoftwarePasskey()
    enrol(web, key)
    assert web.tokens(acr_values=PHRH)["access_token"]
    token = claims(web.browser.app, web.tokens(acr_values=PHRH)["access_token"])
    assert token["acr"] == "urn:stepup:loa:passkey"
    claims_param = json.dumps({"id_token": {"acr": {"essential": True, "values": [PHRH]}}})
    refused = web.authorize(claims=claims_param)
    assert refused.status_code == 302
    query = query_of(refused.location)
    assert (query["error"], query["error_description"]) == (
        "unmet_authentication_requirements",
        "none of the user's passkeys shows a hardware key this provider trusts",
    )


# --- the page -------------------------------------------------------------------------------------


def test_the_passkey_page_loads_one_same_origin_script_and_cannot_be_framed(web: Client) -> None:
    password(web)
    page = follow(web.browser, web.authorize(acr_values=PHR))
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    text = page.get_data(as_text=True)
    assert re.findall(r"<script[^>]*>", text) == ['<script src="/static/passkey.js">']
    assert "<script>" not in text  # nothing inline
    script = web.browser.get("/static/passkey.js")
    assert script.status_code == 200
    assert script.mimetype in ("text/javascript", "application/javascript")
    assert 'id="no-webauthn" hidden' in text  # the fallback, shown by the script when needed
    assert "<noscript>" in text


def test_the_password_pages_still_load_no_script(web: Client) -> None:
    page = web.browser.get(web.authorize().location)
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert "<script" not in page.get_data(as_text=True)


def test_a_passkey_post_without_a_csrf_token_is_refused(web: Client) -> None:
    key = SoftwarePasskey()
    password(web)
    page = follow(web.browser, web.authorize(acr_values=PHR))
    _, options, hidden, action = passkey_form(page)
    hidden.pop("csrf_token")
    response = post(web.browser, action, hidden, json.dumps(key.create(options, ORIGIN)))
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)


def test_cancel_on_the_passkey_page_denies(web: Client) -> None:
    password(web)
    page = follow(web.browser, web.authorize(acr_values=PHR))
    _, _, hidden, action = passkey_form(page)
    response = web.browser.http.post(action, data={**hidden, "action": "cancel"})
    assert response.status_code == 303  # RFC 9700 §4.12: answering a POST
    assert query_of(response.location)["error"] == "access_denied"


def test_discovery_lists_the_passkey_levels(web: Client) -> None:
    meta = web.browser.get("/.well-known/openid-configuration").json
    assert meta is not None
    assert meta["acr_values_supported"][:4] == [
        LOA1,
        LOA2,
        "urn:stepup:loa:passkey",
        "urn:stepup:loa:hardware-key",
    ]
    assert {PHR, PHRH} <= set(meta["acr_values_supported"])


# --- refusals, as the page shows them -------------------------------------------------------------


def _step_up_page(web: Client, key: SoftwarePasskey) -> TestResponse:
    enrol(web, key)
    later = Client(Browser(web.browser.app))
    password(later)
    web.browser = later.browser
    web.verifier, web.challenge = later.verifier, later.challenge
    return follow(later.browser, later.authorize(acr_values=PHR))


@pytest.mark.parametrize(
    ("tamper", "status", "code"),
    [
        ("origin", 401, "origin"),
        ("rp_id", 401, "rp_id"),
        ("no_uv", 401, "user_verification"),
        ("clone", 401, "sign_count"),
        ("missing", 400, "missing"),
        ("malformed", 400, "malformed"),
    ],
)
def test_a_refused_assertion_stays_on_the_page_with_its_code(
    web: Client, tamper: str, status: int, code: str
) -> None:
    key = SoftwarePasskey()
    clone = SoftwarePasskey.from_json(key.to_json())
    page = _step_up_page(web, key)
    _, options, hidden, action = passkey_form(page)
    browser = web.browser
    if tamper == "origin":
        value = json.dumps(key.get(options, "http://127.0.0.1:9001"))
    elif tamper == "rp_id":
        key.rp_id = "evil.example"
        value = json.dumps(key.get({**options, "rpId": "evil.example"}, ORIGIN))
    elif tamper == "no_uv":
        key.user_verified = False
        value = json.dumps(key.get(options, ORIGIN))
    elif tamper == "clone":
        # The original signs twice (counter 2); the copy, made before, then says 1.
        key.get(options, ORIGIN)
        signed = post(browser, action, hidden, json.dumps(key.get(options, ORIGIN)))
        assert signed.status_code == 303  # back to the interaction, which issues
        page = follow(browser, web.authorize(acr_values=PHR, prompt="login"))
        _, options, hidden, action = passkey_form(page)
        value = json.dumps(clone.get(options, ORIGIN))
    elif tamper == "missing":
        value = ""
    else:
        value = '{"type": "public-key"}'
    response = post(browser, action, hidden, value)
    assert response.status_code == status, response.get_data(as_text=True)[:600]
    assert alert_code(response) == code
    assert h1(response) == "Use your passkey"  # the same page, with a new challenge


def test_a_replayed_assertion_is_refused(web: Client) -> None:
    key = SoftwarePasskey()
    page = _step_up_page(web, key)
    _, options, hidden, action = passkey_form(page)
    value = json.dumps(key.get(options, ORIGIN))
    assert finish(web, follow(web.browser, post(web.browser, action, hidden, value)))["acr"] == PHR
    # Another sign-in, the old response sent again: its challenge was used.
    again = follow(web.browser, web.authorize(acr_values=PHR, prompt="login"))
    assert h1(again) == "Use your passkey"  # prompt=login: the level's factor, the passkey
    _, _, hidden, action = passkey_form(again)
    response = post(web.browser, action, hidden, value)
    assert (response.status_code, alert_code(response)) == (401, "challenge")


def test_a_registration_that_an_authenticator_already_made_is_refused(web: Client) -> None:
    key = SoftwarePasskey()
    enrol(web, key)
    # alice's step-up offers her a registration; bob's authenticator, copied, answers it.
    alice = Client(Browser(web.browser.app))
    alice.tokens(acr_values=LOA2, username="alice", password="wonderland")
    page = follow(alice.browser, alice.authorize(acr_values=PHR))
    assert h1(page) == "Create a passkey"
    copied = SoftwarePasskey.from_json(key.to_json())
    response = answer(alice.browser, page, copied)
    assert (response.status_code, alert_code(response)) == (401, "excluded")
