"""Passkeys in a real browser: Chromium's WebAuthn, with the DevTools Protocol's virtual
authenticator (``WebAuthn.addVirtualAuthenticator``: a CTAP2 platform authenticator with user
verification), against the sandbox at ``http://localhost:PORT``.

One user's story: bob signs in with his password and a step-up to ``phr`` has him create a
passkey; signed out and back in with his password, the next step-up to ``phr`` asks for the
passkey alone; signed out again, he signs in with the passkey and nothing else. The screenshots
(desktop and phone widths) are kept with ``STEPUP_TEST_SCREENSHOTS=DIR``. Also: a browser without
WebAuthn gets the fallback message, and what a real browser sends passes the server's checks
that a tampered one fails (``tests/provider/test_passkey_flow.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import CDPSession, Page

from stepup.inprocess import Sandbox

from .conftest import Screenshot

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
def authenticator(page: Page) -> Iterator[tuple[CDPSession, str]]:
    """A virtual platform authenticator on this page: resident keys, user verification."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    yield cdp, added["authenticatorId"]
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": added["authenticatorId"]})


def credentials(cdp: CDPSession, authenticator_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cdp.send(
        "WebAuthn.getCredentials", {"authenticatorId": authenticator_id}
    )["credentials"]
    return found


def start(page: Page, sandbox: Sandbox, acr_values: str) -> None:
    page.goto(f"{sandbox.issuer}/sandbox/try")
    page.fill("#acr_values", acr_values)
    page.click("button:has-text('Start sign-in')")


def password(page: Page, username: str = "bob", pw: str = "builder") -> None:
    assert page.inner_text("h1") == "Enter your username and password"
    page.fill("#username", username)
    page.fill("#password", pw)
    page.click("button[value=continue]")


def result(page: Page, sandbox: Sandbox) -> tuple[str, str]:
    """The playground's result: the ``acr`` and ``amr`` the tokens carry."""
    # The passkey page's script posts its form after the authenticator answers: wait for that
    # navigation to land rather than read the URL while it is still under way.
    page.wait_for_url(f"{sandbox.issuer}/sandbox/callback?**")
    assert page.url.startswith(f"{sandbox.issuer}/sandbox/callback?"), page.url
    table = page.locator("section[aria-labelledby=result] table").first
    acr = table.locator("tr").nth(0).locator("td code").inner_text()
    amr = table.locator("tr").nth(1).locator("td code").inner_text()
    return acr, amr


def both_widths(page: Page, screenshot: Screenshot, name: str) -> None:
    page.set_viewport_size(PHONE)
    screenshot(page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)
    screenshot(page, f"{name}-desktop")


def test_a_passkey_is_created_in_a_step_up_then_steps_up_then_signs_in_alone(
    page: Page,
    sandbox: Sandbox,
    screenshot: Screenshot,
    authenticator: tuple[CDPSession, str],
) -> None:
    cdp, authenticator_id = authenticator
    page.set_viewport_size(DESKTOP)

    # 1. A password sign-in, then a step-up to phr: bob has no passkey, so he creates one.
    start(page, sandbox, "urn:stepup:loa:1")
    password(page)
    assert result(page, sandbox) == ("urn:stepup:loa:1", "pwd")
    start(page, sandbox, "phr")
    assert page.inner_text("h1") == "Create a passkey"
    assert page.inner_text("#step-reason") == (
        "This action needs a stronger sign-in (passkey). Create a passkey for this account."
    )
    assert page.is_hidden("#no-webauthn")
    both_widths(page, screenshot, "create")
    page.click("button[value=continue]")
    assert result(page, sandbox) == ("phr", "swk, pin, mfa")
    made = credentials(cdp, authenticator_id)
    assert len(made) == 1
    assert made[0]["rpId"] == "localhost"
    assert made[0]["isResidentCredential"] is True
    screenshot(page, "created")

    # 2. Signed out; a password sign-in again; the step-up to phr asks for the passkey alone.
    page.context.clear_cookies()
    start(page, sandbox, "urn:stepup:loa:1")
    password(page)
    start(page, sandbox, "phr")
    assert page.inner_text("h1") == "Use your passkey"
    assert page.inner_text(".who") == "Signed in as bob."
    both_widths(page, screenshot, "step-up")
    page.click("button[value=continue]")
    assert result(page, sandbox) == ("phr", "swk, pin, mfa")

    # 3. Signed out; a sign-in at phr: the passkey and nothing else, no username typed.
    page.context.clear_cookies()
    start(page, sandbox, "phr")
    assert page.inner_text("h1") == "Sign in with a passkey"
    assert page.locator("#username").count() == 0
    both_widths(page, screenshot, "sign-in")
    page.click("button[value=continue]")
    assert result(page, sandbox) == ("phr", "swk, pin, mfa")
    assert page.inner_text("#result") == "Signed in as bob"
    # Chromium's authenticator counts the creation and each of the two assertions; the provider
    # accepted each count as higher than the last (a count that stays put would be refused).
    assert credentials(cdp, authenticator_id)[0]["signCount"] == 3


def test_a_browser_without_webauthn_says_so_and_offers_the_password(
    page: Page, sandbox: Sandbox, screenshot: Screenshot
) -> None:
    page.add_init_script("delete window.PublicKeyCredential;")
    start(page, sandbox, "phr")
    assert page.inner_text("h1") == "Sign in with a passkey"
    assert page.is_visible("#no-webauthn")
    assert page.inner_text("#no-webauthn").startswith("This browser cannot use passkeys.")
    assert page.is_disabled("button[value=continue]")
    screenshot(page, "no-webauthn")
    page.click("button:has-text('Sign in with your password instead')")
    password(page)
    # bob has no passkey and this browser cannot make one: the step-up page says so again.
    assert page.inner_text("h1") == "Create a passkey"
    assert page.is_visible("#no-webauthn")


def test_a_cancelled_passkey_prompt_leaves_the_page_usable(
    page: Page, sandbox: Sandbox, authenticator: tuple[CDPSession, str]
) -> None:
    """No passkey for this site on the authenticator: Chromium rejects the request
    (NotAllowedError); the page says so and the button works again."""
    start(page, sandbox, "phr")
    page.click("button[value=continue]")
    status = page.locator("#passkey-status")
    status.filter(has_text="cancelled or timed out").wait_for()
    assert page.is_enabled("button[value=continue]")
    assert page.inner_text("h1") == "Sign in with a passkey"
