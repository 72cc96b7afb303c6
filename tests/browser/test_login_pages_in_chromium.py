"""The login pages in a real browser: Chromium signs in through the sandbox playground, steps up
to the one-time-code level, and lands on the result with the level reached.

What the in-process tests cannot show: that the forms submit as a browser submits them (the CSRF
cookie and hidden input, the redirects, ``autocomplete`` tokens a password manager keys on), and
what the page looks like (the screenshots; set ``STEPUP_TEST_SCREENSHOTS`` to keep them).
"""

from __future__ import annotations

from playwright.sync_api import Page

from provider.factors.totp import code_at
from stepup.inprocess import Sandbox

from .conftest import Screenshot


def _sign_in(page: Page, sandbox: Sandbox, acr_values: str) -> None:
    page.goto(f"{sandbox.issuer}/sandbox/try")
    page.fill("#acr_values", acr_values)
    page.click("button:has-text('Start sign-in')")


def test_a_password_then_code_step_up_reaches_level_two(
    page: Page, sandbox: Sandbox, screenshot: Screenshot
) -> None:
    alice = sandbox.user("alice")
    assert alice.password is not None
    assert alice.totp_secret is not None
    _sign_in(page, sandbox, "urn:stepup:loa:2")

    assert page.inner_text("h1") == "Enter your username and password"
    assert page.get_attribute("#username", "autocomplete") == "username"
    assert page.get_attribute("#password", "autocomplete") == "current-password"
    screenshot(page, "password")
    page.fill("#username", "alice")
    page.fill("#password", alice.password)
    page.click("button[value=continue]")

    assert page.inner_text("h1") == "Enter your one-time code"
    assert page.get_attribute("#code", "autocomplete") == "one-time-code"
    screenshot(page, "code")
    page.fill("#code", code_at(alice.totp_secret, sandbox.now()))
    page.click("button[value=continue]")

    assert page.url.startswith(f"{sandbox.issuer}/sandbox/callback?")
    assert page.inner_text("#result") == "Signed in as alice"
    result = page.locator("section[aria-labelledby=result] table").first
    assert result.locator("tr").nth(0).locator("td code").inner_text() == "urn:stepup:loa:2"
    # RFC 8176 §2: "mfa" names the use of more than one factor.
    assert result.locator("tr").nth(1).locator("td code").inner_text() == "pwd, otp, mfa"
    screenshot(page, "result")


def test_a_wrong_password_stays_on_the_form_with_an_error(page: Page, sandbox: Sandbox) -> None:
    _sign_in(page, sandbox, "urn:stepup:loa:1")
    page.fill("#username", "alice")
    page.fill("#password", "not-her-password")
    page.click("button[value=continue]")

    assert page.inner_text("h1") == "Enter your username and password"
    assert page.locator("[role=alert]").count() == 1
    assert page.input_value("#password") == ""
